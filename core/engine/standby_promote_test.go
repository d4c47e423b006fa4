package engine_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/pgimaged/pgimaged/core/dcs"
	"github.com/pgimaged/pgimaged/core/dcs/dcstest"
	"github.com/pgimaged/pgimaged/core/engine"
	"github.com/pgimaged/pgimaged/core/pg"
)

// The standby leader of a standby cluster asked to promote ends its recovery and publishes
// itself as the primary, marked as having led; a replica of it is not promoted.
func TestStepStandbyClusterPromotes(t *testing.T) {
	rec := &engine.StandbyRecord{Phase: engine.StandbyPromoting, Leader: "node1", By: "operator"}
	leader := running("node1", dcs.RoleStandbyLeader, 1, 0x5000000)
	cl := &dcs.Cluster{Initialize: str(sysidStr), Leader: "node1", Members: []dcs.Member{leader}}
	obs := engine.Observation{Member: "node1", Cluster: cl, DataDir: engine.DirCluster, Control: clusterDir(pg.DBInArchiveRecovery, 1, 0x5000000),
		Standby: true, PostgreSQL: engine.PGStandby, StandbyCluster: true, FollowsRemote: true, StandbyRecord: rec}
	st := engine.State{Name: "node1", LoopWait: 10 * time.Second, Role: dcs.RoleStandbyLeader}
	st, _ = runSteps(t, st, obs, []stepCase{
		{nil, "Publish(promoting) PromoteStandby"},
		{&engine.Result{}, "Mark(led=true) Publish(running) Wait"},
	})
	if st.Role != dcs.RolePrimary {
		t.Errorf("role %q after the promotion, want %q", st.Role, dcs.RolePrimary)
	}
	// A failed promotion is published as a failure and tried again next cycle.
	st = engine.State{Name: "node1", LoopWait: 10 * time.Second, Role: dcs.RoleStandbyLeader}
	runSteps(t, st, obs, []stepCase{
		{nil, "Publish(promoting) PromoteStandby"},
		{&engine.Result{Err: errors.New("pg_ctl promote: boom")}, "Publish(failed) Wait"},
	})

	replica := obs
	replica.Member, replica.FollowsRemote = "node2", false
	if a := engine.Decide(replica); a.Kind == engine.ActPromoteStandby || a.Primary {
		t.Errorf("a replica of the standby leader decides %s (primary %v): %s", a.Kind, a.Primary, a.Reason)
	}
	paused := obs
	paused.Paused = true
	if a := engine.Decide(paused); a.Kind == engine.ActPromoteStandby {
		t.Errorf("promoted while paused: %s", a.Reason)
	}
}

// A promotion is asked only of a running standby leader, and only once.
func TestRequestStandbyPromote(t *testing.T) {
	ctx := context.Background()
	mem := dcstest.NewMemory()
	st := mem.Open("operator")
	primary := dcs.Cluster{Leader: "node1", Members: []dcs.Member{running("node1", dcs.RolePrimary, 1, 0x5000000)}}
	if _, err := engine.RequestStandbyPromote(ctx, st, primary, "operator"); !errors.Is(err, engine.ErrNotStandbyCluster) {
		t.Fatalf("a cluster led by a primary: %v, want ErrNotStandbyCluster", err)
	}
	standby := dcs.Cluster{Leader: "node1", Members: []dcs.Member{running("node1", dcs.RoleStandbyLeader, 1, 0x5000000)}}
	r, err := engine.RequestStandbyPromote(ctx, st, standby, "operator")
	if err != nil || r.Phase != engine.StandbyPromoting || r.Leader != "node1" {
		t.Fatalf("request: %+v, %v", r, err)
	}
	if got, err := engine.ReadStandby(ctx, st); err != nil || got == nil || got.Phase != engine.StandbyPromoting {
		t.Fatalf("recorded: %+v, %v", got, err)
	}
	if _, err := engine.RequestStandbyPromote(ctx, st, standby, "operator"); !errors.Is(err, engine.ErrChangePending) {
		t.Fatalf("asked twice: %v, want ErrChangePending", err)
	}
}
