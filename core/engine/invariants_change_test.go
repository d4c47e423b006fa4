package engine_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"pgregory.net/rapid"

	"github.com/pgimaged/pgimaged/core/dcs"
	"github.com/pgimaged/pgimaged/core/engine"
	"github.com/pgimaged/pgimaged/core/pg"
)

// The simulator's model of a change of primary (change.go, decide_change.go, step_change.go):
// operators asking for switchovers and failovers, the agents' hand-overs, take-overs, aborts,
// re-pointed standbys and rejoins, with timelines, WAL positions and streaming in the
// PostgreSQL model and the deadlines read from the simulated clock.

// addr is the host:port member name publishes in its conn_url.
func addr(name string) string { return "10.0.0." + strings.TrimPrefix(name, "node") + ":5432" }

// streamsFrom is the member m's standby receives WAL from, nil when it does not stream: its
// primary_conninfo names a member whose server runs with the same system identifier, and m's
// WAL is a prefix of that member's (else PostgreSQL stops replicating).
func (s *sim) streamsFrom(m *simMember) *simMember {
	if m.pg != engine.PGStandby {
		return nil
	}
	up := s.byName(m.following)
	if up == nil || up == m || up.pg == engine.PGStopped || up.dir.sysid != m.dir.sysid || !s.prefixOf(m.dir, up.dir) {
		return nil
	}
	return up
}

func (s *sim) streams(m *simMember) bool { return s.streamsFrom(m) != nil }

// catchUp lets m's standby receive and replay all its upstream holds, onto its timeline.
func (s *sim) catchUp(m *simMember) {
	if up := s.streamsFrom(m); up != nil {
		d := &m.dir
		d.end, d.branch, d.timeline, d.checkpoint = up.dir.end, up.dir.branch, up.dir.timeline, 0
		d.switchAt, d.seenTL = up.dir.switchAt, max(d.seenTL, up.dir.timeline, up.dir.seenTL)
	}
}

// replicate lets every standby catch up (twice, for cascades).
func (s *sim) replicate() {
	for range 2 {
		for _, m := range s.members {
			s.catchUp(m)
		}
	}
}

// replicateSome lets some standbys catch up: the others lag.
func (s *sim) replicateSome() {
	for _, m := range s.members {
		if m.pg == engine.PGStandby && rapid.Bool().Draw(s.t, "catches up") {
			s.catchUp(m)
		}
	}
}

// acknowledge records the writes of m's primary as acknowledged when it holds the leader key.
func (s *sim) acknowledge(m *simMember) {
	if s.holdsKey(m) && strconv.FormatUint(m.dir.sysid, 10) == s.cluster().SystemIdentifier() {
		s.acked, s.ackedOK = m.dir, true
	}
}

// request records a change of primary as the CLI does once its checks passed.
func (s *sim) request(req engine.ChangeRequest) bool {
	req.At, req.By = s.now, "operator"
	err := engine.RequestChange(context.Background(), s.operator, req)
	if err != nil {
		s.event("operator: %s: not recorded: %v", req.Describe(), err)
		return false
	}
	s.event("operator: %s (force %v)", req.Describe(), req.Force)
	return true
}

// switchover is `pgimaged switchover [--candidate NAME]`.
func (s *sim) switchover() {
	cand := ""
	if rapid.Bool().Draw(s.t, "switchover to a given member") {
		cand = rapid.SampledFrom(s.members).Draw(s.t, "candidate").name
	}
	req, err := engine.CheckSwitchover(s.cluster(), cand, 1<<20)
	if err != nil {
		s.event("operator: switchover to %q refused: %v", cand, err)
		return
	}
	s.request(req)
}

// scheduledSwitchover is `pgimaged switchover --scheduled TIME [--candidate NAME]`: recorded
// without the checks, which the leader's agent makes when the time comes; a switchover or
// failover asked before then replaces it.
func (s *sim) scheduledSwitchover() {
	cl := s.cluster()
	if cl.Leader == "" {
		s.event("operator: scheduled switchover refused: no member leads")
		return
	}
	req := engine.ChangeRequest{Kind: engine.Switchover, Leader: cl.Leader,
		ScheduledAt: s.now.Add(time.Duration(rapid.IntRange(1, 90).Draw(s.t, "seconds until the switchover")) * time.Second)}
	if rapid.Bool().Draw(s.t, "scheduled to a given member") {
		req.Candidate = rapid.SampledFrom(s.members).Draw(s.t, "scheduled candidate").name
		if req.Candidate == cl.Leader {
			s.event("operator: scheduled switchover to the leader %s refused", req.Candidate)
			return
		}
	}
	req.Deadline = req.ScheduledAt.Add(time.Minute)
	s.request(req)
}

// failover is `pgimaged failover --candidate NAME [--force]`.
func (s *sim) failover() {
	cand := rapid.SampledFrom(s.members).Draw(s.t, "candidate").name
	force := rapid.Bool().Draw(s.t, "force")
	cl := engine.InSynchronousMode(s.cluster(), s.sync.on)
	req, err := engine.CheckFailover(cl, cand, force)
	if err != nil {
		s.event("operator: failover to %s (force %v) refused: %v", cand, force, err)
		return
	}
	s.checkSyncRequest(cl, req)
	if s.request(req) {
		for _, m := range s.members {
			if m.pg == engine.PGPrimary && m.name != cand {
				m.outlived = true
			}
		}
	}
}

// executeChange models the effects of step_change.go as Agent.executeChange carries them out;
// false: e is not one of them.
func (s *sim) executeChange(m *simMember, e engine.Effect) (engine.Result, bool) {
	switch e := e.(type) {
	case engine.HandOver:
		return s.handOver(m, e.Change), true
	case engine.TakeOver:
		return s.takeOver(m, e.Change), true
	case engine.AbortChange:
		next := e.Change.ChangeRequest
		next.Phase, next.Reason = engine.PhaseAborted, e.Reason
		ok, err := engine.AdvanceChange(context.Background(), m.store, e.Change, &next)
		if err == nil && !ok {
			err = errors.New("the change of primary changed while it was being aborted")
		}
		return engine.Result{Err: err}, true
	case engine.RunRejoin:
		return s.rejoin(m, e), true
	}
	return engine.Result{}, false
}

// handOver is Agent.handOverNow: a clean stop (its shutdown checkpoint reaches the standbys
// that stream from it), the request moved to demoted with the checkpoint and a deadline, the
// leader key released; should the request have changed, the primary starts again at once.
func (s *sim) handOver(m *simMember, ch *engine.PendingChange) engine.Result {
	ctx := context.Background()
	if m.pg != engine.PGStopped {
		s.stopPG(m)
	}
	if m.dir.kind != engine.DirCluster || m.dir.state != pg.DBShutdowned || m.dir.checkpoint == 0 {
		return engine.Result{Err: fmt.Errorf("the server did not shut down cleanly (state %q)", m.dir.state)}
	}
	next := ch.ChangeRequest
	next.Phase, next.CheckpointLSN, next.Timeline = engine.PhaseDemoted, m.dir.checkpoint, int(m.dir.timeline)
	next.Deadline = s.now.Add(30 * time.Second)
	ok, err := engine.AdvanceChange(ctx, m.store, ch, &next)
	if err == nil && !ok {
		err = errors.New("the request changed before the hand-over was recorded")
	}
	if err != nil && !ok {
		recorded, rerr := engine.SettleHandOver(ctx, m.store, ch, &next)
		switch {
		case rerr != nil:
			s.event("%s: whether the hand-over was recorded is unknown (%v, then %v): PostgreSQL stays stopped", m.name, err, rerr)
			return engine.Result{Err: err}
		case recorded:
			s.event("%s: the hand-over was recorded after all", m.name)
			err = nil
		}
	}
	if err != nil {
		s.event("%s: the hand-over was not recorded (%v): PostgreSQL starts again as the primary", m.name, err)
		m.pg, m.dir.state = engine.PGPrimary, pg.DBInProduction
		s.write(&m.dir) // the end-of-recovery checkpoint
		return engine.Result{Err: err}
	}
	s.event("%s: handed over at its shutdown checkpoint %s", m.name, next.CheckpointLSN)
	return engine.Result{Err: m.store.ReleaseLeader(ctx)}
}

// takeOver is Agent.takeOver: for a switchover the standby must have replayed past the old
// primary's shutdown checkpoint by the deadline; the request moves to promoting; the leader
// key is taken; PostgreSQL promotes (a new timeline from where its WAL ends); the switch is
// appended to the history by compare-and-swap; the request is removed.
func (s *sim) takeOver(m *simMember, ch *engine.PendingChange) engine.Result {
	ctx := context.Background()
	fail := func(format string, args ...any) engine.Result {
		err := fmt.Errorf(format, args...)
		s.event("%s: taking over fails: %v", m.name, err)
		return engine.Result{Err: err}
	}
	if ch.Phase != engine.PhasePromoting {
		if ch.Kind == engine.Switchover {
			s.catchUp(m)
			switch {
			case m.pg != engine.PGStandby:
				return fail("the server is not in recovery: it cannot follow the old primary's last checkpoint")
			case m.dir.end <= ch.CheckpointLSN:
				if ch.Deadline.After(s.now) {
					s.now = ch.Deadline // the driver waits for the replay until the deadline
				}
				return fail("replayed %s of timeline %d, not past the old primary's shutdown checkpoint %s", m.dir.end, m.dir.timeline, ch.CheckpointLSN)
			}
		}
		next := ch.ChangeRequest
		next.Phase = engine.PhasePromoting
		ok, err := engine.AdvanceChange(ctx, m.store, ch, &next)
		if err != nil {
			return fail("%w", err)
		}
		if !ok {
			return fail("the request changed before the promotion (aborted, or another member came first)")
		}
		cur, err := engine.ReadChange(ctx, m.store)
		if err != nil || cur == nil {
			return fail("the request cannot be read after it was marked promoting: %v", err)
		}
		ch = cur
	}
	held, err := m.store.AcquireLeader(ctx, m.name)
	if err != nil {
		return fail("%w", err)
	}
	if !held {
		return fail("the leader key is held by another member: not promoted")
	}
	before := m.dir
	switch m.pg {
	case engine.PGStopped:
		return fail("promoting: %w", pg.ErrNotRunning)
	case engine.PGStandby:
		s.promote(m)
	}
	if m.dir.switchAt == 0 {
		return fail("timeline %d: %w", m.dir.timeline, pg.ErrNoTimelineHistory)
	}
	sw := dcs.TimelineSwitch{Timeline: int(m.dir.timeline), LSN: uint64(m.dir.switchAt), Time: s.now, Reason: string(ch.Kind), NewLeader: m.name, OldLeader: ch.Leader}
	m.led = true
	s.tookOver(m, ch, before)
	if err := engine.RecordSwitch(ctx, m.store, sw); err != nil {
		return fail("while recording the switch to timeline %d in the cluster history: %w", sw.Timeline, err)
	}
	_, _ = engine.AdvanceChange(ctx, m.store, ch, nil)
	s.event("%s: took over on timeline %d (switch point %s)", m.name, sw.Timeline, pg.LSN(sw.LSN))
	return engine.Result{}
}

// promote ends m's recovery: a new timeline, after the newest it knows of, begins where its WAL
// ends, and the end-of-recovery checkpoint is written on it.
func (s *sim) promote(m *simMember) {
	d := &m.dir
	tl := max(d.timeline, d.seenTL) + 1
	if r := s.remote; r != nil && (tl < r.dir.timeline || tl == r.dir.timeline && r.dir.switchAt == d.end) {
		// In a standby cluster the next number this directory knows of may be one the remote
		// began meanwhile at the very point this WAL ends (or, older, at a point not kept
		// here): two timelines of one number begun at one LSN on two lines of WAL, which
		// neither PostgreSQL nor pg_rewind can tell apart (see "the remote changes primary").
		// Left out: the promotion takes a number the remote has not used. One of the remote's
		// number begun elsewhere stays in.
		tl = r.dir.timeline + 1
	}
	d.switchAt, d.branch = d.end, s.newBranch(d.branch, d.end)
	d.timeline, d.seenTL = tl, tl
	d.standby, d.state = false, pg.DBInProduction
	m.pg = engine.PGPrimary
	s.writeN(d, 0x100)
}

// tookOver checks what a change of primary promises once its candidate holds the leader key:
// after a switchover, every write acknowledged before the hand-over is in the new primary's
// WAL; after a failover without --force, no member that was running publishes a more advanced
// position than the candidate had (before is its directory before the promotion). A failover starts the
// acknowledged writes afresh: what the old primary acknowledged and no standby received is the
// loss an asynchronous failover accepts.
func (s *sim) tookOver(m *simMember, ch *engine.PendingChange, before simDir) {
	switch {
	case ch.Kind == engine.Switchover:
		if s.ackedOK && !s.prefixOf(s.acked, m.dir) {
			s.fail("the switchover to %s loses writes acknowledged before the hand-over (acknowledged up to %s, the new primary's WAL does not hold them)", m.name, s.acked.end)
		}
	case !ch.Force:
		cl := s.cluster()
		for _, o := range s.members {
			pub, ok := cl.Member(o.name)
			if o == m || o.pg == engine.PGStopped || o.dir.sysid != before.sysid || !ok || !pub.IsRunning() {
				continue
			}
			// Members answer with what they publish, which is up to a cycle old: a member that
			// received more since is a window the failover does not see (logged, not checked).
			if tl, end := uint32(pub.Timeline), pg.LSN(pub.XLogLocation); tl > before.timeline || tl == before.timeline && end > before.end {
				s.fail("the failover to %s (timeline %d at %s) passes over %s, which runs and publishes a further position (timeline %d at %s)",
					m.name, before.timeline, before.end, o.name, tl, end)
			}
			if o.dir.timeline > before.timeline || o.dir.timeline == before.timeline && o.dir.end > before.end {
				s.event("%s: the failover to %s passes over WAL %s received since it last published (timeline %d at %s)", o.name, m.name, o.name, o.dir.timeline, o.dir.end)
			}
		}
	}
	s.checkSyncFailover(m, ch)
	if ch.Kind == engine.Failover {
		s.acked, s.ackedOK = m.dir, true
	}
}

// rejoin models the rejoin methods (pg_rewind toward the leader): only on the member's own
// directory of this cluster, never on the leader; success leaves a standby of the leader that
// streams, failure the directory as it was (still marked), a crash a directory never started.
func (s *sim) rejoin(m *simMember, e engine.RunRejoin) engine.Result {
	cl := s.cluster()
	switch {
	case m.dir.foreign:
		s.fail("%s rewinds a directory pgimaged did not create", m.name)
	case m.dir.kind != engine.DirCluster || strconv.FormatUint(m.dir.sysid, 10) != cl.SystemIdentifier():
		s.fail("%s rewinds a %s directory that is not this cluster's", m.name, m.dir.kind)
	case s.holdsKey(m):
		s.fail("%s rewinds its directory while it holds the leader key", m.name)
	case e.Leader.Name == m.name:
		s.fail("%s rewinds toward itself", m.name)
	}
	if m.pg != engine.PGStopped {
		s.stopPG(m)
	}
	m.needsReinit = true // set before anything is changed
	outcome := rapid.SampledFrom([]string{"ok", "ok", "fails", "crash"}).Draw(s.t, "rewind outcome")
	l := s.byName(e.Leader.Name)
	if outcome == "ok" && (l == nil || l.pg == engine.PGStopped || l.dir.sysid != m.dir.sysid) {
		outcome = "fails (the source does not run)"
	}
	s.event("%s: pg_rewind toward %s: %s", m.name, e.Leader.Name, outcome)
	switch outcome {
	case "crash":
		s.kill(m)
		return engine.Result{}
	case "ok":
	default:
		return engine.Result{Err: errors.New("rewind: " + outcome), Attempts: []dcs.Attempt{{Method: "rewind"}}}
	}
	m.dir = simDir{kind: engine.DirCluster, sysid: l.dir.sysid, timeline: l.dir.timeline, end: l.dir.end, branch: l.dir.branch,
		state: pg.DBInArchiveRecovery, standby: true, switchAt: l.dir.switchAt, seenTL: max(l.dir.timeline, l.dir.seenTL)}
	m.following, m.pg, m.needsReinit, m.led = l.name, engine.PGStandby, false, false
	return engine.Result{Attempts: []dcs.Attempt{{Method: "rewind", OK: true}}}
}

// checkChange verifies the invariants of a change of primary that hold between steps: the
// history's timelines strictly increase; a member holding the leader key is never on a
// timeline older than the history's newest; at most one member runs a writable primary while
// holding the key, and its WAL holds every acknowledged write.
func (s *sim) checkChange() {
	cl := s.cluster()
	prev := 0
	for _, sw := range cl.History.Switches {
		if sw.Timeline <= prev {
			s.fail("the cluster history's timelines do not increase: %d after %d", sw.Timeline, prev)
		}
		prev = sw.Timeline
	}
	newest := cl.History.Timeline()
	var writable []string
	for _, m := range s.members {
		if !s.holdsKey(m) || m.dir.kind != engine.DirCluster {
			continue
		}
		if newest > 0 && int(m.dir.timeline) < newest && !s.followsRemoteAgain(m) { // invariants_standby_test.go
			s.fail("%s holds the leader key on timeline %d, older than the history's newest (%d)", m.name, m.dir.timeline, newest)
		}
		if m.pg != engine.PGPrimary || strconv.FormatUint(m.dir.sysid, 10) != cl.SystemIdentifier() {
			continue
		}
		writable = append(writable, m.name)
		if s.ackedOK && !s.prefixOf(s.acked, m.dir) {
			s.fail("%s runs the primary holding the leader key without writes acknowledged up to %s", m.name, s.acked.end)
		}
	}
	if len(writable) > 1 {
		s.fail("%v run writable primaries holding the leader key", writable)
	}
}
