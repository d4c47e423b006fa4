package engine_test

import (
	"strings"
	"testing"
	"time"

	"github.com/pgimaged/pgimaged/core/dcs"
	"github.com/pgimaged/pgimaged/core/engine"
	"github.com/pgimaged/pgimaged/core/pg"
)

// The member of a standby cluster that wins initialize clones the standby leader from the
// remote instead of bootstrapping, records the remote's system identifier and takes the leader
// key as standby_leader; it never marks the directory as led by a primary.
func TestStepStandbyLeaderFromTheRemote(t *testing.T) {
	obs := engine.Observation{Member: "node1", Cluster: &dcs.Cluster{}, DataDir: engine.DirEmpty, StandbyCluster: true}
	st := engine.State{Name: "node1", LoopWait: 10 * time.Second}
	st, _ = runSteps(t, st, obs, []stepCase{
		{nil, "Mark(needs reinit=false) Mark(led=false) TryInitialize"},
		{&engine.Result{Won: true}, "Publish(bootstrapping) CloneRemote"},
		{&engine.Result{SysID: sysidStr}, "SetInitialize"},
		{&engine.Result{}, "Mark(complete=true) AcquireLeader"},
		{&engine.Result{Held: true}, "Publish(running) Wait"},
	})
	if st.Role != dcs.RoleStandbyLeader || st.SysID != sysidStr || st.Status != dcs.StateRunning {
		t.Errorf("state after the clone: role %q, system identifier %q, state %q", st.Role, st.SysID, st.Status)
	}
}

// A failed clone of the standby leader releases initialize, as a failed bootstrap does.
func TestStepStandbyLeaderCloneFails(t *testing.T) {
	obs := engine.Observation{Member: "node1", Cluster: &dcs.Cluster{}, DataDir: engine.DirEmpty, StandbyCluster: true}
	st := engine.State{Name: "node1", LoopWait: 10 * time.Second}
	st, _ = engine.Step(st, obs)
	obs.Result = &engine.Result{Won: true}
	st, _ = engine.Step(st, obs)
	obs.Result = &engine.Result{Err: engine.ErrAllMethodsFailed}
	st, effs := engine.Step(st, obs)
	if got := kinds(effs); got != "ReleaseInitialize" || !st.MustRelease {
		t.Fatalf("effects %s, must release %v", got, st.MustRelease)
	}
	obs.Result = &engine.Result{OK: true}
	st, effs = engine.Step(st, obs)
	if got := kinds(effs); got != "Publish(failed) Wait" || st.MustRelease || st.Failures != 1 {
		t.Fatalf("effects %s, must release %v, failures %d", got, st.MustRelease, st.Failures)
	}
}

func TestDecideStandbyLeader(t *testing.T) {
	const remote = "10.1.0.5:5432"
	cluster := func(leader string, members ...dcs.Member) *dcs.Cluster {
		return &dcs.Cluster{Initialize: str(sysidStr), Leader: leader, Members: members}
	}
	standbyDir := clusterDir(pg.DBInArchiveRecovery, 1, 0x5000000)
	leader := running("node1", dcs.RoleStandbyLeader, 1, 0x5000000)
	base := func(cl *dcs.Cluster, pgs engine.PGState, following string) engine.Observation {
		return engine.Observation{Member: "node1", Cluster: cl, DataDir: engine.DirCluster, Control: standbyDir, Standby: true,
			PostgreSQL: pgs, Following: following, StandbyCluster: true, FollowsRemote: following == remote}
	}
	cases := []struct {
		name          string
		obs           engine.Observation
		kind          engine.ActionKind
		standbyLeader bool
		start         engine.StartMode
	}{
		{"empty, no initialize: race, then clone from the remote", engine.Observation{Member: "node1", Cluster: &dcs.Cluster{}, StandbyCluster: true},
			engine.ActBootstrap, true, engine.KeepRunning},
		{"stopped standby of the remote, no leader: takes the key, starts as a standby", base(cluster(""), engine.PGStopped, remote),
			engine.ActAdopt, true, engine.StartStandby},
		{"running standby leader: keeps the key, follows the remote", base(cluster("node1", leader), engine.PGStandby, remote),
			engine.ActAdopt, true, engine.KeepRunning},
		{"running standby of the remote, no leader: takes the key", base(cluster(""), engine.PGStandby, remote),
			engine.ActAdopt, true, engine.KeepRunning},
		{"stopped replica of a member, no leader: starts as a standby, takes no key", base(cluster(""), engine.PGStopped, "127.0.0.1:5433"),
			engine.ActAdopt, false, engine.StartStandby},
		{"running replica of a member, no leader for a while: takes the key, follows the remote", leaderGone(base(cluster(""), engine.PGStandby, "127.0.0.1:5433")),
			engine.ActAdopt, true, engine.KeepRunning},
		{"stopped replica of a member, no leader for a while: takes the key, starts following the remote", leaderGone(base(cluster(""), engine.PGStopped, "127.0.0.1:5433")),
			engine.ActAdopt, true, engine.StartStandby},
		{"running replica of a member, no leader for a while, bootstrapping: keeps running", leaderGone(base(&dcs.Cluster{Initialize: str("")}, engine.PGStandby, "127.0.0.1:5433")),
			engine.ActAdopt, false, engine.KeepRunning},
		{"the standby leader follows a member: keeps the key, follows the remote again", base(cluster("node1", leader), engine.PGStandby, "127.0.0.1:5433"),
			engine.ActAdopt, true, engine.KeepRunning},
		{"no leader for a while, but node2's promotion is pending: keeps running, takes no key", promoting("node2", leaderGone(base(cluster(""), engine.PGStandby, "127.0.0.1:5433"))),
			engine.ActAdopt, false, engine.KeepRunning},
		{"no leader, a standby of the remote, node2's promotion pending: takes no key", promoting("node2", base(cluster(""), engine.PGStandby, remote)),
			engine.ActAdopt, false, engine.KeepRunning},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := engine.Decide(c.obs)
			if a.Kind != c.kind || a.StandbyLeader != c.standbyLeader || a.Primary || a.Start != c.start {
				t.Fatalf("decision %s (standby leader %v, primary %v, start %v), want %s (standby leader %v, start %v): %s",
					a.Kind, a.StandbyLeader, a.Primary, a.Start, c.kind, c.standbyLeader, c.start, a.Reason)
			}
			if want := c.standbyLeader && c.obs.DataDir == engine.DirCluster && !c.obs.FollowsRemote; a.FollowRemote != want {
				t.Errorf("re-pointed at the remote: %v, want %v (%s)", a.FollowRemote, want, a.Reason)
			}
		})
	}
	// A replica of the standby leader is re-pointed at it, never at the remote.
	obs := base(cluster("node2", dcs.Member{Name: "node2", State: dcs.StateRunning, Role: dcs.RoleStandbyLeader, ConnURL: "postgres://127.0.0.1:5433/postgres"}), engine.PGStandby, remote)
	if a := engine.Decide(obs); a.Kind != engine.ActRepoint || a.Leader == nil || a.Leader.Name != "node2" {
		t.Fatalf("a standby of the remote while node2 leads: %s (%s)", a.Kind, a.Reason)
	}
}

// promoting is obs while an operator's promotion of member is pending.
func promoting(member string, obs engine.Observation) engine.Observation {
	obs.StandbyRecord = &engine.StandbyRecord{Phase: engine.StandbyPromoting, Leader: member}
	return obs
}

// leaderGone is obs after no member held the leader key for a while.
func leaderGone(obs engine.Observation) engine.Observation {
	obs.LeaderGone = true
	return obs
}

// A replica of a standby cluster whose leader is gone waits a ttl (the restarting
// standby leader's own chance to take its key back), then takes the key as standby_leader,
// re-points itself at the remote while it runs (a reload, nothing promoted) and publishes
// standby_leader.
func TestStepStandbyLeaderTakenOverByAReplica(t *testing.T) {
	obs := engine.Observation{Member: "node2", Cluster: &dcs.Cluster{Initialize: str(sysidStr)}, DataDir: engine.DirCluster,
		Control: clusterDir(pg.DBInArchiveRecovery, 1, 0x5000000), Standby: true, PostgreSQL: engine.PGStandby,
		Following: "127.0.0.1:5433", StandbyCluster: true, Now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	st := engine.State{Name: "node2", LoopWait: 10 * time.Second, TTL: 30 * time.Second, Role: dcs.RoleReplica}
	for _, after := range []time.Duration{0, 10 * time.Second, 29 * time.Second} {
		o := obs
		o.Now = obs.Now.Add(after)
		var effs []engine.Effect
		st, effs = engine.Step(st, o)
		if got := kinds(effs); strings.Contains(got, "AcquireLeader") || strings.Contains(got, "FollowRemote") {
			t.Fatalf("%s after the leader went: %s", after, got)
		}
	}
	obs.Now = obs.Now.Add(30 * time.Second)
	st, effs := runSteps(t, st, obs, []stepCase{
		{nil, "AcquireLeader"},
		{&engine.Result{Held: true}, "FollowRemote"},
		{&engine.Result{}, "Publish(running) Wait"},
	})
	for _, e := range effs {
		if _, ok := e.(engine.StartPG); ok {
			t.Fatal("the new standby leader is restarted")
		}
	}
	if st.Role != dcs.RoleStandbyLeader {
		t.Errorf("role %q, want standby_leader", st.Role)
	}
}

// A standby leader that restarts takes the key before it starts and publishes standby_leader.
func TestStepStandbyLeaderRestarts(t *testing.T) {
	obs := engine.Observation{Member: "node1", Cluster: &dcs.Cluster{Initialize: str(sysidStr)}, DataDir: engine.DirCluster,
		Control: clusterDir(pg.DBShutdownedInRecovery, 1, 0x5000000), Standby: true, Following: "10.1.0.5:5432",
		StandbyCluster: true, FollowsRemote: true}
	st := engine.State{Name: "node1", LoopWait: 10 * time.Second}
	st, effs := runSteps(t, st, obs, []stepCase{
		{nil, "AcquireLeader"},
		{&engine.Result{Held: true}, "Publish(starting) StartPG"},
		{&engine.Result{}, "Publish(running) Wait"},
	})
	for _, e := range effs {
		if sp, ok := e.(engine.StartPG); ok && sp.Primary {
			t.Fatal("the standby leader is started as a primary")
		}
	}
	if st.Role != dcs.RoleStandbyLeader {
		t.Errorf("role %q", st.Role)
	}
}
