package engine

import (
	"context"
	"testing"

	"github.com/pgimaged/pgimaged/core/dcs/dcstest"
)

// A hand-over whose compare-and-swap fails without an answer: when the write took effect,
// settleHandOver finds it recorded (the candidate may promote, so the old primary must not
// start again); when it did not, the request is aborted first, so that no write still in
// flight can take effect after the old primary started again.
func TestSettleHandOverAfterAnUnansweredWrite(t *testing.T) {
	for _, tc := range []struct {
		name     string
		fault    dcstest.Fault
		recorded bool
		phase    ChangePhase
	}{
		{"the write took effect", dcstest.FaultUncertain, true, PhaseDemoted},
		{"the write did not take effect", dcstest.FaultUnavailable, false, PhaseAborted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			mem := dcstest.NewMemory()
			st := mem.Open("node1")
			if err := RequestChange(ctx, st, ChangeRequest{Kind: Switchover, Leader: "node1", Candidate: "node2"}); err != nil {
				t.Fatal(err)
			}
			was, err := ReadChange(ctx, st)
			if err != nil || was == nil {
				t.Fatalf("ReadChange: %v %v", was, err)
			}
			next := was.ChangeRequest
			next.Phase, next.Timeline = PhaseDemoted, 1
			once := true
			mem.Inject = func(op, member string) dcstest.Fault {
				if op == "CompareAndSwap" && once {
					once = false
					return tc.fault
				}
				return dcstest.FaultNone
			}
			ok, err := AdvanceChange(ctx, st, was, &next)
			if ok || err == nil {
				t.Fatalf("AdvanceChange = %v, %v; want an unanswered write", ok, err)
			}
			recorded, err := settleHandOver(ctx, st, was, &next)
			if err != nil {
				t.Fatal(err)
			}
			if recorded != tc.recorded {
				t.Errorf("recorded = %v, want %v", recorded, tc.recorded)
			}
			cur, err := ReadChange(ctx, st)
			if err != nil || cur == nil {
				t.Fatalf("ReadChange: %v %v", cur, err)
			}
			if cur.Phase != tc.phase {
				t.Errorf("the request's phase is %q, want %q", cur.Phase, tc.phase)
			}
		})
	}
}
