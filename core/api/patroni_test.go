package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pgimaged/pgimaged/core/api"
	"github.com/pgimaged/pgimaged/core/config"
	"github.com/pgimaged/pgimaged/core/dcs"
	"github.com/pgimaged/pgimaged/core/engine"
)

// get sends method path to srv and returns the status code and the body.
func get(t *testing.T, srv http.Handler, method, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	return rec.Code, rec.Body.String()
}

// withServer is snap as PostgreSQL described itself to the agent.
func withServer(snap engine.Snapshot) engine.Snapshot {
	snap.Server = engine.ServerDetail{Version: 150004, PostmasterStart: time.Date(2026, 3, 1, 10, 0, 0, 123456000, time.UTC),
		PendingRestart: true}
	if snap.InRecovery {
		snap.Server.Received = snap.Position + 512
		snap.Server.ReplayedAt = time.Date(2026, 3, 1, 11, 0, 0, 0, time.UTC)
	} else {
		snap.Server.Replication = []engine.WALSender{{Usename: "replicator", ApplicationName: "n2", ClientAddr: "127.0.0.1",
			State: "streaming", SyncState: "async"}}
	}
	snap.Tags = map[string]any{"clonefrom": true}
	snap.SystemIdentifier = "7312345678901234567"
	return snap
}

// GET /patroni answers 200 with Patroni 3's fields, whatever the member's state.
func TestPatroniBody(t *testing.T) {
	st := states()
	for _, tc := range []struct {
		name   string
		snap   engine.Snapshot
		want   map[string]any
		absent []string
	}{
		{"primary", withServer(st["primary"]), map[string]any{
			"state": "running", "role": "primary", "server_version": 150004.0, "timeline": 1.0,
			"postmaster_start_time": "2026-03-01 10:00:00.123456+00:00", "pending_restart": true,
			"database_system_identifier": "7312345678901234567",
			"xlog":                       map[string]any{"location": float64(5 << 20)},
			"replication": []any{map[string]any{"usename": "replicator", "application_name": "n2", "client_addr": "127.0.0.1",
				"state": "streaming", "sync_state": "async", "sync_priority": 0.0}},
			"patroni": map[string]any{"version": "9.9", "scope": "batman", "name": "n1"},
			"tags":    map[string]any{"clonefrom": true},
		}, []string{"cluster_unlocked"}},
		{"streaming replica", withServer(st["streaming replica"]), map[string]any{
			"state": "running", "role": "replica", "timeline": 1.0,
			"xlog": map[string]any{"received_location": float64(5<<20 + 512), "replayed_location": float64(5 << 20),
				"replayed_timestamp": "2026-03-01 11:00:00+00:00", "paused": false},
		}, []string{"replication", "cluster_unlocked"}},
		{"primary without leader key", st["primary without leader key"], map[string]any{"cluster_unlocked": true}, nil},
		{"reinitializing", reinitializing(st["stopped"]), map[string]any{"state": "creating replica"}, nil},
		{"stopped", st["stopped"], map[string]any{"state": "stopped", "role": "replica"},
			[]string{"xlog", "timeline", "server_version", "postmaster_start_time"}},
	} {
		srv, _ := api.New(api.Options{Snapshot: func() engine.Snapshot { return tc.snap }, Version: "9.9"})
		code, body := get(t, srv, http.MethodGet, "/patroni")
		var got map[string]any
		if err := json.Unmarshal([]byte(body), &got); code != http.StatusOK || err != nil {
			t.Errorf("GET /patroni on a %s: %d %q (%v), want 200 and JSON", tc.name, code, body, err)
			continue
		}
		for k, v := range tc.want {
			if g, _ := json.Marshal(got[k]); string(g) != mustJSON(t, v) {
				t.Errorf("GET /patroni on a %s: %s = %s, want %s", tc.name, k, g, mustJSON(t, v))
			}
		}
		for _, k := range tc.absent {
			if _, ok := got[k]; ok {
				t.Errorf("GET /patroni on a %s: %s = %v, want it absent", tc.name, k, got[k])
			}
		}
		if code, body := get(t, srv, http.MethodHead, "/patroni"); code != http.StatusOK || body != "" {
			t.Errorf("HEAD /patroni on a %s: %d %q, want 200 without a body", tc.name, code, body)
		}
	}
}

// reinitializing is snap while its agent re-clones it.
func reinitializing(snap engine.Snapshot) engine.Snapshot {
	snap.State = engine.StateReinitializing
	return snap
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// /standby-leader answers 200 only on the leader of a standby cluster; the leader of a
// cluster of its own is no standby leader.
func TestStandbyLeader(t *testing.T) {
	st := states()
	leader := st["streaming replica"]
	leader.Leader, leader.LeaderName, leader.Role = true, "n1", dcs.RoleStandbyLeader
	st["standby leader"] = leader
	for name, snap := range st {
		srv, _ := api.New(api.Options{Snapshot: func() engine.Snapshot { return snap }})
		want := http.StatusServiceUnavailable
		if name == "standby leader" {
			want = http.StatusOK
		}
		for _, path := range []string{"/standby-leader", "/standby_leader"} {
			if code, _ := get(t, srv, http.MethodGet, path); code != want {
				t.Errorf("GET %s on a %s: %d, want %d", path, name, code, want)
			}
			if code, _ := get(t, srv, http.MethodOptions, path); code != want {
				t.Errorf("OPTIONS %s on a %s: %d, want %d", path, name, code, want)
			}
		}
		if code, _ := get(t, srv, http.MethodGet, "/primary"); name == "standby leader" && code != http.StatusServiceUnavailable {
			t.Errorf("GET /primary on the standby leader: %d, want 503", code)
		}
		if name == "standby leader" {
			_, body := get(t, srv, http.MethodGet, "/patroni")
			if !strings.Contains(body, `"role":"standby_leader"`) {
				t.Errorf("GET /patroni on the standby leader: %s, want role standby_leader", body)
			}
		}
	}
}

// GET /history is the cluster history as Patroni's JSON list (empty before a change of primary); GET /config
// is the configuration in effect, 502 when there is none to show.
func TestHistoryAndConfig(t *testing.T) {
	snap := states()["primary"]
	cfg := &config.Config{Scope: "batman", Name: "n1"}
	cfg.PostgreSQL.Superuser = config.Credentials{Username: "postgres", Password: "Sup3r-secret"}
	srv, _ := api.New(api.Options{Snapshot: func() engine.Snapshot { return snap }, Effective: func() any { return cfg.Effective() }})
	if code, body := get(t, srv, http.MethodGet, "/history"); code != http.StatusOK || strings.TrimSpace(body) != "[]" {
		t.Errorf("GET /history: %d %q, want 200 []", code, body)
	}
	code, body := get(t, srv, http.MethodGet, "/config")
	if code != http.StatusOK || !strings.Contains(body, `"scope":"batman"`) || strings.Contains(body, "Sup3r-secret") ||
		!strings.Contains(body, `"password":"********"`) {
		t.Errorf("GET /config: %d %s, want 200, the scope and the password masked", code, body)
	}
	switched := snap
	cl := *snap.Cluster
	cl.History = dcs.History{Switches: []dcs.TimelineSwitch{{Timeline: 2, LSN: 50331744, Reason: "switchover", NewLeader: "n2",
		Time: time.Date(2026, 12, 6, 20, 15, 4, 0, time.UTC)}}}
	switched.Cluster = &cl
	hist, _ := api.New(api.Options{Snapshot: func() engine.Snapshot { return switched }})
	if code, body := get(t, hist, http.MethodGet, "/history"); code != http.StatusOK ||
		strings.TrimSpace(body) != `[[1,50331744,"switchover","2026-12-06T20:15:04.000000+00:00","n2"]]` {
		t.Errorf("GET /history after a switchover: %d %s, want Patroni's line for timeline 1 ending", code, body)
	}
	bare, _ := api.New(api.Options{Snapshot: func() engine.Snapshot { return snap }})
	if code, _ := get(t, bare, http.MethodGet, "/config"); code != http.StatusBadGateway {
		t.Errorf("GET /config without a configuration: %d, want 502", code)
	}
}

// POST /reinitialize answers as Patroni's: 503 with its reason on the leader, in a cluster
// without a leader and while a reinit runs (unless forced); else the request reaches the agent
// and the answer is 200 "reinitialize started".
func TestReinitialize(t *testing.T) {
	st := states()
	running := st["streaming replica"]
	running.State = engine.StateReinitializing
	for _, tc := range []struct {
		name, body string
		snap       engine.Snapshot
		requestErr error
		code       int
		text       string
	}{
		{"leader", `{}`, st["primary"], nil, 503, "I am the leader, can not reinitialize"},
		{"a primary without the key", `{}`, st["primary without leader key"], nil, 503, "Cluster has no leader, can not reinitialize"},
		{"replica", `{"force": false}`, st["streaming replica"], nil, 200, "reinitialize started"},
		{"replica, no body", ``, st["stopped"], nil, 200, "reinitialize started"},
		{"reinit in progress", `{}`, running, nil, 503, "reinitialize already in progress"},
		{"reinit in progress, forced", `{"force": true}`, running, nil, 200, "reinitialize started"},
		{"forced as a string", `{"force": "yes"}`, running, nil, 200, "reinitialize started"},
		{"the DCS refuses the request", `{}`, st["streaming replica"], errors.New("etcd unreachable"), 503, "etcd unreachable"},
		{"not JSON", `{force`, st["streaming replica"], nil, 400, "not a JSON object"},
	} {
		var asked []engine.ReinitRequest
		srv, _ := api.New(api.Options{Config: config.API{Username: "ops", Password: "pw"}, Snapshot: func() engine.Snapshot { return tc.snap }})
		srv.HandleAuthenticated("/reinitialize", api.ReinitializeHandler(func() engine.Snapshot { return tc.snap },
			func(_ context.Context, req engine.ReinitRequest) error {
				asked = append(asked, req)
				return tc.requestErr
			}))
		if code, text := postAsOps(t, srv, "/reinitialize", tc.body); code != tc.code || !strings.Contains(text, tc.text) {
			t.Errorf("%s: %d %q, want %d %q", tc.name, code, text, tc.code, tc.text)
		}
		if wantAsked := tc.code == 200 || tc.requestErr != nil; (len(asked) == 1) != wantAsked {
			t.Errorf("%s: the agent was asked %d times, want %v", tc.name, len(asked), wantAsked)
		}
	}
}

// GET /patroni builds Patroni's whole body from the snapshot; compare with BenchmarkPrimary.
func BenchmarkPatroni(b *testing.B) {
	snap := withServer(states()["primary"])
	srv, _ := api.New(api.Options{Snapshot: func() engine.Snapshot { return snap }})
	req := httptest.NewRequest(http.MethodGet, "/patroni", nil)
	b.ReportAllocs()
	for b.Loop() {
		srv.ServeHTTP(httptest.NewRecorder(), req)
	}
}
