package engine

import (
	"errors"
	"time"

	"github.com/pgimaged/pgimaged/core/dcs"
)

// keyEvents remembers what the agent last said about the DCS and the leader key, so that each
// change is logged once, when it happens, and not at every cycle.
type keyEvents struct {
	// down: the DCS did not answer at the last look; since when.
	down  bool
	since time.Time
	// leader: this member held the leader key at the last look.
	leader bool
}

// noteDCS logs "DCS unreachable" when the DCS stops answering and "DCS back" when it answers
// again. err is the outcome of a read; a lost or closed session is no sign either way (the
// DCS answered that the session is gone).
func (a *Agent) noteDCS(err error) {
	if errors.Is(err, dcs.ErrSessionLost) || errors.Is(err, dcs.ErrClosed) {
		return
	}
	ev, log := &a.events, a.Node.logger()
	switch {
	case err != nil && !ev.down:
		ev.down, ev.since = true, time.Now()
		log.Warn("DCS unreachable", "error", a.Node.secrets().Mask(err.Error()))
	case err == nil && ev.down:
		ev.down = false
		log.Info("DCS back", "unreachable_for", time.Since(ev.since).Round(time.Millisecond))
	}
}

// noteLeader logs "leader key taken" when this member comes to hold the leader key and
// "leader key lost" when it no longer does; holder is who holds it now ("" for nobody) and why
// says how it went, when the agent knows.
func (a *Agent) noteLeader(held bool, holder, why string) {
	ev, log := &a.events, a.Node.logger()
	switch {
	case held && !ev.leader:
		ev.leader = true
		log.Info("leader key taken")
	case !held && ev.leader:
		ev.leader = false
		args := []any{"held_by", holder}
		if holder == "" {
			args = []any{"held_by", "nobody"}
		}
		if why != "" {
			args = append(args, "reason", why)
		}
		log.Warn("leader key lost", args...)
	}
}
