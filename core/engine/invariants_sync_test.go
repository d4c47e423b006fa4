package engine_test

import (
	"context"
	"slices"
	"strings"

	"pgregory.net/rapid"

	"github.com/pgimaged/pgimaged/core/dcs"
	"github.com/pgimaged/pgimaged/core/engine"
	"github.com/pgimaged/pgimaged/core/pg"
)

// The simulator's model of synchronous mode (syncslots.go, agent_syncslots.go): the primary's
// agent keeps synchronous_standby_names and the sync key as engine.PlanSync says, each DCS
// write a compare-and-swap through its own session (faults included); PostgreSQL acknowledges
// a commit only once every standby synchronous_standby_names names has received it.

// syncModel is the synchronous replication of the primary holding the leader key.
type syncModel struct {
	// on: the schedule runs in synchronous mode; strict: synchronous_mode_strict.
	on, strict bool
	// of is the member whose synchronous_standby_names names are; a new primary starts
	// without any (its agent removes the setting while it is a standby).
	of    string
	names []string
	block bool // "*": strict mode without a candidate
}

// namesOf is synchronous_standby_names on primary m.
func (s *sim) namesOf(m *simMember) ([]string, bool) {
	if s.sync.of != m.name {
		return nil, false
	}
	return s.sync.names, s.sync.block
}

// replicasOf is pg_stat_replication on primary p: its streaming standbys, "streaming" once
// caught up, "sync" when synchronous_standby_names names them.
func (s *sim) replicasOf(p *simMember) []pg.Replica {
	names, block := s.namesOf(p)
	var reps []pg.Replica
	for _, m := range s.members {
		if s.streamsFrom(m) != p {
			continue
		}
		r := pg.Replica{ApplicationName: m.name, State: "catchup", SyncState: "async", Flush: int64(m.dir.end)}
		if m.dir.end == p.dir.end && m.dir.branch == p.dir.branch {
			r.State = "streaming"
		}
		if r.State == "streaming" && (block || slices.Contains(names, m.name)) {
			r.SyncState = "sync"
		}
		reps = append(reps, r)
	}
	return reps
}

// tendSync is one cycle's upkeep of synchronous replication by primary m's agent.
func (s *sim) tendSync(m *simMember) {
	if !s.sync.on || m.store == nil || m.pg != engine.PGPrimary || !s.holdsKey(m) || m.frozen {
		return
	}
	names, block := s.namesOf(m)
	inForce := ""
	if block {
		inForce = "*"
	} else if len(names) > 0 {
		inForce = pg.SynchronousStandbyNames(names)
	}
	kept, err := engine.KeepSync(context.Background(), m.store, engine.SyncInput{Self: m.name, Cluster: s.cluster(),
		Replicas: s.replicasOf(m), Names: inForce, Count: 1, Strict: s.sync.strict})
	if kept.Key != nil {
		s.event("%s: sync key names %v", m.name, kept.Key.Standbys)
	}
	if err == nil && kept.NamesChanged {
		// Picked, as PlanSync chose them: the standbys the new names wait for.
		s.sync.of, s.sync.names, s.sync.block = m.name, s.pickedBy(kept.Names, m), kept.Names == "*"
		s.event("%s: synchronous_standby_names = %q", m.name, kept.Names)
	}
}

// pickedBy is the members names (synchronous_standby_names written by primary m) waits for.
func (s *sim) pickedBy(names string, m *simMember) []string {
	var out []string
	for _, o := range s.members {
		if o != m && strings.Contains(names, `"`+o.name+`"`) {
			out = append(out, o.name)
		}
	}
	return out
}

// commitWaits reports whether a commit on primary m waits for a synchronous standby that has
// not received it (then it is not acknowledged); the standbys it waits for receive it first.
func (s *sim) commitWaits(m *simMember) bool {
	names, block := s.namesOf(m)
	if block {
		return true
	}
	for _, n := range names {
		sb := s.byName(n)
		if sb == nil || s.streamsFrom(sb) != m {
			return true
		}
		s.catchUp(sb)
	}
	return false
}

// drawSync chooses whether the schedule runs in synchronous mode.
func (s *sim) drawSync(t *rapid.T) {
	s.sync.on = rapid.Bool().Draw(t, "synchronous_mode")
	s.sync.strict = s.sync.on && rapid.Bool().Draw(t, "synchronous_mode_strict")
}

// checkSyncFailover checks what synchronous mode promises of a failover without --force: its
// candidate is a member the sync key names, and its WAL holds every acknowledged write.
func (s *sim) checkSyncFailover(m *simMember, ch *engine.PendingChange) {
	if !s.sync.on || ch.Kind != engine.Failover || ch.Force {
		return
	}
	if s.ackedOK && !s.prefixOf(s.acked, m.dir) {
		s.fail("in synchronous mode the failover to %s loses writes acknowledged up to %s", m.name, s.acked.end)
	}
}

// checkSyncRequest checks a failover request as recorded without --force: in synchronous mode
// its candidate is synchronous.
func (s *sim) checkSyncRequest(cl dcs.Cluster, req engine.ChangeRequest) {
	if s.sync.on && req.Kind == engine.Failover && !req.Force && cl.Sync != nil && !cl.Sync.Has(req.Candidate) {
		s.fail("in synchronous mode a failover picks %s, which the sync key (%v) does not name", req.Candidate, cl.Sync.Standbys)
	}
}
