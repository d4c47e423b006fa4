package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/pgimaged/pgimaged/core/dcs"
)

// Maintenance mode (`pgimaged pause`, `resume`): while the cluster's pause key is set, every
// agent keeps watching and publishing but starts, stops, clones, re-points and promotes
// nothing, and an agent that stops leaves its PostgreSQL running. The DCS holds it, so it is
// the cluster's, not a member's.

// PauseKey is where maintenance mode is kept.
const PauseKey = dcs.KeyPrefix + "pause"

// Pause says who set maintenance mode, and when.
type Pause struct {
	By string    `json:"by,omitempty"`
	At time.Time `json:"at"`
}

// SetPause sets (p non-nil) or ends (nil) maintenance mode.
func SetPause(ctx context.Context, st dcs.Store, p *Pause) error {
	if p == nil {
		return st.Delete(ctx, PauseKey)
	}
	if p.At.IsZero() {
		p.At = time.Now().UTC()
	}
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	return st.Put(ctx, PauseKey, b)
}

// ReadPause reads maintenance mode; nil when the cluster is not paused.
func ReadPause(ctx context.Context, st dcs.Store) (*Pause, error) {
	b, ok, err := st.Get(ctx, PauseKey)
	if err != nil || !ok {
		return nil, err
	}
	var p Pause
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("the maintenance mode key (%s) cannot be read: %w", PauseKey, err)
	}
	return &p, nil
}

// decidePaused is the decision in maintenance mode: nothing is started, stopped or changed;
// the member is published as what runs.
func decidePaused(obs Observation) Action {
	act := Action{Kind: ActWait, State: dcs.StateStopped,
		Reason: "maintenance mode (pgimaged pause): nothing is started, stopped, cloned or re-pointed until pgimaged resume"}
	if obs.PostgreSQL != PGStopped {
		act.State = dcs.StateRunning
	}
	return act
}
