package api_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pgimaged/pgimaged/core/api"
	"github.com/pgimaged/pgimaged/core/config"
	"github.com/pgimaged/pgimaged/core/dcs"
	"github.com/pgimaged/pgimaged/core/dcs/dcstest"
	"github.com/pgimaged/pgimaged/core/engine"
)

// member is a running member at a WAL position; a replica streams from n1 unless idle.
func member(name, role string, lsn int64, streams bool) dcs.Member {
	m := dcs.Member{Name: name, State: dcs.StateRunning, Role: role, Timeline: 1, XLogLocation: lsn,
		ConnURL: "postgres://127.0.0.1:5432/postgres", PGImaged: &dcs.MemberDetail{}}
	if streams {
		m.PGImaged.Upstream = "n1"
	}
	return m
}

// postAsOps sends POST path with body to srv over HTTP, with the credentials ops / pw, and
// returns the status code and the body.
func postAsOps(t *testing.T, srv http.Handler, path, body string) (int, string) {
	t.Helper()
	ts := httptest.NewServer(srv)
	defer ts.Close()
	req, _ := http.NewRequest(http.MethodPost, ts.URL+path, strings.NewReader(body))
	req.SetBasicAuth("ops", "pw")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	text, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(text)
}

// agentsDo is what the agents do with a recorded change in a test: carry it out, abort it, or
// nothing (no agent runs).
type agentsDo int

const (
	agentsIdle agentsDo = iota
	agentsCarryOut
	agentsAbort
)

// runAgents plays the agents' side of the change protocol on mem: once a change is asked, the
// leader gives up its key and the candidate takes it and removes the request, or the request is
// aborted with a reason.
func runAgents(ctx context.Context, mem *dcstest.Memory, sessions map[string]*dcstest.Session, do agentsDo) {
	st := mem.Open("agents")
	for ctx.Err() == nil {
		p, err := engine.ReadChange(ctx, st)
		if err != nil || p == nil || p.Phase != engine.PhaseAsked {
			time.Sleep(5 * time.Millisecond)
			continue
		}
		if do == agentsAbort {
			next := p.ChangeRequest
			next.Phase, next.Reason = engine.PhaseAborted, "the candidate did not replay the checkpoint in time"
			_, _ = engine.AdvanceChange(ctx, st, p, &next)
			return
		}
		if p.Leader != "" {
			_ = sessions[p.Leader].ReleaseLeader(ctx)
		}
		_, _ = sessions[p.Candidate].AcquireLeader(ctx, p.Candidate)
		_, _ = engine.AdvanceChange(ctx, st, p, nil)
		return
	}
}

// POST /switchover and /failover answer with Patroni's codes and messages: 400 for what Patroni
// refuses as malformed, 412 with the reason when the change is not possible (nothing recorded),
// 200 once the candidate leads, 503 when the change was aborted or nobody carried it out.
func TestSwitchoverAndFailover(t *testing.T) {
	three := []dcs.Member{member("n1", dcs.RolePrimary, 100_000_000, false), member("n2", dcs.RoleReplica, 99_950_000, true),
		member("n3", dcs.RoleReplica, 99_900_000, true)}
	idle := []dcs.Member{member("n1", dcs.RolePrimary, 100_000_000, false), member("n2", dcs.RoleReplica, 99_950_000, false)}
	for _, tc := range []struct {
		name, path, body string
		members          []dcs.Member
		leader           string // who holds the leader key
		pending          bool   // another change is recorded already
		paused           bool   // the cluster is in maintenance mode
		do               agentsDo
		code             int
		text             string
		recorded         engine.ChangeKind // the kind recorded, "" for nothing
		newLeader        string
	}{
		{"switchover without leader", "/switchover", `{"candidate": "n2"}`, three, "n1", false, false, agentsCarryOut, 400,
			"Switchover could be performed only from a specific leader", "", "n1"},
		{"failover without candidate", "/failover", `{}`, three[1:], "", false, false, agentsCarryOut, 400,
			"Failover could be performed only to a specific candidate", "", ""},
		{"scheduled switchover", "/switchover", `{"leader": "n1", "scheduled_at": "2030-01-01T00:00:00+00:00"}`, three, "n1", false, false,
			agentsIdle, 202, "Switchover scheduled", engine.Switchover, "n1"},
		{"scheduled switchover to a candidate", "/switchover", `{"leader": "n1", "candidate": "n3", "scheduled_at": "2030-01-01 00:00:00.5+0100"}`, three, "n1", false, false,
			agentsIdle, 202, "Switchover scheduled", engine.Switchover, "n1"},
		{"scheduled failover from a leader", "/failover", `{"leader": "n1", "candidate": "n2", "scheduled_at": "2030-01-01T00:00:00Z"}`, three, "n1", false, false,
			agentsIdle, 202, "Failover scheduled", engine.Switchover, "n1"},
		{"scheduled failover without a leader", "/failover", `{"candidate": "n2", "scheduled_at": "2030-01-01T00:00:00+00:00"}`, three[1:], "", false, false,
			agentsCarryOut, 400, "Scheduled failover is possible only from a specific leader", "", ""},
		{"scheduled in the past", "/switchover", `{"leader": "n1", "scheduled_at": "2020-01-01T00:00:00+00:00"}`, three, "n1", false, false,
			agentsIdle, 422, "Cannot schedule switchover in the past", "", "n1"},
		{"scheduled without a time zone", "/switchover", `{"leader": "n1", "scheduled_at": "2030-01-01T00:00:00"}`, three, "n1", false, false,
			agentsIdle, 400, "Timezone information is mandatory for the scheduled switchover", "", "n1"},
		{"scheduled at what is no time", "/switchover", `{"leader": "n1", "scheduled_at": "tomorrow"}`, three, "n1", false, false,
			agentsIdle, 422, "Unable to parse scheduled timestamp", "", "n1"},
		{"scheduled while paused", "/switchover", `{"leader": "n1", "scheduled_at": "2030-01-01T00:00:00+00:00"}`, three, "n1", false, true,
			agentsIdle, 400, "Can't schedule switchover in the paused state", "", "n1"},
		{"scheduled from a member that does not lead", "/switchover", `{"leader": "n2", "scheduled_at": "2030-01-01T00:00:00+00:00"}`, three, "n1", false, false,
			agentsIdle, 412, "leader name does not match", "", "n1"},
		{"to the leader itself", "/switchover", `{"leader": "n1", "candidate": "n1"}`, three, "n1", false, false, agentsCarryOut, 400,
			"Switchover target and source are the same", "", "n1"},
		{"not JSON", "/switchover", `{leader`, three, "n1", false, false, agentsCarryOut, 400, "not a JSON object", "", "n1"},
		{"leader does not match", "/switchover", `{"leader": "n3", "candidate": "n2"}`, three, "n1", false, false, agentsCarryOut, 412,
			"leader name does not match", "", "n1"},
		{"unknown candidate", "/switchover", `{"leader": "n1", "candidate": "n9"}`, three, "n1", false, false, agentsCarryOut, 412,
			"candidate does not exists", "", "n1"},
		{"only the leader", "/switchover", `{"leader": "n1"}`, three[:1], "n1", false, false, agentsCarryOut, 412,
			"switchover is not possible: cluster does not have members except leader", "", "n1"},
		{"candidate does not stream", "/switchover", `{"leader": "n1", "candidate": "n2"}`, idle, "n1", false, false, agentsCarryOut, 412,
			"switchover is not possible: member n2 does not stream WAL", "", "n1"},
		{"failover to a member behind", "/failover", `{"candidate": "n3"}`, three[1:], "", false, false, agentsCarryOut, 412,
			"failover is not possible: member n3 is not the most advanced member; n2 is", "", ""},
		{"another change pending", "/switchover", `{"leader": "n1", "candidate": "n2"}`, three, "n1", true, false, agentsIdle, 412,
			"switchover is not possible: another change of primary is pending", engine.Failover, "n1"},
		{"paused", "/switchover", `{"leader": "n1", "candidate": "n2"}`, three, "n1", false, true, agentsCarryOut, 412,
			"switchover is not possible: the cluster is paused", "", "n1"},
		{"switchover", "/switchover", `{"leader": "n1", "candidate": "n2"}`, three, "n1", false, false, agentsCarryOut, 200,
			`Successfully switched over to "n2"`, engine.Switchover, "n2"},
		{"switchover to the most advanced", "/switchover", `{"leader": "n1"}`, three, "n1", false, false, agentsCarryOut, 200,
			`Successfully switched over to "n2"`, engine.Switchover, "n2"},
		{"failover", "/failover", `{"candidate": "n2"}`, three[1:], "", false, false, agentsCarryOut, 200,
			`Successfully failed over to "n2"`, engine.Failover, "n2"},
		{"failover while the leader runs", "/failover", `{"candidate": "n3"}`, three, "n1", false, false, agentsCarryOut, 200,
			`Successfully failed over to "n3"`, engine.Switchover, "n3"},
		{"failover from a named leader", "/failover", `{"leader": "n1", "member": "n3"}`, three, "n1", false, false, agentsCarryOut, 200,
			`Successfully switched over to "n3"`, engine.Switchover, "n3"},
		{"aborted", "/switchover", `{"leader": "n1", "candidate": "n2"}`, three, "n1", false, false, agentsAbort, 503,
			"Switchover failed: the candidate did not replay the checkpoint in time", engine.Switchover, "n1"},
		{"no agent takes it up", "/switchover", `{"leader": "n1", "candidate": "n2"}`, three, "n1", false, false, agentsIdle, 503,
			"Switchover failed: no agent took the request up in time", engine.Switchover, "n1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			mem := dcstest.NewMemory()
			sessions := map[string]*dcstest.Session{}
			for _, m := range tc.members {
				sessions[m.Name] = mem.Open(m.Name)
				if err := sessions[m.Name].PutMember(ctx, m); err != nil {
					t.Fatal(err)
				}
			}
			if tc.leader != "" {
				if ok, err := sessions[tc.leader].AcquireLeader(ctx, tc.leader); !ok || err != nil {
					t.Fatalf("taking the leader key: %v %v", ok, err)
				}
			}
			if tc.pending {
				if err := engine.RequestChange(ctx, mem.Open("op"), engine.ChangeRequest{Kind: engine.Failover, Candidate: "n3", By: "operator"}); err != nil {
					t.Fatal(err)
				}
			}
			if tc.paused {
				if err := engine.SetPause(ctx, mem.Open("op"), &engine.Pause{By: "operator"}); err != nil {
					t.Fatal(err)
				}
			}
			if tc.do != agentsIdle {
				actx, cancel := context.WithCancel(ctx)
				done := make(chan struct{})
				go func() { defer close(done); runAgents(actx, mem, sessions, tc.do) }()
				defer func() { cancel(); <-done }()
			}
			srv, _ := api.New(api.Options{Config: config.API{Username: "ops", Password: "pw"}, Snapshot: func() engine.Snapshot { return engine.Snapshot{} }})
			opts := api.ChangeOptions{Open: func(context.Context) (dcs.Store, error) { return mem.Open("api"), nil },
				MaxLag: config.DefaultMaximumLagOnFailover, Wait: time.Minute, Poll: 5 * time.Millisecond}
			if tc.do == agentsIdle {
				opts.Wait = 300 * time.Millisecond // nobody ends the change: the bound does
			}
			srv.HandleAuthenticated("/switchover", api.ChangeHandler(engine.Switchover, opts))
			srv.HandleAuthenticated("/failover", api.ChangeHandler(engine.Failover, opts))
			if code, text := postAsOps(t, srv, tc.path, tc.body); code != tc.code || !strings.Contains(text, tc.text) {
				t.Errorf("POST %s %s: %d %q, want %d %q", tc.path, tc.body, code, text, tc.code, tc.text)
			}
			st := mem.Open("check")
			cl, _ := st.Cluster(ctx)
			if cl.Leader != tc.newLeader {
				t.Errorf("the leader key is held by %q, want %q", cl.Leader, tc.newLeader)
			}
			p, _ := engine.ReadChange(ctx, st)
			switch {
			case tc.recorded == "" && p != nil:
				t.Errorf("a refused request recorded %+v", p.ChangeRequest)
			case tc.code == 503 && (p == nil || p.Phase != engine.PhaseAborted || p.Kind != tc.recorded):
				t.Errorf("a failed %s reads %+v, want it aborted as the record of its outcome", tc.recorded, p)
			case tc.code == 200 && p != nil:
				t.Errorf("a change done still reads %+v", p.ChangeRequest)
			case tc.code == 202 && (p == nil || p.Kind != tc.recorded || p.ScheduledAt.IsZero() || !p.Deadline.After(p.ScheduledAt)):
				t.Errorf("a scheduled change reads %+v, want a %s with its time, its deadline after it", p, tc.recorded)
			}
			if b, ok, _ := st.Get(ctx, dcs.FailoverKey); (tc.code == 202) != ok {
				t.Errorf("Patroni's failover key after %d: %s (present %v), want it only for a scheduled switchover", tc.code, b, ok)
			}
		})
	}
}

// Without credentials a switchover is refused before anything is read or recorded.
func TestSwitchoverNeedsCredentials(t *testing.T) {
	opened := false
	srv, _ := api.New(api.Options{Config: config.API{Username: "ops", Password: "pw"}, Snapshot: func() engine.Snapshot { return engine.Snapshot{} }})
	srv.HandleAuthenticated("/switchover", api.ChangeHandler(engine.Switchover, api.ChangeOptions{
		Open: func(context.Context) (dcs.Store, error) { opened = true; return dcstest.NewMemory().Open("api"), nil }}))
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/switchover", strings.NewReader(`{"leader": "n1"}`)))
	if rec.Code != http.StatusUnauthorized || opened {
		t.Errorf("POST /switchover without credentials: %d (DCS opened: %v), want 401 and nothing opened", rec.Code, opened)
	}
}

// DELETE /switchover removes a switchover scheduled for later, as Patroni's: 200, then 404 when
// none is; a change that is not scheduled is left alone.
func TestCancelScheduledSwitchover(t *testing.T) {
	mem := dcstest.NewMemory()
	ctx := t.Context()
	srv, _ := api.New(api.Options{Config: config.API{Username: "ops", Password: "pw"}, Snapshot: func() engine.Snapshot { return engine.Snapshot{} }})
	opts := api.ChangeOptions{Open: func(context.Context) (dcs.Store, error) { return mem.Open("api"), nil }, Wait: time.Minute}
	srv.HandleAuthenticatedDelete("/switchover", api.CancelScheduledHandler(opts))
	del := func() (int, string) {
		req := httptest.NewRequest(http.MethodDelete, "/switchover", nil)
		req.SetBasicAuth("ops", "pw")
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
	st := mem.Open("op")
	later := time.Now().Add(time.Hour)
	if err := engine.RequestChange(ctx, st, engine.ChangeRequest{Kind: engine.Switchover, Leader: "n1", ScheduledAt: later, Deadline: later.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if code, text := del(); code != 200 || !strings.Contains(text, "scheduled switchover deleted") {
		t.Errorf("DELETE /switchover: %d %q, want 200 scheduled switchover deleted", code, text)
	}
	if p, _ := engine.ReadChange(ctx, st); p != nil {
		t.Errorf("the scheduled switchover is still recorded: %+v", p.ChangeRequest)
	}
	if code, text := del(); code != 404 || !strings.Contains(text, "no switchover is scheduled") {
		t.Errorf("DELETE /switchover with none scheduled: %d %q, want 404", code, text)
	}
	if err := engine.RequestChange(ctx, st, engine.ChangeRequest{Kind: engine.Switchover, Leader: "n1", Candidate: "n2", Deadline: time.Now().Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if code, _ := del(); code != 404 {
		t.Errorf("DELETE /switchover while a switchover asked now runs: %d, want 404", code)
	}
	if p, _ := engine.ReadChange(ctx, st); p == nil {
		t.Error("DELETE /switchover removed a switchover that was not scheduled")
	}
	req := httptest.NewRequest(http.MethodDelete, "/switchover", nil)
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, req)
	if rec.Code != http.StatusUnauthorized {
		t.Errorf("DELETE /switchover without credentials: %d, want 401", rec.Code)
	}
}
