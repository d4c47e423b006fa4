package engine

import (
	"context"
	"time"

	"github.com/pgimaged/pgimaged/core/dcs"
	"github.com/pgimaged/pgimaged/sdk"
)

// progressEvery is the shortest time between two publications of a method's progress.
const progressEvery = 3 * time.Second

// inFlight reports whether a member in state runs a bootstrap or clone.
func inFlight(state string) bool {
	switch state {
	case dcs.StateCreatingReplica, dcs.StateBootstrapping, StateReinitializing:
		return true
	}
	return false
}

// followProgress has the node's methods report their progress to the agent too, which
// publishes it in the member key at most every progressEvery.
func (a *Agent) followProgress(ctx context.Context) {
	prev := a.Node.Progress
	a.Node.Progress = func(method string, p sdk.Progress) {
		if prev != nil {
			prev(method, p)
		}
		a.mu.Lock()
		a.progress = &dcs.CloneProgress{Method: method, Phase: p.Phase, Done: p.Done, Total: p.Total, Unit: p.Unit.String()}
		due := time.Since(a.progressAt) >= progressEvery
		if due {
			a.progressAt = time.Now()
		}
		a.mu.Unlock()
		if due && ctx.Err() == nil {
			a.publishNow(ctx)
		}
	}
}
