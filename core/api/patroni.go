package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/pgimaged/pgimaged/core/dcs"
	"github.com/pgimaged/pgimaged/core/engine"
)

// patroniTime is how Patroni renders PostgreSQL's timestamps in its answers (Python's str of a
// datetime with its zone).
const patroniTime = "2006-01-02 15:04:05.999999-07:00"

// jsonPaths are the GET paths answered with a JSON document and 200 whatever the member's
// state, as Patroni's.
var jsonPaths = map[string]bool{"/patroni": true, "/history": true, "/config": true}

// standbyLeader reports whether this member leads a standby cluster: it holds the leader key
// and runs PostgreSQL in recovery as the standby leader.
func standbyLeader(snap engine.Snapshot) bool {
	return snap.Leader && snap.Running && snap.Queried && snap.InRecovery && snap.Role == dcs.RoleStandbyLeader
}

// SyncStandby reports whether the sync key, at the agent's last read of the DCS, names this
// member a synchronous standby of the leader holding the leader key (Patroni's /sync).
func SyncStandby(snap engine.Snapshot) bool {
	cl := snap.Cluster
	return cl != nil && cl.Sync != nil && cl.Leader != "" && cl.Sync.Leader == cl.Leader && cl.Leader != snap.Name && cl.Sync.Has(snap.Name)
}

// History is Patroni's GET /history answer: the cluster's changes of primary, each
// [timeline, lsn, reason, timestamp, new_leader], oldest first, from the cluster history cl
// carries; empty (never null, as Patroni's) before the first change of primary.
func History(cl *dcs.Cluster) [][]any {
	out := [][]any{}
	if cl != nil {
		for _, sw := range cl.History.Switches {
			out = append(out, sw.PatroniLine())
		}
	}
	return out
}

// serveJSONPath answers GET /patroni, /history and /config (HEAD and OPTIONS with the status
// code alone).
func (s *Server) serveJSONPath(w http.ResponseWriter, r *http.Request) {
	snap := s.opts.Snapshot()
	var body any
	switch r.URL.Path {
	case "/patroni":
		body = s.memberBody(snap)
	case "/history":
		body = History(snap.Cluster)
	case "/config":
		if s.opts.Effective == nil {
			http.Error(w, "no configuration to show", http.StatusBadGateway)
			return
		}
		body = s.opts.Effective()
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusOK)
		return
	}
	writeJSON(w, http.StatusOK, body)
}

// serverBody adds to a member's body what PostgreSQL said of itself, in Patroni's fields.
func serverBody(body map[string]any, snap engine.Snapshot) {
	d := snap.Server
	if d.Version > 0 {
		body["server_version"] = d.Version
	}
	if !d.PostmasterStart.IsZero() {
		body["postmaster_start_time"] = d.PostmasterStart.Format(patroniTime)
	}
	if d.PendingRestart {
		body["pending_restart"] = true
	}
	if snap.InRecovery {
		received := d.Received
		if received == 0 {
			received = snap.Position
		}
		var replayedAt any
		if !d.ReplayedAt.IsZero() {
			replayedAt = d.ReplayedAt.Format(patroniTime)
		}
		body["xlog"] = map[string]any{"received_location": received, "replayed_location": snap.Position,
			"replayed_timestamp": replayedAt, "paused": d.ReplayPaused}
		return
	}
	if len(d.Replication) > 0 {
		body["replication"] = d.Replication
	}
}

// ReinitializeRefusal is Patroni's answer to POST /reinitialize on a member in snap's state:
// "" when the reinit may be asked for, else why not (a 503's body). force asks again over a
// reinit already in progress, as Patroni's force cancels the action running.
func ReinitializeRefusal(snap engine.Snapshot, force bool) string {
	switch {
	case snap.LeaderName == "":
		return "Cluster has no leader, can not reinitialize"
	case snap.Leader || snap.Queried && !snap.InRecovery:
		return "I am the leader, can not reinitialize"
	case !force && (snap.State == engine.StateReinitializing || snap.State == dcs.StateCreatingReplica):
		return "reinitialize already in progress"
	}
	return ""
}

// ReinitializeHandler is POST /reinitialize, as Patroni's: body {"force": bool} (optional),
// 200 "reinitialize started" once the request is handed to the agent (request), else 503 with
// Patroni's reason. Register it with [Server.HandleAuthenticated].
func ReinitializeHandler(snapshot func() engine.Snapshot, request func(context.Context, engine.ReinitRequest) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Force any `json:"force"`
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&body); err != nil && !errors.Is(err, io.EOF) {
			http.Error(w, "the body is not a JSON object: "+err.Error(), http.StatusBadRequest)
			return
		}
		if why := ReinitializeRefusal(snapshot(), parseBool(body.Force)); why != "" {
			writeText(w, http.StatusServiceUnavailable, why)
			return
		}
		req := engine.ReinitRequest{By: "api " + r.RemoteAddr, At: time.Now().UTC()}
		if err := request(r.Context(), req); err != nil {
			writeText(w, http.StatusServiceUnavailable, err.Error())
			return
		}
		writeText(w, http.StatusOK, "reinitialize started")
	})
}

// parseBool reads a JSON value as Patroni's parse_bool does: true, 1, "on", "true", "yes"...
func parseBool(v any) bool {
	switch x := v.(type) {
	case bool:
		return x
	case float64:
		return x != 0
	case string:
		switch strings.ToLower(strings.TrimSpace(x)) {
		case "1", "on", "true", "yes", "y":
			return true
		}
	}
	return false
}

// writeText answers with a plain-text body, as Patroni's POST answers are.
func writeText(w http.ResponseWriter, status int, text string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, text)
}
