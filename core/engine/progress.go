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
		a.progress = a.rate.measure(&dcs.CloneProgress{Method: method, Phase: p.Phase, Done: p.Done, Total: p.Total, Unit: p.Unit.String()}, time.Now())
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

// rateMeter measures a method's rate from the first progress event of its phase, so that the
// rate and the time left a member publishes are the ones `clone` draws on a terminal.
type rateMeter struct {
	method, phase string
	since         time.Time
	first         int64
}

// measure sets p's Rate and ETA as of now, and returns p.
func (m *rateMeter) measure(p *dcs.CloneProgress, now time.Time) *dcs.CloneProgress {
	if p.Method != m.method || p.Phase != m.phase || m.since.IsZero() || p.Done < m.first {
		m.method, m.phase, m.since, m.first = p.Method, p.Phase, now, p.Done
		return p
	}
	elapsed, moved := now.Sub(m.since).Seconds(), p.Done-m.first
	if elapsed < 1 || moved <= 0 {
		return p
	}
	p.Rate = float64(moved) / elapsed
	if p.Total > p.Done {
		p.ETA = float64(p.Total-p.Done) / p.Rate
	}
	return p
}
