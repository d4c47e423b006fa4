package engine

import (
	"context"
	"testing"

	"github.com/pgimaged/pgimaged/core/config"
	"github.com/pgimaged/pgimaged/core/dcs/dcstest"
)

// TestObserveChangeUnreadable: a pending change of primary that cannot be read is not taken
// for no change at all — an old primary that handed over would otherwise retake the free
// leader key while its candidate promotes. The cycle sees the DCS as unreadable instead.
func TestObserveChangeUnreadable(t *testing.T) {
	ctx := context.Background()
	mem := dcstest.NewMemory()
	if err := RequestChange(ctx, mem.Open("operator"), ChangeRequest{Kind: Failover, Candidate: "n2"}); err != nil {
		t.Fatal(err)
	}
	mem.Inject = func(op, member string) dcstest.Fault {
		if op == "Get" && member == "n1" {
			return dcstest.FaultUnavailable
		}
		return dcstest.FaultNone
	}
	a := &Agent{Node: &Node{Config: &config.Config{Name: "n1"}}, store: mem.Open("n1")}
	a.setPG(&pgStatus{}) // PostgreSQL does not run
	cl := mem.Snapshot()
	obs := Observation{Member: "n1", Cluster: &cl}
	a.observeChange(ctx, &obs)
	if obs.Cluster != nil || obs.DCSError == nil {
		t.Fatalf("the unreadable change of primary was observed as cluster %v, DCS error %v, change %v; want the DCS unreadable", obs.Cluster != nil, obs.DCSError, obs.Change)
	}
}
