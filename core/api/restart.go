package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/pgimaged/pgimaged/core/dcs"
	"github.com/pgimaged/pgimaged/core/engine"
)

// restartWait bounds how long POST /restart waits for the agent when the body gives no timeout.
const restartWait = 5 * time.Minute

// ParseRestart reads the body of Patroni's POST /restart into a request and how long to wait
// for it, or answers as Patroni does (status and text) when it cannot be carried out: 400 for an
// unknown key, a role that is none, a timeout that is not a positive number of seconds and a
// postgres_version that is not a version; 400 for a schedule too (pgimaged restarts now only).
func ParseRestart(body map[string]any, serverVersion int) (req engine.RestartRequest, wait time.Duration, skip bool, status int, text string) {
	wait = restartWait
	for k, v := range body {
		switch k {
		case "restart_pending":
			req.Pending = true // as Patroni: the key's presence asks for it
		case "role":
			r, _ := v.(string)
			switch r {
			case dcs.RolePrimary, "master", dcs.RoleReplica, dcs.RoleStandbyLeader:
				req.Role = r
			default:
				return req, 0, false, http.StatusBadRequest, "PostgreSQL role should be either primary, standby_leader, or replica"
			}
		case "timeout":
			secs, ok := parseSeconds(v)
			if !ok || secs <= 0 {
				return req, 0, false, http.StatusBadRequest, "Timeout should be a positive number of seconds"
			}
			wait = time.Duration(secs) * time.Second
		case "postgres_version":
			s, _ := v.(string)
			want, err := versionNumber(s)
			if err != nil {
				return req, 0, false, http.StatusBadRequest, err.Error()
			}
			// As Patroni: restart only a server older than the version given.
			if serverVersion > 0 && serverVersion >= want {
				skip = true
			}
		case "schedule":
			return req, 0, false, http.StatusBadRequest, "scheduled restarts are not supported: pgimaged restarts now"
		default:
			return req, 0, false, http.StatusBadRequest, fmt.Sprintf("Unknown filter for the scheduled restart: %s", k)
		}
	}
	return req, wait, skip, 0, ""
}

// parseSeconds reads a timeout as Patroni's parse_int with unit s: a number, or a string with
// an optional unit (s, min, h).
func parseSeconds(v any) (int, bool) {
	switch x := v.(type) {
	case float64:
		return int(x), true
	case string:
		x = strings.TrimSpace(x)
		mult := 1
		for _, u := range []struct {
			suffix string
			mult   int
		}{{"min", 60}, {"ms", 0}, {"s", 1}, {"h", 3600}} {
			if strings.HasSuffix(x, u.suffix) {
				x, mult = strings.TrimSpace(strings.TrimSuffix(x, u.suffix)), u.mult
				break
			}
		}
		n, err := strconv.Atoi(x)
		if err != nil || mult == 0 {
			return 0, false
		}
		return n * mult, true
	}
	return 0, false
}

// versionNumber is PostgreSQL's server_version_num of a version such as 15.2 or 9.6.24.
func versionNumber(s string) (int, error) {
	parts := strings.Split(strings.TrimSpace(s), ".")
	bad := fmt.Errorf("Invalid PostgreSQL version format: X.Y or X.Y.Z is accepted: %s", s)
	if len(parts) < 2 || len(parts) > 3 {
		return 0, bad
	}
	nums := make([]int, len(parts))
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return 0, bad
		}
		nums[i] = n
	}
	if nums[0] >= 10 {
		return nums[0]*10000 + nums[1], nil
	}
	v := nums[0]*10000 + nums[1]*100
	if len(nums) == 3 {
		v += nums[2]
	}
	return v, nil
}

// RestartHandler is POST /restart, as Patroni's: the agent restarts PostgreSQL (request) and
// the answer comes once it runs again: 200 "restarted successfully"; 503 "restart conditions
// are not satisfied" (restart_pending without a pending setting, another role, a
// postgres_version not newer), "restart failed" with the cause, or the reason it is refused
// (mid-clone, a change of primary under way, PostgreSQL not running). Register it with
// [Server.HandleAuthenticated].
func RestartHandler(snapshot func() engine.Snapshot, request func(context.Context, engine.RestartRequest) (*engine.RestartRequest, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := map[string]any{}
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&body); err != nil && !errors.Is(err, io.EOF) {
			http.Error(w, "the body is not a JSON object: "+err.Error(), http.StatusBadRequest)
			return
		}
		snap := snapshot()
		req, wait, skip, status, text := ParseRestart(body, snap.Server.Version)
		if status != 0 {
			writeText(w, status, text)
			return
		}
		if skip {
			writeText(w, http.StatusServiceUnavailable, engine.RestartNotSatisfied)
			return
		}
		switch snap.State {
		case dcs.StateBootstrapping, dcs.StateCreatingReplica, engine.StateReinitializing:
			writeText(w, http.StatusServiceUnavailable, fmt.Sprintf("%s: the member is %s", engine.RestartFailed, snap.State))
			return
		case engine.StateRestarting:
			writeText(w, http.StatusServiceUnavailable, "restart already in progress")
			return
		}
		req.By = "api " + r.RemoteAddr
		ctx, cancel := context.WithTimeout(r.Context(), wait)
		defer cancel()
		out, err := request(ctx, req)
		switch {
		case err != nil:
			writeText(w, http.StatusServiceUnavailable, engine.RestartFailed+": "+err.Error())
		case out.OK:
			writeText(w, http.StatusOK, out.Message)
		default:
			writeText(w, http.StatusServiceUnavailable, out.Message)
		}
	})
}
