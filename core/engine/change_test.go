package engine_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pgimaged/pgimaged/core/config"
	"github.com/pgimaged/pgimaged/core/dcs"
	"github.com/pgimaged/pgimaged/core/dcs/dcstest"
	"github.com/pgimaged/pgimaged/core/engine"
)

// positioned is a running member at a WAL position, streaming unless it is the primary.
func positioned(name, role string, tli int, lsn int64, tags map[string]any) dcs.Member {
	m := dcs.Member{Name: name, State: dcs.StateRunning, Role: role, Timeline: tli, XLogLocation: lsn, Tags: tags,
		ConnURL: "postgres://127.0.0.1:5432/postgres", PGImaged: &dcs.MemberDetail{}}
	if role == dcs.RoleReplica {
		m.PGImaged.Upstream = "n1"
	}
	return m
}

func TestCheckSwitchover(t *testing.T) {
	base := func() dcs.Cluster {
		return dcs.Cluster{Leader: "n1", Members: []dcs.Member{
			positioned("n1", dcs.RolePrimary, 1, 100_000_000, nil),
			positioned("n2", dcs.RoleReplica, 1, 99_900_000, nil),
			positioned("n3", dcs.RoleReplica, 1, 99_950_000, nil),
		}}
	}
	cases := []struct {
		name      string
		change    func(*dcs.Cluster)
		candidate string
		want      string // the candidate chosen, or a piece of the refusal
		refused   bool
	}{
		{"most advanced without a candidate", nil, "", "n3", false},
		{"the candidate given", nil, "n2", "n2", false},
		{"nofailover skipped", func(c *dcs.Cluster) { c.Members[2].Tags = map[string]any{"nofailover": true} }, "", "n2", false},
		{"nofailover named", func(c *dcs.Cluster) { c.Members[2].Tags = map[string]any{"nofailover": "true"} }, "n3", "tagged nofailover", true},
		{"behind by more than the lag", func(c *dcs.Cluster) { c.Members[1].XLogLocation = 90_000_000 }, "n2", "10000000 bytes behind", true},
		{"not streaming", func(c *dcs.Cluster) { c.Members[1].PGImaged.Upstream = "" }, "n2", "does not stream", true},
		{"mid-clone", func(c *dcs.Cluster) { c.Members[1].State = dcs.StateCreatingReplica }, "n2", "middle of a clone", true},
		{"the leader itself", nil, "n1", "leader already", true},
		{"unknown member", nil, "n9", "not published", true},
		{"no leader", func(c *dcs.Cluster) { c.Leader = "" }, "n2", "use failover", true},
		{"synchronous mode: the synchronous standby without a candidate", func(c *dcs.Cluster) {
			c.Sync = &dcs.SyncState{Leader: "n1", Standbys: []string{"n2"}}
		}, "", "n2", false},
		{"synchronous mode: an asynchronous candidate", func(c *dcs.Cluster) {
			c.Sync = &dcs.SyncState{Leader: "n1", Standbys: []string{"n2"}}
		}, "n3", "not a synchronous standby (the sync key names: n2)", true},
		{"synchronous mode, no synchronous standby", func(c *dcs.Cluster) { c.Sync = &dcs.SyncState{Leader: "n1"} }, "",
			"member n3 is not a synchronous standby (the sync key names: none)", true},
		{"nobody can", func(c *dcs.Cluster) {
			c.Members[1].PGImaged.Upstream = ""
			c.Members[2].Tags = map[string]any{"nofailover": true}
		}, "", "no replica can take over", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cl := base()
			if tc.change != nil {
				tc.change(&cl)
			}
			req, err := engine.CheckSwitchover(cl, tc.candidate, config.DefaultMaximumLagOnFailover)
			if tc.refused {
				var r *engine.ChangeRefusal
				if !errors.As(err, &r) || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("CheckSwitchover = %+v, %v; want a refusal saying %q", req, err, tc.want)
				}
				return
			}
			if err != nil || req.Candidate != tc.want || req.Leader != "n1" || req.Kind != engine.Switchover {
				t.Fatalf("CheckSwitchover = %+v, %v; want a switchover from n1 to %s", req, err, tc.want)
			}
		})
	}
}

// TestCheckSwitchoverSettled: a switchover refused only because the leader published its
// position after a burst of WAL that its replicas had not yet published is checked again once
// they have; a candidate still behind after it published anew, or one that does not publish
// again within the window, is refused; other refusals are not waited on.
func TestCheckSwitchoverSettled(t *testing.T) {
	const leaderAt, before = 201_326_808, 185_691_104 // 0/C0000D8 after a segment switch, 0/B116BE0
	stale := func() dcs.Cluster {
		return dcs.Cluster{Leader: "n1", Members: []dcs.Member{
			positioned("n1", dcs.RolePrimary, 7, leaderAt, nil),
			positioned("n2", dcs.RoleReplica, 7, before, nil),
			positioned("n3", dcs.RoleReplica, 7, before, nil),
		}}
	}
	publish := func(at map[string]int64) dcs.Cluster {
		cl := stale()
		for i, m := range cl.Members {
			if lsn, ok := at[m.Name]; ok {
				cl.Members[i].XLogLocation = lsn
			}
		}
		return cl
	}
	cases := []struct {
		name      string
		candidate string
		reads     []dcs.Cluster // what the DCS holds at each later read; the last stays
		want      string        // the candidate chosen, or a piece of the refusal
		refused   bool
		maxReads  int // at most this many reads (0: any)
	}{
		{name: "the candidate publishes its position", candidate: "n2",
			reads: []dcs.Cluster{stale(), publish(map[string]int64{"n2": leaderAt})}, want: "n2"},
		{name: "without a candidate, one publishes", candidate: "",
			reads: []dcs.Cluster{stale(), publish(map[string]int64{"n3": leaderAt - 100})}, want: "n3"},
		{name: "published anew and still behind", candidate: "n2",
			reads: []dcs.Cluster{publish(map[string]int64{"n2": before + 1000})}, want: "bytes behind the leader", refused: true, maxReads: 1},
		{name: "never published again", candidate: "n2",
			reads: []dcs.Cluster{stale()}, want: "15635704 bytes behind the leader", refused: true},
		{name: "not a lag: not waited on", candidate: "n9",
			reads: []dcs.Cluster{publish(map[string]int64{"n2": leaderAt})}, want: "not published", refused: true, maxReads: -1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := 0
			read := func(context.Context) (dcs.Cluster, error) {
				n++
				return tc.reads[min(n, len(tc.reads))-1], nil
			}
			req, err := engine.CheckSwitchoverSettled(context.Background(), read, stale(), tc.candidate,
				config.DefaultMaximumLagOnFailover, 200*time.Millisecond, time.Millisecond)
			switch {
			case tc.maxReads == -1 && n > 0:
				t.Errorf("the DCS was read again %d times for a refusal that is not a lag", n)
			case tc.maxReads > 0 && n > tc.maxReads:
				t.Errorf("the DCS was read %d times, want at most %d: the candidate had published anew", n, tc.maxReads)
			}
			if tc.refused {
				var r *engine.ChangeRefusal
				if !errors.As(err, &r) || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("CheckSwitchoverSettled = %+v, %v; want a refusal saying %q", req, err, tc.want)
				}
				return
			}
			if err != nil || req.Candidate != tc.want || req.Leader != "n1" {
				t.Fatalf("CheckSwitchoverSettled = %+v, %v; want a switchover from n1 to %s", req, err, tc.want)
			}
		})
	}
}

func TestCheckFailover(t *testing.T) {
	base := func() dcs.Cluster {
		return dcs.Cluster{Members: []dcs.Member{
			positioned("n2", dcs.RoleReplica, 1, 99_900_000, nil),
			positioned("n3", dcs.RoleReplica, 1, 99_950_000, nil),
		}}
	}
	t.Run("the most advanced", func(t *testing.T) {
		req, err := engine.CheckFailover(base(), "n3", false)
		if err != nil || req.Candidate != "n3" || req.Kind != engine.Failover || req.LostWindow != 0 {
			t.Fatalf("CheckFailover = %+v, %v", req, err)
		}
	})
	t.Run("behind, refused with the positions", func(t *testing.T) {
		_, err := engine.CheckFailover(base(), "n2", false)
		var r *engine.ChangeRefusal
		if !errors.As(err, &r) || len(r.Positions) != 2 || r.Positions[0].Member != "n3" || r.Positions[1].Behind != 50_000 {
			t.Fatalf("CheckFailover = %v (%+v); want a refusal with n3 first and n2 50000 bytes behind", err, r)
		}
		if !strings.Contains(err.Error(), "n2: timeline 1 at 0/5F45A60, 50000 bytes behind") {
			t.Errorf("the refusal does not show the positions in bytes: %v", err)
		}
	})
	t.Run("behind, forced: the window is recorded", func(t *testing.T) {
		req, err := engine.CheckFailover(base(), "n2", true)
		if err != nil || !req.Force || req.LostWindow != 50_000 {
			t.Fatalf("CheckFailover(force) = %+v, %v; want a forced failover losing 50000 bytes", req, err)
		}
	})
	t.Run("synchronous mode: the synchronous standby, though another received more", func(t *testing.T) {
		cl := base()
		cl.Sync = &dcs.SyncState{Leader: "n1", Standbys: []string{"n2"}}
		if req, err := engine.CheckFailover(cl, "n2", false); err != nil || req.Candidate != "n2" || req.LostWindow != 0 {
			t.Fatalf("CheckFailover = %+v, %v; the synchronous standby holds every acknowledged write", req, err)
		}
	})
	t.Run("synchronous mode: an asynchronous candidate is refused, even the most advanced", func(t *testing.T) {
		cl := base()
		cl.Sync = &dcs.SyncState{Leader: "n1", Standbys: []string{"n2"}}
		_, err := engine.CheckFailover(cl, "n3", false)
		var r *engine.ChangeRefusal
		if !errors.As(err, &r) || !strings.Contains(err.Error(), "member n3 is not a synchronous standby") {
			t.Fatalf("CheckFailover = %v; want a refusal naming the synchronous standbys", err)
		}
		if req, err := engine.CheckFailover(cl, "n3", true); err != nil || req.Candidate != "n3" || !req.Force {
			t.Fatalf("CheckFailover(force) = %+v, %v; the operator may accept it", req, err)
		}
	})
	t.Run("synchronous mode before the first sync key: no member is known to hold every write", func(t *testing.T) {
		cl := engine.InSynchronousMode(base(), true)
		_, err := engine.CheckFailover(cl, "n3", false)
		if err == nil || !strings.Contains(err.Error(), "the sync key names: none") {
			t.Fatalf("CheckFailover = %v; want a refusal: the primary may have acknowledged commits no standby received", err)
		}
		if req, err := engine.CheckFailover(cl, "n3", true); err != nil || !req.Force {
			t.Fatalf("CheckFailover(force) = %+v, %v; the operator may accept it", req, err)
		}
		if req, err := engine.CheckFailover(engine.InSynchronousMode(base(), false), "n3", false); err != nil || req.Candidate != "n3" {
			t.Fatalf("CheckFailover = %+v, %v; outside synchronous mode the most advanced member takes over", req, err)
		}
	})
	t.Run("promoted by hand: a later timeline leads", func(t *testing.T) {
		cl := base()
		cl.Members[0] = positioned("n2", dcs.RolePrimary, 2, 99_000_000, nil)
		if req, err := engine.CheckFailover(cl, "n2", false); err != nil || req.Candidate != "n2" {
			t.Fatalf("CheckFailover = %+v, %v; a member on a later timeline is the most advanced", req, err)
		}
	})
	for _, tc := range []struct {
		name, candidate, want string
		change                func(*dcs.Cluster)
	}{
		{"a leader holds the key", "n3", "use switchover", func(c *dcs.Cluster) { c.Leader = "n1" }},
		{"no candidate", "", "needs --candidate", nil},
		{"unknown", "n9", "not published", nil},
		{"nofailover", "n3", "nofailover", func(c *dcs.Cluster) { c.Members[1].Tags = map[string]any{"nofailover": true} }},
		{"stopped", "n3", "not running", func(c *dcs.Cluster) { c.Members[1].State = dcs.StateStopped }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cl := base()
			if tc.change != nil {
				tc.change(&cl)
			}
			if _, err := engine.CheckFailover(cl, tc.candidate, true); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("CheckFailover = %v, want a refusal saying %q", err, tc.want)
			}
		})
	}
}

// TestRequestChangeOneWins: of operators asking at once, one request is recorded and the others
// are told whose; a phase moves only from what was read.
func TestRequestChangeOneWins(t *testing.T) {
	mem := dcstest.NewMemory()
	ctx := t.Context()
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() {
			st := mem.Open("op")
			errs[i] = engine.RequestChange(ctx, st, engine.ChangeRequest{Kind: engine.Failover, Candidate: "n2", By: "operator " + string(rune('a'+i))})
		})
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, engine.ErrChangePending) || !strings.Contains(err.Error(), "asked by operator"):
			t.Errorf("a losing request: %v, want ErrChangePending naming the winner", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d requests recorded, want 1", won)
	}
	st := mem.Open("n2")
	p, err := engine.ReadChange(ctx, st)
	if err != nil || p == nil || p.Phase != engine.PhaseAsked {
		t.Fatalf("ReadChange = %+v, %v", p, err)
	}
	next := p.ChangeRequest
	next.Phase = engine.PhasePromoting
	if ok, err := engine.AdvanceChange(ctx, st, p, &next); !ok || err != nil {
		t.Fatalf("advancing from the phase read: %v, %v", ok, err)
	}
	if ok, _ := engine.AdvanceChange(ctx, st, p, nil); ok {
		t.Error("a change advanced from a stale read")
	}
	p, _ = engine.ReadChange(ctx, st)
	if ok, err := engine.AdvanceChange(ctx, st, p, nil); !ok || err != nil {
		t.Fatalf("removing the done change: %v, %v", ok, err)
	}
	if p, _ := engine.ReadChange(ctx, st); p != nil {
		t.Errorf("a removed change still reads %+v", p)
	}
}

// A scheduled switchover whose time has not come gives way to the next request (as Patroni's
// key is overwritten) and can be cancelled; once due, it is pending like any other.
func TestScheduledSwitchoverGivesWay(t *testing.T) {
	mem := dcstest.NewMemory()
	ctx := t.Context()
	st := mem.Open("op")
	later := time.Now().Add(time.Hour)
	sched := engine.ChangeRequest{Kind: engine.Switchover, Leader: "n1", Candidate: "n2", ScheduledAt: later, Deadline: later.Add(time.Minute)}
	if err := engine.RequestChange(ctx, st, sched); err != nil {
		t.Fatal(err)
	}
	if p, err := engine.CancelScheduled(ctx, st); err != nil || p == nil || p.Candidate != "n2" {
		t.Fatalf("CancelScheduled = %+v, %v; want the scheduled switchover", p, err)
	}
	if p, err := engine.CancelScheduled(ctx, st); err != nil || p != nil {
		t.Fatalf("CancelScheduled with none scheduled = %+v, %v; want none", p, err)
	}
	if err := engine.RequestChange(ctx, st, sched); err != nil {
		t.Fatal(err)
	}
	now := engine.ChangeRequest{Kind: engine.Failover, Candidate: "n3", Deadline: time.Now().Add(time.Minute)}
	if err := engine.RequestChange(ctx, st, now); err != nil {
		t.Fatalf("a failover while a switchover is scheduled later: %v, want it recorded", err)
	}
	if p, _ := engine.ReadChange(ctx, st); p == nil || p.Kind != engine.Failover {
		t.Fatalf("pending: %+v, want the failover", p)
	}
	if p, err := engine.CancelScheduled(ctx, st); err != nil || p != nil {
		t.Errorf("CancelScheduled removed %+v (%v), a change that is not scheduled", p, err)
	}
	if p, _ := engine.ReadChange(ctx, st); p == nil || p.Kind != engine.Failover {
		t.Fatalf("pending after CancelScheduled: %+v, want the failover still", p)
	}

	due := sched
	due.ScheduledAt, due.Deadline = time.Now().Add(-time.Second), time.Now().Add(time.Minute)
	st2 := dcstest.NewMemory().Open("op")
	if err := engine.RequestChange(ctx, st2, due); err != nil {
		t.Fatal(err)
	}
	if err := engine.RequestChange(ctx, st2, now); !errors.Is(err, engine.ErrChangePending) || !strings.Contains(err.Error(), "scheduled at") {
		t.Errorf("a failover while a due scheduled switchover is pending: %v, want ErrChangePending naming it", err)
	}
}

// While a switchover waits for its time, Patroni's failover key holds it as Patroni writes one;
// once none waits (cancelled, or due), the key is gone.
func TestMirrorScheduled(t *testing.T) {
	ctx := t.Context()
	st := dcstest.NewMemory().Open("op")
	now := time.Date(2030, 1, 2, 3, 0, 0, 0, time.UTC)
	req := &engine.ChangeRequest{Kind: engine.Switchover, Leader: "n1", Candidate: "n2", Phase: engine.PhaseAsked,
		ScheduledAt: now.Add(4*time.Minute + 5*time.Second)}
	if err := engine.MirrorScheduled(ctx, st, req, now); err != nil {
		t.Fatal(err)
	}
	b, ok, err := st.Get(ctx, dcs.FailoverKey)
	if want := `{"leader":"n1","member":"n2","scheduled_at":"2030-01-02T03:04:05+00:00"}`; err != nil || !ok || string(b) != want {
		t.Fatalf("failover key = %s (%v, %v), want %s", b, ok, err, want)
	}
	if err := engine.MirrorScheduled(ctx, st, req, req.ScheduledAt.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if b, ok, _ := st.Get(ctx, dcs.FailoverKey); ok {
		t.Errorf("the failover key still holds %s once the switchover is due", b)
	}
	if err := engine.MirrorScheduled(ctx, st, req, now); err != nil {
		t.Fatal(err)
	}
	if err := engine.MirrorScheduled(ctx, st, nil, now); err != nil {
		t.Fatal(err)
	}
	if b, ok, _ := st.Get(ctx, dcs.FailoverKey); ok {
		t.Errorf("the failover key still holds %s with no switchover scheduled", b)
	}
}
