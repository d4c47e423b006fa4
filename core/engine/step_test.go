package engine_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pgimaged/pgimaged/core/dcs"
	"github.com/pgimaged/pgimaged/core/engine"
	"github.com/pgimaged/pgimaged/core/pg"
)

// kinds names the effects, for comparing a batch.
func kinds(effs []engine.Effect) string {
	var out []string
	for _, e := range effs {
		name := strings.TrimPrefix(fmt.Sprintf("%T", e), "engine.")
		switch e := e.(type) {
		case engine.Log:
			continue
		case engine.Mark:
			name = fmt.Sprintf("Mark(%s=%v)", e.Kind, e.On)
		case engine.Publish:
			name = "Publish(" + e.Member.State + ")"
		}
		out = append(out, name)
	}
	return strings.Join(out, " ")
}

// stepCase is one Step call of a protocol: the result fed back (nil: a new cycle) and the
// effects wanted, as kinds names them.
type stepCase struct {
	result *engine.Result
	want   string
}

// runSteps steps st through cases with obs, failing at the first batch that differs; it
// returns the state and every effect asked for.
func runSteps(t *testing.T, st engine.State, obs engine.Observation, cases []stepCase) (engine.State, []engine.Effect) {
	t.Helper()
	var all []engine.Effect
	for i, c := range cases {
		o := obs
		o.Result = c.result
		var effs []engine.Effect
		st, effs = engine.Step(st, o)
		if got := kinds(effs); got != c.want {
			t.Fatalf("step %d: effects %s, want %s", i+1, got, c.want)
		}
		all = append(all, effs...)
	}
	return st, all
}

// A bootstrap is a chain of awaited effects: each result comes back to Step, which holds the
// protocol's progress in State; an uncertain record is read back before the key is taken.
func TestStepBootstrapProtocol(t *testing.T) {
	obs := engine.Observation{Member: "node1", Cluster: &dcs.Cluster{}, DataDir: engine.DirEmpty}
	st := engine.State{Name: "node1", LoopWait: 10 * time.Second}
	st, _ = runSteps(t, st, obs, []stepCase{
		{nil, "Mark(needs reinit=false) Mark(led=false) TryInitialize"},
		{&engine.Result{Won: true}, "Publish(bootstrapping) RunBootstrap"},
		{&engine.Result{SysID: "7300000000000000001"}, "SetInitialize"},
		{&engine.Result{Err: fmt.Errorf("lost answer: %w", dcs.ErrUnavailable)}, "ReadBackInitialize"},
		{&engine.Result{Known: true, Written: true}, "Mark(complete=true) Mark(led=true) AcquireLeader"},
		{&engine.Result{Held: true}, "Publish(running) Wait"},
	})
	if st.Role != dcs.RolePrimary || st.SysID != "7300000000000000001" || st.Pending != nil || st.MustRelease {
		t.Errorf("state after the bootstrap: %+v", st)
	}
}

// A record that cannot be read back keeps the new cluster and asks again next cycle; one that
// was refused removes it and releases initialize before the member publishes the failure.
func TestStepUnsettledRecord(t *testing.T) {
	obs := engine.Observation{Member: "node1", Cluster: &dcs.Cluster{}, DataDir: engine.DirEmpty}
	st := engine.State{Name: "node1", LoopWait: 10 * time.Second,
		Pending: &engine.PendingBootstrap{SysID: "7300000000000000001", Err: dcs.ErrUnavailable}}
	st, effs := engine.Step(st, obs)
	if got := kinds(effs); got != "ReadBackInitialize" {
		t.Fatalf("effects %s", got)
	}
	obs.Result = &engine.Result{}
	st, effs = engine.Step(st, obs)
	if got := kinds(effs); got != "Wait" || st.Pending == nil {
		t.Fatalf("unknown record: effects %s, pending %v", got, st.Pending)
	}
	obs.Result = nil
	st.Pending.Err = fmt.Errorf("refused")
	st, effs = engine.Step(st, obs)
	if got := kinds(effs); got != "StopPG RemoveCluster ReleaseInitialize" || !st.MustRelease {
		t.Fatalf("refused record: effects %s, must release %v", got, st.MustRelease)
	}
	obs.Result = &engine.Result{OK: true}
	st, effs = engine.Step(st, obs)
	if got := kinds(effs); got != "Publish(failed) Wait" || st.MustRelease || st.Failures != 1 {
		t.Fatalf("after the release: effects %s, state %+v", got, st)
	}
}

// The wait after failures in a row doubles from a second, up to loop_wait but at least 30 s
// and at most 64 s.
func TestStateBackoff(t *testing.T) {
	for _, tc := range []struct {
		failures int
		loopWait time.Duration
		want     time.Duration
	}{
		{0, 10 * time.Second, time.Second},
		{3, 10 * time.Second, 8 * time.Second},
		{5, 10 * time.Second, 30 * time.Second},
		{50, 10 * time.Second, 30 * time.Second},
		{5, 45 * time.Second, 32 * time.Second},
		{6, 45 * time.Second, 45 * time.Second},
		{9, 2 * time.Minute, 64 * time.Second},
	} {
		if got := (engine.State{Failures: tc.failures, LoopWait: tc.loopWait}).Backoff(); got != tc.want {
			t.Errorf("%d failures, loop_wait %s: %s, want %s", tc.failures, tc.loopWait, got, tc.want)
		}
	}
}

// A member that led (its state says primary, or standby_leader) and restarts its PostgreSQL as
// a standby of another leader publishes what it starts as, a replica, from its first
// publication on: never the leader's role it no longer holds.
func TestStepStartingAsStandbyPublishesAReplica(t *testing.T) {
	leader := running("node1", dcs.RolePrimary, 2, 0x6000000)
	obs := engine.Observation{Member: "node2", Cluster: &dcs.Cluster{Initialize: str(sysidStr), Leader: "node1", Members: []dcs.Member{leader}},
		DataDir: engine.DirCluster, Standby: true, Control: clusterDir(pg.DBShutdownedInRecovery, 2, 0x5000000)}
	for _, was := range []string{dcs.RolePrimary, dcs.RoleStandbyLeader} {
		st := engine.State{Name: "node2", LoopWait: 10 * time.Second, Role: was, Status: dcs.StateRunning, SysID: sysidStr}
		var published []dcs.Member
		for range 4 {
			var effs []engine.Effect
			st, effs = engine.Step(st, obs)
			for _, e := range effs {
				if p, ok := e.(engine.Publish); ok {
					published = append(published, p.Member)
				}
			}
			obs.Result = &engine.Result{OK: true}
		}
		obs.Result = nil
		if len(published) == 0 {
			t.Fatalf("a member that was %s published nothing while it started as a standby", was)
		}
		for _, m := range published {
			if m.Role != dcs.RoleReplica {
				t.Errorf("a member that was %s, starting as a standby of node1, published %s as %s", was, m.State, m.Role)
			}
		}
	}
}
