package engine

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/pgimaged/pgimaged/core/config"
	"github.com/pgimaged/pgimaged/core/dcs/dcstest"
)

// TestStandbyPromoteRequestWakesTheAgent: an agent waiting for its next cycle is woken by a
// request to promote the standby cluster (written under StandbyKey), not only by its next
// loop_wait; once its cycle has read the record, the same record wakes it no more.
func TestStandbyPromoteRequestWakesTheAgent(t *testing.T) {
	ctx := context.Background()
	mem := dcstest.NewMemory()
	a := &Agent{Node: &Node{Config: &config.Config{Name: "n1"}}, store: mem.Open("n1")}
	cl := mem.Snapshot()
	a.lastFP = a.fingerprint(cl)
	if a.dcsWakes(ctx) {
		t.Fatal("an unchanged DCS wakes the agent")
	}
	b, err := json.Marshal(StandbyRecord{Phase: StandbyPromoting, Leader: "n1", By: "operator"})
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := mem.Open("operator").CompareAndSwap(ctx, StandbyKey, nil, b); err != nil || !ok {
		t.Fatalf("recording the promotion: %v %v", ok, err)
	}
	if !a.dcsWakes(ctx) {
		t.Error("the request to promote the standby cluster does not wake the agent")
	}
	rec, recErr := a.readStandbyRecord(ctx)
	a.observeStandbyRecord(&Observation{Member: "n1", Cluster: &cl}, rec, recErr)
	if a.dcsWakes(ctx) {
		t.Error("the promotion record the cycle read still wakes the agent")
	}
}
