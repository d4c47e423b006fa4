package engine_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"

	"pgregory.net/rapid"

	"github.com/pgimaged/pgimaged/core/dcs"
	"github.com/pgimaged/pgimaged/core/engine"
	"github.com/pgimaged/pgimaged/core/pg"
)

// The property test drives several simulated members through random sequences of decisions,
// crashes, DCS faults and method outcomes, against the in-memory DCS, and checks the
// invariants of docs/invariants.md after every step. A member decides with engine.Decide, as
// `pgimaged run` does; what the agent would do with PostgreSQL and the data directory is
// modelled, so that millions of interleavings cost seconds.

// simDir is a model of one data directory.
type simDir struct {
	kind        engine.DataDirState
	sysid       uint64
	timeline    uint32
	end         pg.LSN // where its WAL ends
	state       pg.DBState
	standby     bool // standby.signal
	backupLabel bool
	foreign     bool // put there by an operator; pgimaged must never delete it
	// branch is the WAL history the directory is on (see sim.write); with end it tells
	// whether its WAL is a prefix of another directory's.
	branch int
}

// branch is one line of WAL history: it left its parent at forkAt.
type branch struct {
	parent int
	forkAt pg.LSN
	tip    pg.LSN
}

type simPending struct {
	sysid string
	err   error
}

type simMember struct {
	name        string
	store       *dcs.MemorySession // nil: the agent is down
	dir         simDir
	pg          engine.PGState
	pending     *simPending
	needsReinit bool
	refused     bool // the agent exited on a refusal
	role, state string
	noMaster    bool
	mustRelease bool
	led         bool // the mark of having led with this directory
	handStarted bool // PostgreSQL was started by hand while the agent was down
}

type sim struct {
	t         *rapid.T
	mem       *dcs.Memory
	members   []*simMember
	flaky     bool // DCS faults are injected
	nextSysid uint64
	branches  []branch
	seen      map[engine.ActionKind]int
}

// newBranch starts a WAL history, from parent at forkAt (parent -1: a new cluster).
func (s *sim) newBranch(parent int, forkAt pg.LSN) int {
	s.branches = append(s.branches, branch{parent: parent, forkAt: forkAt, tip: forkAt})
	return len(s.branches) - 1
}

// write appends WAL to a primary's directory: at the tip of its history it extends it;
// behind the tip (another directory wrote past this point) it forks a new history.
func (s *sim) write(d *simDir) {
	if d.end != s.branches[d.branch].tip {
		d.branch = s.newBranch(d.branch, d.end)
	}
	d.end += 0x100000
	s.branches[d.branch].tip = d.end
}

// prefixOf reports whether the WAL of directory a is a prefix of directory b's.
func (s *sim) prefixOf(a, b simDir) bool {
	limit := b.end
	for br := b.branch; br >= 0; br = s.branches[br].parent {
		if br == a.branch {
			return a.end <= limit
		}
		limit = min(limit, s.branches[br].forkAt)
	}
	return false
}

func (s *sim) cluster() dcs.Cluster { return s.mem.Snapshot() }

// fail reports a broken invariant.
func (s *sim) fail(format string, args ...any) {
	s.t.Helper()
	s.t.Fatalf("invariant broken: "+format, args...)
}

func (s *sim) publish(m *simMember) {
	if m.store == nil {
		return
	}
	mb := dcs.Member{Name: m.name, State: m.state, Role: m.role, ConnURL: "postgres://127.0.0.1:5432/postgres"}
	if m.pg != engine.PGStopped {
		mb.State = dcs.StateRunning
		mb.Timeline, mb.XLogLocation = int(m.dir.timeline), int64(m.dir.end)
	}
	_ = m.store.PutMember(context.Background(), mb)
}

func (s *sim) observe(m *simMember, cl *dcs.Cluster, err error) engine.Observation {
	obs := engine.Observation{Member: m.name, Cluster: cl, DCSError: err, PostgreSQL: m.pg, NoMaster: m.noMaster}
	d := m.dir
	obs.DataDir = d.kind
	if d.kind == engine.DirCluster {
		obs.Control = pg.ControlData{SystemIdentifier: d.sysid, ControlVersion: 1300, HasPosition: true, State: d.state, Checkpoint: d.end, Redo: d.end, Timeline: d.timeline}
		obs.Standby, obs.BackupLabel, obs.NeedsReinit, obs.Led = d.standby, d.backupLabel, m.needsReinit, m.led
	}
	if cl != nil {
		for _, o := range cl.Members {
			if o.Name != m.name && o.IsRunning() && o.ConnURL != "" && (o.Name == cl.Leader || !o.IsPrimary()) {
				obs.Source = o.Name
				break
			}
		}
	}
	return obs
}

// leaderMember is the simulated member the leader key names, nil when none.
func (s *sim) leaderMember() *simMember {
	l := s.cluster().Leader
	for _, m := range s.members {
		if m.name == l {
			return m
		}
	}
	return nil
}

func (s *sim) stopPG(m *simMember) {
	m.handStarted = false
	if m.pg == engine.PGPrimary {
		m.dir.state = pg.DBShutdowned
	} else if m.pg == engine.PGStandby {
		m.dir.state = pg.DBShutdownedInRecovery
	}
	m.pg = engine.PGStopped
}

// wipe empties the data directory, which must be pgimaged's own.
func (s *sim) wipe(m *simMember, why string) {
	if m.dir.foreign {
		s.fail("%s: %s deleted a directory pgimaged did not create", why, m.name)
	}
	if m.dir.kind != engine.DirLeftover {
		s.fail("%s: %s deleted a %s directory that was not its own leftover", why, m.name, m.dir.kind)
	}
	m.dir = simDir{}
	m.led = false
}

func (s *sim) startPrimary(m *simMember, why string) {
	cl := s.cluster()
	if cl.Leader != m.name || s.mem.LeaderSession() != m.store {
		s.fail("%s: %s starts a primary without holding the leader key (leader %q)", why, m.name, cl.Leader)
	}
	if m.dir.kind != engine.DirCluster {
		s.fail("%s: %s starts a %s directory", why, m.name, m.dir.kind)
	}
	m.pg = engine.PGPrimary
	m.dir.state = pg.DBInProduction
	m.dir.backupLabel = false
	s.write(&m.dir) // the end-of-recovery checkpoint
}

// cycle is one cycle of the member's agent: observe, decide, carry out.
func (s *sim) cycle(m *simMember) {
	ctx := context.Background()
	if m.refused {
		return
	}
	if m.store == nil {
		m.store = s.mem.Open(m.name)
	}
	select {
	case <-m.store.Lost():
		m.store = nil
		return
	default:
	}
	if m.pending != nil {
		s.settle(m)
		return
	}
	if m.mustRelease && !releaseInitialize(m) {
		return
	}
	cl, err := m.store.Cluster(ctx)
	if err != nil {
		// Without the DCS only a leftover of pgimaged's own is removed.
		if act := engine.Decide(s.observe(m, nil, err)); act.Kind == engine.ActClean {
			s.stopPG(m)
			s.wipe(m, "clean without the DCS")
		} else if act.Kind != engine.ActWait && act.Kind != engine.ActRefuse {
			s.fail("without the DCS %s decided %s", m.name, act.Kind)
		}
		return
	}
	obs := s.observe(m, &cl, nil)
	if rapid.IntRange(0, 15).Draw(s.t, "an operator asks "+m.name+" for a reinit") == 15 {
		obs.ReinitRequested = &engine.ReinitRequest{}
	}
	act := engine.Decide(obs)
	s.seen[act.Kind]++
	if act.Rejoin {
		s.seen["adopt, following the leader"]++
	}
	switch act.Kind {
	case engine.ActClean:
		if act.Stop {
			s.stopPG(m)
		}
		s.wipe(m, "clean")
	case engine.ActRefuse:
		m.refused = true
		s.stopPG(m)
		_ = m.store.Close()
		m.store = nil
	case engine.ActWait:
		m.state = act.State
		s.publish(m)
	case engine.ActFence:
		s.stopPG(m)
		m.needsReinit, m.led = true, false
		m.state = engine.StateFenced
		s.publish(m)
	case engine.ActReinit:
		m.needsReinit, m.led = true, false
		m.state = engine.StateNeedsReinit
		s.publish(m)
	case engine.ActReclone:
		s.reclone(m, cl)
	case engine.ActBootstrap:
		s.bootstrap(m)
	case engine.ActClone:
		s.clone(m, cl)
	case engine.ActAdopt:
		s.adopt(m, cl, act)
	}
	if l := s.cluster().Leader; m.pg == engine.PGPrimary && m.pending == nil && l != "" && l != m.name {
		s.fail("%s keeps a primary running after its cycle while %s leads (decided %s: %s)", m.name, l, act.Kind, act.Reason)
	}
}

// reclone carries out a reinit request: the one case where a cluster pgimaged did not create in
// this attempt is deleted, and only a replica's of this cluster, never the leader's.
func (s *sim) reclone(m *simMember, cl dcs.Cluster) {
	switch {
	case cl.Leader == m.name:
		s.fail("%s re-clones itself while it holds the leader key", m.name)
	case m.pg == engine.PGPrimary:
		s.fail("%s re-clones a running primary", m.name)
	case m.dir.foreign:
		s.fail("%s re-clones over a directory pgimaged did not create", m.name)
	case m.dir.kind == engine.DirCluster && strconv.FormatUint(m.dir.sysid, 10) != cl.SystemIdentifier():
		s.fail("%s re-clones over another cluster's directory (%d, the DCS records %s)", m.name, m.dir.sysid, cl.SystemIdentifier())
	}
	s.stopPG(m)
	m.dir = simDir{}
	m.needsReinit, m.led = false, false
	s.clone(m, cl)
}

func (s *sim) bootstrap(m *simMember) {
	ctx := context.Background()
	won, err := m.store.TryInitialize(ctx)
	if err != nil && errors.Is(err, dcs.ErrUnavailable) {
		releaseInitialize(m)
	}
	if err != nil || !won {
		return
	}
	// The method fills the directory under the incomplete marker and starts a primary.
	switch rapid.SampledFrom([]string{"ok", "ok", "fails", "crash"}).Draw(s.t, "bootstrap outcome") {
	case "fails":
		m.dir = simDir{} // the attempt removes what it made
		releaseInitialize(m)
		return
	case "crash":
		// The agent dies mid-bootstrap (SIGKILL): its session ends, PostgreSQL may survive in
		// the half-made directory.
		s.nextSysid++
		m.dir = simDir{kind: engine.DirLeftover, sysid: s.nextSysid, timeline: 1, end: 0x1000000, state: pg.DBInProduction, branch: s.newBranch(-1, 0x1000000)}
		if rapid.Bool().Draw(s.t, "postgres survives") {
			m.pg = engine.PGPrimary
		}
		m.store.Lose()
		m.store = nil
		return
	}
	s.nextSysid++
	m.dir = simDir{kind: engine.DirLeftover, sysid: s.nextSysid, timeline: 1, end: 0x1000000, state: pg.DBInProduction, branch: s.newBranch(-1, 0x1000000)}
	m.pg = engine.PGPrimary // started while holding initialize
	id := strconv.FormatUint(s.nextSysid, 10)
	m.pending = &simPending{sysid: id, err: m.store.SetInitialize(ctx, id)}
	s.settle(m)
}

// releaseInitialize mirrors Agent.releaseInitialize.
func releaseInitialize(m *simMember) bool {
	m.mustRelease = true
	for range 5 {
		err := m.store.ReleaseInitialize(context.Background())
		if err == nil || errors.Is(err, dcs.ErrSessionLost) {
			m.mustRelease = false
			return true
		}
	}
	return false
}

// settle mirrors Agent.settleBootstrap.
func (s *sim) settle(m *simMember) {
	ctx := context.Background()
	p := m.pending
	written, known := p.err == nil, true
	if !written {
		known = !errors.Is(p.err, dcs.ErrUnavailable)
		if !known {
			for range 5 {
				cl, err := m.store.Cluster(ctx)
				if err == nil {
					written, known = cl.SystemIdentifier() == p.sysid, true
					break
				}
			}
		}
	}
	if !known {
		return // asked again next cycle; the new cluster is kept
	}
	m.pending = nil
	if !written {
		s.stopPG(m)
		s.wipe(m, "undo bootstrap")
		releaseInitialize(m)
		return
	}
	m.dir.kind = engine.DirCluster
	if held, _ := m.store.AcquireLeader(ctx, m.name); held {
		m.role, m.led = dcs.RolePrimary, true
	}
	m.state = dcs.StateRunning
	s.publish(m)
}

func (s *sim) clone(m *simMember, cl dcs.Cluster) {
	src := s.leaderMember()
	if src == nil || src.pg == engine.PGStopped {
		// A no_master method or a replica as the source: copy what the archive holds.
		src = nil
	}
	keep := rapid.Bool().Draw(s.t, "keep_data")
	switch rapid.SampledFrom([]string{"ok", "ok", "fails", "timeout", "crash"}).Draw(s.t, "clone outcome") {
	case "fails", "timeout":
		if keep {
			// A keep_data method left a full copy behind: it stays marked as a leftover.
			m.dir = simDir{kind: engine.DirLeftover, state: pg.DBInProduction, backupLabel: true}
		} else {
			m.dir = simDir{}
		}
		return
	case "crash":
		m.dir = simDir{kind: engine.DirLeftover, state: pg.DBInProduction, backupLabel: true}
		m.store.Lose()
		m.store = nil
		return
	}
	id, _ := strconv.ParseUint(cl.SystemIdentifier(), 10, 64)
	if src == nil || strconv.FormatUint(src.dir.sysid, 10) != cl.SystemIdentifier() {
		// From an archive: the cluster's history as far as it was archived. Modelled as
		// the start of the leader's history, or nothing to copy.
		l := s.leaderMember()
		if l == nil || strconv.FormatUint(l.dir.sysid, 10) != cl.SystemIdentifier() {
			m.dir = simDir{}
			return
		}
		src = l
	}
	d := simDir{kind: engine.DirCluster, sysid: id, timeline: src.dir.timeline, end: src.dir.end, branch: src.dir.branch, state: pg.DBInArchiveRecovery, standby: true}
	m.dir = d
	m.led = false
	m.pg = engine.PGStandby
	m.role, m.state = dcs.RoleReplica, dcs.StateRunning
	s.publish(m)
}

func (s *sim) adopt(m *simMember, cl dcs.Cluster, act engine.Action) {
	ctx := context.Background()
	if act.ClaimInitialize {
		won, err := m.store.TryInitialize(ctx)
		if err != nil && errors.Is(err, dcs.ErrUnavailable) {
			releaseInitialize(m)
		}
		if err != nil || !won {
			return
		}
		if err := m.store.SetInitialize(ctx, act.SystemIdentifier); err != nil {
			if errors.Is(err, dcs.ErrUnavailable) {
				if c, rerr := m.store.Cluster(ctx); rerr == nil && c.SystemIdentifier() == act.SystemIdentifier {
					goto claimed
				}
			}
			releaseInitialize(m)
			return
		}
	}
claimed:
	if act.Primary {
		held, err := m.store.AcquireLeader(ctx, m.name)
		if err != nil || !held {
			return
		}
		m.led = true
	} else {
		m.led = false
	}
	if act.Rejoin {
		l := s.leaderMember()
		if l == nil || !s.prefixOf(m.dir, l.dir) {
			s.fail("%s follows the leader with a directory that holds WAL the leader lacks", m.name)
		}
		m.dir.standby = true
	}
	switch act.Start {
	case engine.StartPrimary:
		s.startPrimary(m, "adopt")
	case engine.StartStandby:
		if m.dir.kind != engine.DirCluster {
			s.fail("%s starts a %s directory", m.name, m.dir.kind)
		}
		m.pg = engine.PGStandby
	}
	m.role = dcs.RoleReplica
	if act.Primary {
		m.role = dcs.RolePrimary
		m.handStarted = false // it leads now
	}
	m.state = dcs.StateRunning
	s.publish(m)
}

// check verifies the invariants that hold between steps.
func (s *sim) check() {
	cl := s.cluster()
	recorded := cl.SystemIdentifier()
	var primaries []string
	for _, m := range s.members {
		if m.pg != engine.PGPrimary {
			continue
		}
		if m.dir.kind == engine.DirLeftover {
			// A half-made directory: a bootstrap in flight (holding initialize) or an orphan of
			// an agent that died, which its next cycle stops and removes.
			if m.store != nil && m.pending == nil && s.mem.InitializeOwner() != m.name {
				s.fail("%s runs a primary in a half-made directory outside a bootstrap", m.name)
			}
			continue
		}
		if strconv.FormatUint(m.dir.sysid, 10) == recorded && !m.handStarted {
			primaries = append(primaries, m.name)
		}
	}
	if len(primaries) > 1 {
		// Allowed only for one cycle: the one without the key is fenced at its next cycle.
		// A member can hold a running primary of the cluster without the key only after its
		// session was lost; never because it started one.
		leaders := 0
		for _, name := range primaries {
			if name == cl.Leader {
				leaders++
			}
		}
		if leaders == 0 {
			s.fail("%d primaries of the cluster run and none holds the leader key: %v", len(primaries), primaries)
		}
	}
	if owner := s.mem.InitializeOwner(); owner != "" {
		for _, m := range s.members {
			if m.name == owner && m.pending == nil && !m.mustRelease {
				s.fail("initialize is left empty by %s, which is not bootstrapping", owner)
			}
		}
	}
	for _, m := range s.members {
		if m.dir.foreign && m.dir.kind == engine.DirEmpty {
			s.fail("the foreign directory of %s was deleted", m.name)
		}
	}
}

func TestInvariantsUnderFaults(t *testing.T) {
	seen := map[engine.ActionKind]int{}
	defer func() { t.Logf("decisions taken: %v", seen) }()
	rapid.Check(t, func(t *rapid.T) {
		s := &sim{t: t, mem: dcs.NewMemory(), nextSysid: 7300000000000000000, seen: seen}
		n := rapid.IntRange(2, 4).Draw(t, "members")
		for i := range n {
			s.members = append(s.members, &simMember{name: fmt.Sprintf("node%d", i+1), noMaster: rapid.Bool().Draw(t, "no_master")})
		}
		s.mem.Inject = func(op, member string) dcs.Fault {
			if !s.flaky {
				return dcs.FaultNone
			}
			return rapid.SampledFrom([]dcs.Fault{dcs.FaultNone, dcs.FaultNone, dcs.FaultNone, dcs.FaultUnavailable, dcs.FaultUncertain, dcs.FaultSessionLost}).Draw(t, "fault "+op)
		}
		// loseAgent ends m's agent: its session ends as its lease expires, and what it was
		// about to do is forgotten.
		loseAgent := func(m *simMember) {
			if m.store != nil {
				m.store.Lose()
				m.store = nil
			}
			m.pending = nil
			m.refused = false
			m.mustRelease = false
		}
		pick := func() *simMember { return rapid.SampledFrom(s.members).Draw(t, "member") }
		t.Repeat(map[string]func(*rapid.T){
			"cycle": func(t *rapid.T) { s.cycle(pick()) },
			"agent killed": func(t *rapid.T) {
				// PostgreSQL survives; the agent's session ends as its lease expires.
				loseAgent(pick())
			},
			"machine crash": func(t *rapid.T) {
				m := pick()
				loseAgent(m)
				m.pg = engine.PGStopped // a crash leaves pg_control as it was
			},
			"session lost": func(t *rapid.T) {
				if m := pick(); m.store != nil {
					m.store.Lose()
				}
			},
			"DCS flaky": func(t *rapid.T) { s.flaky = !s.flaky },
			"primary writes": func(t *rapid.T) {
				for _, m := range s.members {
					if m.pg == engine.PGPrimary {
						s.write(&m.dir)
					}
				}
				for _, m := range s.members {
					if m.pg == engine.PGStandby {
						// A standby streams from the leader when its WAL is a prefix of the
						// leader's; else PostgreSQL stops replicating.
						if l := s.leaderMember(); l != nil && l.pg == engine.PGPrimary && l.dir.sysid == m.dir.sysid && s.prefixOf(m.dir, l.dir) {
							m.dir.end, m.dir.branch = l.dir.end, l.dir.branch
						}
					}
				}
			},
			"operator places a copy": func(t *rapid.T) {
				// A copy of the leader's directory without standby.signal (a base backup, or a
				// stopped copy), or a directory of another cluster, on a member whose agent is
				// down and whose directory is empty.
				m := pick()
				l := rapid.SampledFrom(s.members).Draw(t, "copied member")
				if m.store != nil || m.dir.kind != engine.DirEmpty || l == m || l.dir.kind != engine.DirCluster || l.dir.foreign {
					return
				}
				switch rapid.SampledFrom([]string{"base backup", "stopped copy", "standby without its signal", "foreign"}).Draw(t, "copy") {
				case "standby without its signal":
					if !l.dir.standby {
						return
					}
					m.dir = l.dir
					m.dir.standby, m.dir.backupLabel, m.dir.state = false, false, pg.DBShutdownedInRecovery
				case "base backup":
					m.dir = l.dir
					m.dir.standby, m.dir.backupLabel, m.dir.state = false, true, pg.DBInProduction
				case "stopped copy":
					m.dir = l.dir
					m.dir.standby, m.dir.state = false, pg.DBShutdowned
				case "foreign":
					m.dir = simDir{kind: engine.DirCluster, sysid: 42, timeline: 1, end: 0x1000000, state: pg.DBShutdowned, foreign: true, branch: s.newBranch(-1, 0x1000000)}
				}
				m.needsReinit, m.led = false, false
			},
			"operator starts PostgreSQL by hand": func(t *rapid.T) {
				// pg_ctl start on a member whose agent is down: a primary unless the directory
				// has standby settings. Its agent must fence it if another member leads.
				m := pick()
				if m.store != nil || m.dir.kind != engine.DirCluster || m.pg != engine.PGStopped || m.dir.foreign {
					return
				}
				if m.dir.standby {
					m.pg = engine.PGStandby
					return
				}
				m.pg = engine.PGPrimary
				m.dir.state, m.dir.backupLabel = pg.DBInProduction, false
				s.write(&m.dir)
				m.handStarted = true
			},
			"": func(t *rapid.T) { s.check() },
		})
	})
}
