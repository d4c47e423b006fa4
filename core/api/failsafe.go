package api

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"

	"github.com/pgimaged/pgimaged/core/engine"
)

// FailsafeHandler is POST /failsafe, as Patroni's: the primary asks, while the DCS cannot be
// reached, whether this member accepts it as the primary (see [engine.FailsafeAnswer]): 200
// "Accepted" with this member's WAL position in the lsn header, 500 when it runs a primary
// itself or the DCS names another leader, 502 without failsafe_mode. runsPrimary asks
// PostgreSQL now. Register it with [Server.HandleAuthenticated].
func FailsafeHandler(enabled bool, snapshot func() engine.Snapshot, runsPrimary func(context.Context) bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body engine.FailsafeRequest
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&body); err != nil || body.Name == "" {
			http.Error(w, "the body is not Patroni's failsafe request (a JSON object naming the primary)", http.StatusBadRequest)
			return
		}
		snap := snapshot()
		status, text := engine.FailsafeAnswer(enabled, enabled && runsPrimary(r.Context()), snap, body.Name)
		if status == http.StatusOK && snap.Position > 0 {
			w.Header().Set("lsn", strconv.FormatInt(snap.Position, 10))
		}
		writeText(w, status, text)
	})
}
