package api_test

import (
	"errors"
	"io"
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

// States of a member, as the agent's snapshot describes them.
func states() map[string]engine.Snapshot {
	base := engine.Snapshot{Scope: "batman", Name: "n1", LastCycle: time.Now(), Started: time.Now()}
	cl := &dcs.Cluster{Leader: "n1"}
	primary := base
	primary.State, primary.Role, primary.Running, primary.Queried, primary.Leader, primary.LeaderName = dcs.StateRunning, dcs.RolePrimary, true, true, true, "n1"
	primary.Position, primary.LeaderPosition, primary.Timeline, primary.Cluster = 5<<20, 5<<20, 1, cl
	noKey := primary
	noKey.Leader, noKey.LeaderName = false, ""
	replica := base
	replica.State, replica.Role, replica.Running, replica.Queried, replica.InRecovery, replica.Streaming = dcs.StateRunning, dcs.RoleReplica, true, true, true, true
	replica.LeaderName, replica.Position, replica.LeaderPosition, replica.Timeline, replica.Cluster = "n0", 5<<20, 5<<20+1024, 1, cl
	archive := replica // replaying from an archive: no WAL receiver
	archive.Streaming = false
	lagging := replica
	lagging.LeaderPosition = replica.Position + 64<<20
	stopped := base
	stopped.State, stopped.Role, stopped.LeaderName = dcs.StateStopped, dcs.RoleReplica, "n0"
	return map[string]engine.Snapshot{"primary": primary, "primary without leader key": noKey, "streaming replica": replica,
		"archive replica": archive, "replica over the lag limit": lagging, "stopped": stopped}
}

func TestHealthStatusCodes(t *testing.T) {
	const ok, no = http.StatusOK, http.StatusServiceUnavailable
	want := map[string]map[string]int{
		//                          primary noKey  stream archive lagging stopped
		"/":                  {"primary": ok, "primary without leader key": no, "streaming replica": no, "archive replica": no, "replica over the lag limit": no, "stopped": no},
		"/primary":           {"primary": ok, "primary without leader key": no, "streaming replica": no, "archive replica": no, "replica over the lag limit": no, "stopped": no},
		"/master":            {"primary": ok, "primary without leader key": no, "streaming replica": no, "archive replica": no, "replica over the lag limit": no, "stopped": no},
		"/leader":            {"primary": ok, "primary without leader key": no, "streaming replica": no, "archive replica": no, "replica over the lag limit": no, "stopped": no},
		"/read-write":        {"primary": ok, "primary without leader key": no, "streaming replica": no, "archive replica": no, "replica over the lag limit": no, "stopped": no},
		"/replica":           {"primary": no, "primary without leader key": no, "streaming replica": ok, "archive replica": ok, "replica over the lag limit": ok, "stopped": no},
		"/replica?lag=16MB":  {"primary": no, "primary without leader key": no, "streaming replica": ok, "archive replica": ok, "replica over the lag limit": no, "stopped": no},
		"/replica?lag=2048":  {"primary": no, "primary without leader key": no, "streaming replica": ok, "archive replica": ok, "replica over the lag limit": no, "stopped": no},
		"/replica?lag=1000":  {"primary": no, "primary without leader key": no, "streaming replica": no, "archive replica": no, "replica over the lag limit": no, "stopped": no},
		"/read-only":         {"primary": ok, "primary without leader key": no, "streaming replica": ok, "archive replica": ok, "replica over the lag limit": ok, "stopped": no},
		"/read-only?lag=1MB": {"primary": ok, "primary without leader key": no, "streaming replica": ok, "archive replica": ok, "replica over the lag limit": no, "stopped": no},
		"/health":            {"primary": ok, "primary without leader key": ok, "streaming replica": ok, "archive replica": ok, "replica over the lag limit": ok, "stopped": no},
		"/liveness":          {"primary": ok, "primary without leader key": ok, "streaming replica": ok, "archive replica": ok, "replica over the lag limit": ok, "stopped": ok},
		"/readiness":         {"primary": ok, "primary without leader key": no, "streaming replica": ok, "archive replica": no, "replica over the lag limit": ok, "stopped": no},
	}
	for name, snap := range states() {
		snap := snap
		srv, err := api.New(api.Options{Snapshot: func() engine.Snapshot { return snap }, Liveness: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		ts := httptest.NewServer(srv)
		for path, codes := range want {
			for _, method := range []string{http.MethodGet, http.MethodHead, http.MethodOptions} {
				req, _ := http.NewRequest(method, ts.URL+path, nil)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != codes[name] {
					t.Errorf("%s %s on a %s: %d, want %d", method, path, name, resp.StatusCode, codes[name])
				}
				if method != http.MethodGet && len(body) != 0 {
					t.Errorf("%s %s answered with a body: %q", method, path, body)
				}
			}
		}
		ts.Close()
	}
}

func TestLivenessFollowsTheLoop(t *testing.T) {
	now := time.Now()
	snap := engine.Snapshot{LastCycle: now.Add(-time.Minute)}
	if c := api.Health("/liveness", "", snap, 30*time.Second, now); c != http.StatusServiceUnavailable {
		t.Errorf("a loop silent for a minute with a 30s limit: %d", c)
	}
	snap.Busy = true // a clone in flight keeps the loop busy, not stuck
	if c := api.Health("/liveness", "", snap, 30*time.Second, now); c != http.StatusOK {
		t.Errorf("a loop busy cloning: %d", c)
	}
}

func TestBodiesAndCluster(t *testing.T) {
	snap := states()["primary"]
	srv, _ := api.New(api.Options{Snapshot: func() engine.Snapshot { return snap }, Liveness: time.Hour,
		Status: func(cl dcs.Cluster) any { return map[string]any{"scope": "batman", "leader": cl.Leader} }})
	ts := httptest.NewServer(srv)
	defer ts.Close()
	for path, wantText := range map[string]string{"/": `"leader":"n1"`, "/cluster": `"scope":"batman"`, "/primary": `"role":"primary"`} {
		resp, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), wantText) || resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("GET %s: %d %s %q, want 200 with %s", path, resp.StatusCode, resp.Header.Get("Content-Type"), body, wantText)
		}
	}
	resp, _ := http.Post(ts.URL+"/primary", "text/plain", nil)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotImplemented {
		t.Errorf("POST /primary: %d, want 501", resp.StatusCode)
	}

	// A switchover scheduled for later, as Patroni's GET /cluster shows it.
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	snap.Scheduled = &engine.ChangeRequest{Kind: engine.Switchover, Leader: "n1", ScheduledAt: at}
	resp, err := http.Get(ts.URL + "/cluster")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := `"scheduled_switchover":{"at":"2030-01-02T03:04:05+00:00","from":"n1"}`; !strings.Contains(string(body), want) {
		t.Errorf("GET /cluster with a switchover scheduled: %s, want %s", body, want)
	}
}

func TestAuthenticatedHandlers(t *testing.T) {
	for _, tc := range []struct {
		name       string
		cfg        config.API
		user, pass string
		want       int
	}{
		{"right credentials", config.API{Username: "admin", Password: "pw"}, "admin", "pw", http.StatusAccepted},
		{"wrong password", config.API{Username: "admin", Password: "pw"}, "admin", "nope", http.StatusUnauthorized},
		{"no credentials sent", config.API{Username: "admin", Password: "pw"}, "", "", http.StatusUnauthorized},
		{"none configured", config.API{}, "admin", "pw", http.StatusForbidden},
	} {
		srv, _ := api.New(api.Options{Config: tc.cfg, Snapshot: func() engine.Snapshot { return engine.Snapshot{} }})
		called := false
		srv.HandleAuthenticated("/reinit", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			called = true
			w.WriteHeader(http.StatusAccepted)
		}))
		ts := httptest.NewServer(srv)
		req, _ := http.NewRequest(http.MethodPost, ts.URL+"/reinit", nil)
		if tc.user != "" {
			req.SetBasicAuth(tc.user, tc.pass)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		ts.Close()
		if resp.StatusCode != tc.want || called != (tc.want == http.StatusAccepted) {
			t.Errorf("%s: %d (handler called: %v), want %d", tc.name, resp.StatusCode, called, tc.want)
		}
	}
}

func TestMetrics(t *testing.T) {
	snap := states()["streaming replica"]
	m := api.NewMetrics("batman", "n1", func() engine.Snapshot { return snap })
	start := time.Now()
	m.AttemptEnded(engine.KindClone, dcs.Attempt{Method: "wal_e", Started: start, Duration: time.Second, Error: "x"}, 0)
	m.AttemptEnded(engine.KindClone, dcs.Attempt{Method: "basebackup", OK: true, Started: start, Duration: 3 * time.Second}, 4096)
	m.PluginLaunched("basebackup", 20*time.Millisecond, nil)
	m.DCSError(errors.New("unreachable"))
	m.ChangeDone(engine.Switchover)
	m.RejoinEnded(dcs.Attempt{Method: "rewind", Started: start, Duration: 2 * time.Second, Error: "wal_log_hints is off"})
	m.RejoinEnded(dcs.Attempt{Method: "rewind", OK: true, Started: start, Duration: 4 * time.Second})
	srv, _ := api.New(api.Options{Snapshot: func() engine.Snapshot { return snap }, Metrics: m})
	ts := httptest.NewServer(srv)
	defer ts.Close()
	resp, err := http.Get(ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`pgimaged_clone_attempts_total{member="n1",method="basebackup",scope="batman"} 1`,
		`pgimaged_clone_failures_total{member="n1",method="wal_e",scope="batman"} 1`,
		`pgimaged_clone_bytes_total{member="n1",method="basebackup",scope="batman"} 4096`,
		`pgimaged_clone_duration_seconds_count{member="n1",method="basebackup",scope="batman"} 1`,
		`pgimaged_plugin_launches_total{member="n1",method="basebackup",scope="batman"} 1`,
		`pgimaged_dcs_errors_total{member="n1",scope="batman"} 1`,
		`pgimaged_replica{member="n1",scope="batman"} 1`,
		`pgimaged_replication_lag_bytes{member="n1",scope="batman"} 1024`,
		`pgimaged_postgres_up{member="n1",scope="batman"} 1`,
		`pgimaged_switchovers_total{member="n1",scope="batman"} 1`,
		`pgimaged_failovers_total{member="n1",scope="batman"} 0`,
		`pgimaged_rejoins_total{member="n1",method="rewind",outcome="failure",scope="batman"} 1`,
		`pgimaged_rejoins_total{member="n1",method="rewind",outcome="success",scope="batman"} 1`,
		`pgimaged_rejoin_duration_seconds_sum{member="n1",method="rewind",scope="batman"} 6`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"16MB": 16 << 20, "1024": 1024, "10 kB": 10240, "1GB": 1 << 30, "5B": 5} {
		if got, ok := api.ParseSize(in); !ok || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "16mb", "lots"} {
		if _, ok := api.ParseSize(in); ok {
			t.Errorf("ParseSize(%q) accepted", in)
		}
	}
}

func BenchmarkPrimary(b *testing.B) {
	snap := states()["primary"]
	srv, _ := api.New(api.Options{Snapshot: func() engine.Snapshot { return snap }})
	req := httptest.NewRequest(http.MethodGet, "/primary", nil)
	b.ReportAllocs()
	for b.Loop() {
		srv.ServeHTTP(httptest.NewRecorder(), req)
	}
}
