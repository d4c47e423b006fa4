package engine_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pgimaged/pgimaged/core/dcs"
	"github.com/pgimaged/pgimaged/core/engine"
	"github.com/pgimaged/pgimaged/core/pg"
)

// restartObs is a cycle of member me running PostgreSQL (a primary when it leads) with a
// restart request pending.
func restartObs(me, leader string, req engine.RestartRequest) engine.Observation {
	cl := &dcs.Cluster{Initialize: str(sysidStr), Leader: leader,
		Members: []dcs.Member{running("node1", dcs.RolePrimary, 1, 0x5000000), running("node2", dcs.RoleReplica, 1, 0x5000000)}}
	obs := engine.Observation{Member: me, Cluster: cl, DataDir: engine.DirCluster, RestartRequested: &req, Now: time.Now()}
	if me == leader {
		obs.PostgreSQL, obs.Control = engine.PGPrimary, clusterDir(pg.DBInProduction, 1, 0x3000000)
	} else {
		obs.PostgreSQL, obs.Standby, obs.Control = engine.PGStandby, true, clusterDir(pg.DBInArchiveRecovery, 1, 0x3000000)
	}
	return obs
}

// The primary's restart stops and starts it as a primary, publishing restarting, and never
// gives up, takes or swaps the leader key on the way; the outcome is written once it runs.
func TestStepRestartPrimaryKeepsLeaderKey(t *testing.T) {
	obs := restartObs("node1", "node1", engine.RestartRequest{By: "test"})
	st := engine.State{Name: "node1", LoopWait: 10 * time.Second}
	st, effs := runSteps(t, st, obs, []stepCase{
		{nil, "Publish(restarting) StopPG"},
		{&engine.Result{}, "Publish(starting) StartPG"},
		{&engine.Result{}, "Publish(running) EndRestart Wait"},
	})
	for _, e := range effs {
		switch e := e.(type) {
		case engine.StartPG:
			if !e.Primary {
				t.Errorf("the primary restarts as a standby: %+v", e)
			}
		case engine.StopPG:
			if e.Mode != engine.StopFast {
				t.Errorf("stopped %s, want fast", e.Mode)
			}
		case engine.AcquireLeader, engine.HandOver, engine.TakeOver:
			t.Errorf("a restart touches the leader key: %T", e)
		case engine.EndRestart:
			if !e.OK || e.Message != engine.RestartDone {
				t.Errorf("outcome %+v, want %q", e, engine.RestartDone)
			}
		}
	}
	if st.Role != dcs.RolePrimary || st.Status != dcs.StateRunning {
		t.Errorf("after the restart: role %s state %s", st.Role, st.Status)
	}
}

// A replica restarts as a standby; a start that fails is published failed and the outcome
// says restart failed with the cause.
func TestStepRestartReplicaFails(t *testing.T) {
	obs := restartObs("node2", "node1", engine.RestartRequest{})
	st := engine.State{Name: "node2", LoopWait: 10 * time.Second}
	_, effs := runSteps(t, st, obs, []stepCase{
		{nil, "Publish(restarting) StopPG"},
		{&engine.Result{}, "Publish(starting) StartPG"},
		{&engine.Result{Err: errors.New("port in use")}, "EndRestart Publish(failed) Wait"},
	})
	for _, e := range effs {
		if e, ok := e.(engine.StartPG); ok && e.Primary {
			t.Errorf("a replica restarts as a primary")
		}
		if e, ok := e.(engine.EndRestart); ok && (e.OK || !strings.HasPrefix(e.Message, engine.RestartFailed) || !strings.Contains(e.Message, "port in use")) {
			t.Errorf("outcome %+v", e)
		}
	}
}

// Refusals write the outcome and go on with the cycle's own decision (which may be to fence).
func TestRestartRefusal(t *testing.T) {
	cases := []struct {
		name string
		obs  func() engine.Observation
		want string // in the refusal; "" for none
	}{
		{"a running replica", func() engine.Observation { return restartObs("node2", "node1", engine.RestartRequest{}) }, ""},
		{"the primary", func() engine.Observation { return restartObs("node1", "node1", engine.RestartRequest{}) }, ""},
		{"role filter matches", func() engine.Observation {
			return restartObs("node1", "node1", engine.RestartRequest{Role: "primary"})
		}, ""},
		{"role filter does not match", func() engine.Observation {
			return restartObs("node2", "node1", engine.RestartRequest{Role: "primary"})
		}, engine.RestartNotSatisfied},
		{"pending asked, none pending", func() engine.Observation {
			return restartObs("node2", "node1", engine.RestartRequest{Pending: true})
		}, engine.RestartNotSatisfied},
		{"pending asked and pending", func() engine.Observation {
			o := restartObs("node2", "node1", engine.RestartRequest{Pending: true})
			o.PendingRestart = true
			return o
		}, ""},
		{"PostgreSQL stopped", func() engine.Observation {
			o := restartObs("node2", "node1", engine.RestartRequest{})
			o.PostgreSQL = engine.PGStopped
			return o
		}, "does not run"},
		{"a switchover under way", func() engine.Observation {
			o := restartObs("node2", "node1", engine.RestartRequest{})
			o.Change = &engine.PendingChange{ChangeRequest: engine.ChangeRequest{Kind: engine.Switchover, Leader: "node1", Candidate: "node2", At: o.Now, Phase: engine.PhaseAsked, Deadline: o.Now.Add(time.Minute)}}
			return o
		}, "change of primary"},
		{"a primary without the key", func() engine.Observation {
			o := restartObs("node1", "node2", engine.RestartRequest{})
			o.PostgreSQL = engine.PGPrimary
			return o
		}, "without the leader key"},
		{"a reinit asked at the same time", func() engine.Observation {
			o := restartObs("node2", "node1", engine.RestartRequest{})
			o.ReinitRequested = &engine.ReinitRequest{}
			return o
		}, "busy"},
		{"paused: restarted on request, as Patroni", func() engine.Observation {
			o := restartObs("node2", "node1", engine.RestartRequest{})
			o.Paused = true
			return o
		}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			obs := c.obs()
			got := engine.RestartRefusal(obs, engine.Decide(obs), *obs.RestartRequested)
			if c.want == "" && got != "" || !strings.Contains(got, c.want) {
				t.Fatalf("refusal %q, want %q", got, c.want)
			}
			_, effs := engine.Step(engine.State{Name: obs.Member, LoopWait: time.Second}, obs)
			var ended *engine.EndRestart
			for _, e := range effs {
				if e, ok := e.(engine.EndRestart); ok {
					ended = &e
				}
				if p, ok := e.(engine.Publish); ok && c.want != "" && p.Member.State == engine.StateRestarting {
					t.Errorf("a refused restart is carried out: %s", kinds(effs))
				}
			}
			if c.want != "" && (ended == nil || ended.OK || !strings.Contains(ended.Message, c.want)) {
				t.Errorf("refusal not written as the outcome: %+v", ended)
			}
		})
	}
}
