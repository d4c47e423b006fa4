package engine

import (
	"testing"

	"github.com/pgimaged/pgimaged/core/dcs"
	"github.com/pgimaged/pgimaged/core/dcs/dcstest"
	"github.com/pgimaged/pgimaged/core/pg"
)

// TestResumedFailoverChecksAgain: a failover whose take-over was cut short after the request
// was marked promoting checks the candidate's position again before it promotes, since other
// members may have received more meanwhile; once the candidate holds the key it goes on.
func TestResumedFailoverChecksAgain(t *testing.T) {
	for _, tc := range []struct {
		name, leader string
		want         ActionKind
	}{
		{"another member is further", "", ActAbortChange},
		{"the candidate holds the key", "n2", ActTakeOver},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cl := dcs.Cluster{Leader: tc.leader, Members: []dcs.Member{
				{Name: "n2", State: dcs.StateRunning, Role: dcs.RoleReplica, Timeline: 1, XLogLocation: 0x1000000},
				{Name: "n3", State: dcs.StateRunning, Role: dcs.RoleReplica, Timeline: 1, XLogLocation: 0x1100000},
			}}
			ch := &PendingChange{ChangeRequest: ChangeRequest{Kind: Failover, Candidate: "n2", Phase: PhasePromoting}}
			obs := Observation{Member: "n2", Cluster: &cl, Change: ch, PostgreSQL: PGStandby, DataDir: DirCluster,
				WAL: &pg.Position{InRecovery: true, Timeline: 1, Received: 0x1000000, Replayed: 0x1000000}}
			if act := Decide(obs); act.Kind != tc.want {
				t.Fatalf("decision %q (%s), want %q", act.Kind, act.Reason, tc.want)
			}
		})
	}
}

// TestSupersededPrimaryFencedWhileAChangeIsPending: a primary on a timeline older than the
// history's newest is stopped even while a change of primary is pending (it must not keep
// accepting writes that are not the cluster's until the change is done).
func TestSupersededPrimaryFencedWhileAChangeIsPending(t *testing.T) {
	mem := dcstest.NewMemory()
	st := mem.Open("n3")
	ctx := t.Context()
	h, _ := st.History(ctx)
	if err := st.AppendTimelineSwitch(ctx, h, dcs.TimelineSwitch{Timeline: 2, LSN: 0x1000000, NewLeader: "n3"}); err != nil {
		t.Fatal(err)
	}
	cl := mem.Snapshot()
	ch := &PendingChange{ChangeRequest: ChangeRequest{Kind: Switchover, Leader: "n3", Candidate: "n1", Phase: PhaseAsked}}
	obs := Observation{Member: "n2", Cluster: &cl, Change: ch, PostgreSQL: PGPrimary, DataDir: DirCluster, Led: true,
		Control: pg.ControlData{HasPosition: true, Timeline: 1, State: pg.DBInProduction},
		WAL:     &pg.Position{Timeline: 1, Replayed: 0x1100000}}
	if act := Decide(obs); act.Kind != ActFence {
		t.Fatalf("decision %q (%s), want %q", act.Kind, act.Reason, ActFence)
	}
}
