package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/pgimaged/pgimaged/core/dcs"
	"github.com/pgimaged/pgimaged/core/dcs/dcstest"
	"github.com/pgimaged/pgimaged/core/engine"
	"github.com/pgimaged/pgimaged/core/pg"
)

// The simulator runs the agent's real state machine, engine.Step, for several members against
// the in-memory DCS (sessions, leases that expire, injected unavailability, writes that took
// effect but answered with an error, partitions), and models only what Step's effects do to
// PostgreSQL and the data directories: bootstraps and clones that succeed, fail, time out or
// crash half way, PostgreSQL crashes, agents killed, members frozen longer than their lease
// and resumed, operators placing copies, starting PostgreSQL by hand or asking for a reinit.
// The invariants of docs/invariants.md are checked as effects are carried out and after every
// event; a broken one prints the schedule as a list of events (rapid prints the seed that
// replays it: go test -run TestInvariantsUnderFaults -rapid.seed=N ./core/engine/).

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
	// checkpoint is the shutdown checkpoint a clean stop of a primary wrote (0: the WAL's end).
	checkpoint pg.LSN
	// switchAt is where its timeline began; seenTL the newest timeline whose history file it
	// holds (a promotion picks the next one).
	switchAt pg.LSN
	seenTL   uint32
}

// branch is one line of WAL history: it left its parent at forkAt.
type branch struct {
	parent int
	forkAt pg.LSN
	tip    pg.LSN
}

// newBranch starts a WAL history, from parent at forkAt (parent -1: a new cluster).
func (s *sim) newBranch(parent int, forkAt pg.LSN) int {
	s.branches = append(s.branches, branch{parent: parent, forkAt: forkAt, tip: forkAt})
	return len(s.branches) - 1
}

// write appends WAL to a primary's directory: at the tip of its history it extends it;
// behind the tip (another directory wrote past this point) it forks a new history.
func (s *sim) write(d *simDir) {
	s.writeN(d, 0x100000)
}

// writeN is write of n bytes.
func (s *sim) writeN(d *simDir, n pg.LSN) {
	if d.end != s.branches[d.branch].tip {
		d.branch = s.newBranch(d.branch, d.end)
	}
	d.end += n
	d.checkpoint = 0
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

// simMember is one member: its agent's State (what engine.Step remembers), its session, its
// data directory and its PostgreSQL.
type simMember struct {
	name  string
	store *dcstest.Session // nil: no session open yet
	st    engine.State
	// obs is the cycle's observation; result the awaited effect's outcome, which the
	// member's next step feeds back to Step (busy until the cycle ends).
	obs    engine.Observation
	obsDir simDir // the data directory as the cycle observed it
	result *engine.Result
	dir    simDir
	pg     engine.PGState
	// The marks beside the data directory.
	needsReinit, led bool
	refused          bool // the agent exited on a refusal
	frozen           bool // the agent is paused (its lease ran out meanwhile)
	noMaster         bool
	clonefrom        bool   // tagged clonefrom: a preferred clone source
	handStarted      bool   // PostgreSQL was started by hand while the agent was down
	bootstrapping    bool   // the data directory is this member's bootstrap in flight
	following        string // the member primary_conninfo names ("" for none)
	rejoinMethods    []string
	reimage          bool
	// outlived: its primary ran, its agent down or cut off, when an operator asked for a
	// failover (see sim.failover); cleared once it stops.
	outlived bool
	// restartHeld: a restart began while this member held the leader key (see EndRestart).
	restartHeld bool
}

type sim struct {
	// followed: `standby follow` made the promoted standby cluster follow its remote again
	// (invariants_standby_test.go).
	followed  bool
	t         *rapid.T
	mem       *dcstest.Memory
	operator  *dcstest.Session
	members   []*simMember
	flaky     bool            // DCS faults are injected
	cut       map[string]bool // members partitioned from the DCS
	nextSysid uint64
	branches  []branch
	seen      map[string]int
	events    []string
	// now is the simulated clock the agents' observations and the operators' requests read.
	now time.Time
	// acked is the WAL history as far as the primary holding the leader key acknowledged
	// writes; ackedOK: there is one (a forced failover starts it afresh).
	acked   simDir
	ackedOK bool
	// remote is the remote primary of a standby cluster (invariants_standby_test.go), nil for a
	// cluster of its own.
	remote *simMember
	// sync is synchronous mode (invariants_sync_test.go).
	sync syncModel
}

// event adds a line to the schedule printed when an invariant breaks.
func (s *sim) event(format string, args ...any) {
	s.events = append(s.events, fmt.Sprintf("%3d. ", len(s.events)+1)+fmt.Sprintf(format, args...))
}

// fail reports a broken invariant with the schedule that led to it.
func (s *sim) fail(format string, args ...any) {
	s.t.Helper()
	s.t.Fatalf("invariant broken: %s\nschedule:\n%s", fmt.Sprintf(format, args...), strings.Join(s.events, "\n"))
}

func (s *sim) cluster() dcs.Cluster { return s.mem.Snapshot() }

func (s *sim) byName(name string) *simMember {
	if s.remote != nil && name == s.remote.name {
		return s.remote
	}
	for _, m := range s.members {
		if m.name == name {
			return m
		}
	}
	return nil
}

func newState(name string) engine.State {
	return engine.State{Name: name, Scope: "batman", DataDir: "/data/" + name, LoopWait: time.Second,
		NeedsReinitMark: "/data/." + name + ".pgimaged-needs-reinit", Status: dcs.StateStarting}
}

// observe is what Node.Observe would gather for m.
func (s *sim) observe(m *simMember) engine.Observation {
	ctx := context.Background()
	obs := engine.Observation{Member: m.name, PostgreSQL: m.pg, NoMaster: m.noMaster, Now: s.now,
		RejoinMethods: m.rejoinMethods, Reimage: m.reimage, SynchronousMode: s.sync.on, MaxLag: 1 << 20}
	cl, err := m.store.Cluster(ctx)
	if err != nil {
		obs.DCSError = err
	} else {
		obs.Cluster = &cl
		obs.ReinitRequested, obs.ReinitError = engine.PendingReinit(ctx, m.store, m.name)
		obs.RestartRequested, _ = engine.ReadRestart(ctx, m.store, m.name)
		if ch, err := engine.ReadChange(ctx, m.store); err != nil {
			obs.Cluster, obs.DCSError = nil, err // as Agent.observeChange: unknown is not "none"
		} else {
			obs.Change = ch
		}
	}
	d := m.dir
	obs.DataDir = d.kind
	if s.remote != nil {
		s.observeStandby(m, &obs) // invariants_standby_test.go
	}
	if d.kind == engine.DirCluster {
		ckpt := d.end
		if d.checkpoint != 0 {
			ckpt = d.checkpoint
		}
		obs.Control = pg.ControlData{SystemIdentifier: d.sysid, ControlVersion: 1300, HasPosition: true, State: d.state, Checkpoint: ckpt, Redo: ckpt, Timeline: d.timeline}
		if m.pg != engine.PGStopped {
			// Receiving: only a standby whose WAL receiver streams shows its received_tli.
			obs.WAL = &pg.Position{InRecovery: m.pg == engine.PGStandby, Timeline: int(d.timeline), Received: d.end, Replayed: d.end, Receiving: s.streams(m)}
		}
		if f := s.byName(m.following); f != nil {
			obs.Following = addr(f.name)
		}
		obs.Standby, obs.BackupLabel, obs.NeedsReinit, obs.Led = d.standby, d.backupLabel, m.needsReinit, m.led
		if d.timeline > 1 {
			obs.TimelineBegan = d.switchAt // from its timeline's history file
		}
	}
	if obs.Cluster != nil && cl.Initialize != nil && !cl.Bootstrapping() {
		obs.Source = engine.ChooseSource(m.name, cl).Member.Name
	}
	return obs
}

// step is one step of m's agent: a new cycle (observe, Step) or, while it awaits an effect,
// Step with that effect's result; then the effects are carried out.
func (s *sim) step(m *simMember) {
	if m.refused || m.frozen {
		return
	}
	var effs []engine.Effect
	s.now = s.now.Add(100 * time.Millisecond)
	if m.result == nil {
		if m.store == nil || !m.store.Alive() {
			// The driver opens a new session when the last one was lost.
			m.store = s.mem.Open(m.name)
		}
		m.obs, m.obsDir = s.observe(m), m.dir
		m.st, effs = engine.Step(m.st, m.obs)
	} else {
		obs := m.obs
		obs.Result, m.result = m.result, nil
		m.st, effs = engine.Step(m.st, obs)
	}
	for i, e := range effs {
		if m.refused || m.store == nil {
			return // the agent died carrying out an effect
		}
		if i == len(effs)-1 && e.Awaited() {
			res := s.execute(m, e)
			if m.store != nil && !m.refused {
				m.result = &res
			}
			return
		}
		s.execute(m, e)
	}
	// A cycle that saw the history move past this directory's timeline leaves no primary
	// running here.
	if cl := m.obs.Cluster; cl != nil && m.obs.ReinitError == nil && m.pg == engine.PGPrimary && !m.handStarted && m.dir.kind == engine.DirCluster &&
		int(m.dir.timeline) < cl.History.Timeline() {
		s.fail("%s keeps a primary of timeline %d running after its cycle, though the history's newest is %d", m.name, m.dir.timeline, cl.History.Timeline())
	}
	// A cycle that saw another member lead (and still sees it) leaves no primary running here.
	if m.obs.Cluster != nil && m.obs.ReinitError == nil && m.pg == engine.PGPrimary && !m.bootstrapping {
		if l := m.obs.Cluster.Leader; l != "" && l != m.name && s.cluster().Leader == l {
			s.fail("%s keeps a primary running after its cycle while %s leads", m.name, l)
		}
	}
}

// kill ends m's agent: its session ends as its lease expires, and what it remembered is gone.
func (s *sim) kill(m *simMember) {
	if m.store != nil {
		m.store.Lose()
	}
	m.store, m.result, m.refused, m.frozen = nil, nil, false, false
	m.st = newState(m.name)
	m.bootstrapping = false
}

func (s *sim) stopPG(m *simMember) {
	m.handStarted = false
	if m.pg == engine.PGPrimary {
		// A clean stop writes the shutdown checkpoint, which the standbys streaming from it receive.
		ckpt := m.dir.end
		s.writeN(&m.dir, 0x100)
		m.dir.state, m.dir.checkpoint = pg.DBShutdowned, ckpt
		s.replicate()
	} else if m.pg == engine.PGStandby {
		m.dir.state = pg.DBShutdownedInRecovery
	}
	m.pg = engine.PGStopped
}

// wipe empties the data directory, which must be pgimaged's own leftover.
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

func (s *sim) holdsKey(m *simMember) bool {
	return s.cluster().Leader == m.name && s.mem.LeaderSession() == m.store && m.store != nil
}

// execute models one effect of m's agent and checks the invariants it touches.
func (s *sim) execute(m *simMember, e engine.Effect) engine.Result {
	ctx := context.Background()
	switch e := e.(type) {
	case engine.Log:
		if e.Level == "warn" || e.Level == "error" {
			s.event("%s logs: %s %v", m.name, e.Msg, e.Args)
		}
		return engine.Result{}
	case engine.Wait:
		return engine.Result{}
	case engine.Fail:
		if engine.IsFatal(e.Err) {
			s.event("%s stops: %v", m.name, e.Err)
			m.refused = true
			s.stopPG(m)
			_ = m.store.Close()
			m.store = nil
		}
		return engine.Result{}
	}
	s.seen[fmt.Sprintf("%T", e)]++
	s.event("%s: %s", m.name, describe(e))
	if res, ok := s.executeChange(m, e); ok {
		return res
	}
	if res, ok := s.executeStandby(m, e); ok {
		return res
	}
	switch e := e.(type) {
	case engine.TryInitialize:
		won, err := m.store.TryInitialize(ctx)
		return engine.Result{Won: won, Err: err}
	case engine.SetInitialize:
		return engine.Result{Err: m.store.SetInitialize(ctx, e.SysID)}
	case engine.ReadBackInitialize:
		for range 5 {
			if cl, err := m.store.Cluster(ctx); err == nil {
				return engine.Result{Written: cl.SystemIdentifier() == e.SysID, Known: true}
			}
		}
		return engine.Result{}
	case engine.ReleaseInitialize:
		for range 5 {
			err := m.store.ReleaseInitialize(ctx)
			if err == nil || errors.Is(err, dcs.ErrSessionLost) || errors.Is(err, dcs.ErrClosed) {
				return engine.Result{OK: true}
			}
		}
		return engine.Result{}
	case engine.AcquireLeader:
		held, err := m.store.AcquireLeader(ctx, m.name)
		return engine.Result{Held: held, Err: err}
	case engine.RunBootstrap:
		return s.bootstrap(m)
	case engine.RunChain:
		return s.clone(m, e)
	case engine.StartPG:
		if m.needsReinit {
			s.fail("%s starts a directory marked as needing reinit", m.name)
		}
		if m.dir.kind != engine.DirCluster {
			s.fail("%s starts a %s directory", m.name, m.dir.kind)
		}
		if e.Primary {
			if !m.store.Alive() {
				// The driver starts no primary once the session that took the key is gone.
				return engine.Result{Err: dcs.ErrSessionLost, Prepare: true}
			}
			if !s.holdsKey(m) {
				s.fail("%s starts a primary without holding the leader key (leader %q)", m.name, s.cluster().Leader)
			}
			m.pg, m.dir.state, m.dir.backupLabel = engine.PGPrimary, pg.DBInProduction, false
			m.handStarted = false
			s.write(&m.dir) // the end-of-recovery checkpoint
		} else {
			if !m.dir.standby {
				s.fail("%s starts a standby without standby settings", m.name)
			}
			m.pg = engine.PGStandby
		}
	case engine.StopPG:
		s.stopPG(m)
	case engine.WriteStandby:
		// PostgreSQL refuses to follow a timeline that forked before its recovery point (the
		// standby then streams nothing, see streamsFrom), but the engine must not point a
		// directory at a leader whose WAL it does not extend where what it observed tells:
		// a stopped directory's pg_control, or a running standby's WAL receiver.
		l := s.byName(e.Leader.Name)
		if l == nil || !s.prefixOf(m.dir, l.dir) && (!e.Reload || m.obs.WAL != nil && m.obs.WAL.Receiving && !s.prefixOf(m.obsDir, l.dir)) {
			s.fail("%s follows the leader with a directory that holds WAL the leader lacks", m.name)
		}
		m.dir.standby = true
		m.following = l.name
		if e.Reload && m.pg != engine.PGStandby {
			s.fail("%s re-points a PostgreSQL that does not run as a standby", m.name)
		}
	case engine.CleanLeftover:
		s.wipe(m, "clean")
	case engine.RemoveCluster:
		if !m.bootstrapping {
			s.fail("%s removes a cluster it did not just bootstrap", m.name)
		}
		s.wipe(m, "undo bootstrap")
		m.bootstrapping = false
	case engine.Mark:
		switch e.Kind {
		case engine.MarkLed:
			m.led = e.On
		case engine.MarkNeedsReinit:
			m.needsReinit = e.On
		case engine.MarkComplete:
			if m.dir.kind == engine.DirLeftover {
				m.dir.kind = engine.DirCluster
			}
			m.bootstrapping = false
		}
	case engine.Publish:
		mb := e.Member
		if mb.State == engine.StateRestarting {
			m.restartHeld = s.holdsKey(m)
		}
		mb.ConnURL = "postgres://" + addr(m.name) + "/postgres"
		if m.clonefrom {
			mb.Tags = map[string]any{"clonefrom": true}
		}
		if m.pg != engine.PGStopped && mb.State == dcs.StateRunning {
			mb.Timeline, mb.XLogLocation = int(m.dir.timeline), int64(m.dir.end)
			if mb.Role == dcs.RoleReplica && s.streams(m) {
				mb.PGImaged.Upstream = m.following
			}
		}
		_ = m.store.PutMember(ctx, mb)
	case engine.DeleteReinit:
		_ = m.store.Delete(ctx, engine.ReinitKey(m.name))
	case engine.EndRestart:
		// A restart is not a change of primary: the leader that began one keeps its key
		// through it, unless its session was lost meanwhile.
		if e.OK && m.restartHeld && m.store.Alive() && !s.holdsKey(m) {
			s.fail("%s lost the leader key through a restart of its PostgreSQL (leader %q)", m.name, s.cluster().Leader)
		}
		m.restartHeld = false
		out := e.Request
		out.Done, out.OK, out.Message = true, e.OK, e.Message
		if b, err := json.Marshal(out); err == nil {
			_ = m.store.Put(ctx, engine.RestartKey(m.name), b)
		}
	}
	return engine.Result{}
}

// describe is an effect for the printed schedule.
func describe(e engine.Effect) string {
	switch e := e.(type) {
	case engine.Publish:
		return fmt.Sprintf("publishes %s, %s (last error %q)", e.Member.State, e.Member.Role, e.Member.PGImaged.LastError)
	case engine.RunChain:
		reinit := ""
		if e.Reinit != nil {
			reinit = " for a reinit"
		}
		return fmt.Sprintf("runs the replica methods%s from %q (%s)", reinit, e.Plan.Source.Name, e.Plan.SourceWhy)
	case engine.Mark:
		return fmt.Sprintf("mark %s: %v", e.Kind, e.On)
	case engine.HandOver:
		return fmt.Sprintf("hands over: %s (phase %s)", e.Change.Describe(), e.Change.Phase)
	case engine.TakeOver:
		return fmt.Sprintf("takes over: %s (phase %s)", e.Change.Describe(), e.Change.Phase)
	case engine.AbortChange:
		return fmt.Sprintf("aborts the %s: %s", e.Change.Describe(), e.Reason)
	case engine.RunRejoin:
		return fmt.Sprintf("rejoins %s with %v (stop %v)", e.Leader.Name, e.Methods, e.Stop)
	case engine.WriteStandby:
		return fmt.Sprintf("writes standby settings toward %s (reload %v)", e.Leader.Name, e.Reload)
	}
	return strings.TrimPrefix(fmt.Sprintf("%T%+v", e, e), "engine.")
}

// bootstrap models the bootstrap method: it runs only while this session holds an empty
// initialize and no system identifier is published.
func (s *sim) bootstrap(m *simMember) engine.Result {
	if !m.store.Alive() {
		// The session that won initialize is gone: the driver does not start the method.
		return engine.Result{Err: dcs.ErrSessionLost}
	}
	cl := s.cluster()
	if cl.SystemIdentifier() != "" {
		s.fail("%s bootstraps over the published system identifier %s", m.name, cl.SystemIdentifier())
	}
	if m.dir.kind != engine.DirEmpty && m.dir.kind != engine.DirLeftover || m.dir.foreign {
		s.fail("%s bootstraps into a %s directory", m.name, m.dir.kind)
	}
	if s.mem.InitializeOwner() != m.name {
		s.fail("%s bootstraps without holding initialize", m.name)
	}
	outcome := rapid.SampledFrom([]string{"ok", "ok", "fails", "timeout", "crash"}).Draw(s.t, "bootstrap outcome")
	s.event("%s: the bootstrap method: %s", m.name, outcome)
	switch outcome {
	case "fails", "timeout":
		m.dir = simDir{} // the attempt removes what it made
		return engine.Result{Err: errors.New("initdb: " + outcome), Attempts: []dcs.Attempt{{Method: "initdb"}}}
	case "crash":
		// The agent dies mid-bootstrap (SIGKILL): its session ends, PostgreSQL may survive in
		// the half-made directory.
		s.nextSysid++
		m.dir = simDir{kind: engine.DirLeftover, sysid: s.nextSysid, timeline: 1, end: 0x1000000, state: pg.DBInProduction, branch: s.newBranch(-1, 0x1000000)}
		if rapid.Bool().Draw(s.t, "postgres survives") {
			m.pg = engine.PGPrimary
		}
		s.kill(m)
		return engine.Result{}
	}
	s.nextSysid++
	m.dir = simDir{kind: engine.DirLeftover, sysid: s.nextSysid, timeline: 1, end: 0x1000000, state: pg.DBInProduction, branch: s.newBranch(-1, 0x1000000)}
	m.pg = engine.PGPrimary // started while holding initialize
	m.bootstrapping = true
	return engine.Result{SysID: strconv.FormatUint(s.nextSysid, 10), Attempts: []dcs.Attempt{{Method: "initdb", OK: true}}}
}

// clone models the replica methods (and, for a reinit, the emptying before them).
func (s *sim) clone(m *simMember, e engine.RunChain) engine.Result {
	cl := s.cluster()
	if e.Reinit != nil {
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
	} else if m.dir.kind != engine.DirEmpty && m.dir.kind != engine.DirLeftover || m.dir.foreign {
		s.fail("%s clones into a %s directory", m.name, m.dir.kind)
	}
	if want := engine.ChooseSource(m.name, cl).Member.Name; e.Plan.Source.Name != "" && e.Plan.Source.Name != want && e.Reinit == nil {
		// The DCS may have changed since the cycle's observation; the rule is the same.
		s.event("%s: clones from %s, the source the cycle saw (now %q)", m.name, e.Plan.Source.Name, want)
	}
	keep := rapid.Bool().Draw(s.t, "keep_data")
	outcome := rapid.SampledFrom([]string{"ok", "ok", "fails", "timeout", "crash"}).Draw(s.t, "clone outcome")
	s.event("%s: the replica methods: %s (keep_data %v)", m.name, outcome, keep)
	switch outcome {
	case "fails", "timeout":
		if keep {
			// A keep_data method left a full copy behind: it stays marked as a leftover.
			m.dir = simDir{kind: engine.DirLeftover, state: pg.DBInProduction, backupLabel: true}
		} else {
			m.dir = simDir{}
		}
		return engine.Result{Err: fmt.Errorf("%w: basebackup: %s", engine.ErrAllMethodsFailed, outcome)}
	case "crash":
		m.dir = simDir{kind: engine.DirLeftover, state: pg.DBInProduction, backupLabel: true}
		s.kill(m)
		return engine.Result{}
	}
	// The copy is of the source's WAL history, or (no_master, or a source that does not run)
	// of the leader's as far as it was archived.
	src := s.byName(e.Plan.Source.Name)
	if src == nil || src.pg == engine.PGStopped || strconv.FormatUint(src.dir.sysid, 10) != cl.SystemIdentifier() {
		src = s.byName(cl.Leader)
		if src == nil || strconv.FormatUint(src.dir.sysid, 10) != cl.SystemIdentifier() {
			m.dir = simDir{}
			return engine.Result{Err: fmt.Errorf("%w: nothing to copy", engine.ErrAllMethodsFailed)}
		}
	}
	id, _ := strconv.ParseUint(cl.SystemIdentifier(), 10, 64)
	m.dir = simDir{kind: engine.DirCluster, sysid: id, timeline: src.dir.timeline, end: src.dir.end, branch: src.dir.branch, state: pg.DBInArchiveRecovery, standby: true,
		switchAt: src.dir.switchAt, seenTL: max(src.dir.timeline, src.dir.seenTL)}
	m.led = false
	m.following = src.name
	m.pg = engine.PGStandby
	return engine.Result{SysID: cl.SystemIdentifier(), Attempts: []dcs.Attempt{{Method: "basebackup", OK: true}}}
}

// check verifies the invariants that hold between steps.
func (s *sim) check() {
	cl := s.cluster()
	recorded := cl.SystemIdentifier()
	var primaries []string
	for _, m := range s.members {
		if m.pg != engine.PGPrimary {
			m.outlived = false
			continue
		}
		if m.dir.kind == engine.DirLeftover {
			// A half-made directory: a bootstrap in flight (holding initialize) or an orphan of
			// an agent that died, which its next cycle stops and removes.
			if m.store != nil && !m.bootstrapping && m.st.Pending == nil && s.mem.InitializeOwner() != m.name {
				s.fail("%s runs a primary in a half-made directory outside a bootstrap", m.name)
			}
			continue
		}
		if int(m.dir.timeline) < cl.History.Timeline() || m.outlived {
			// Superseded by a failover while its agent was down or cut off: what it accepts is
			// not the cluster's (no write it takes is acknowledged), and its agent fences it at
			// its next cycle (checked in sim.step). A failover is for a primary that is gone;
			// one asked while it still runs leaves it to that fence.
			continue
		}
		if strconv.FormatUint(m.dir.sysid, 10) == recorded && !m.handStarted {
			primaries = append(primaries, m.name)
		}
	}
	if len(primaries) > 1 {
		// Allowed only until the one without the key is fenced at its next cycle: a member can
		// hold a running primary of the cluster without the key only after its session was
		// lost; never because it started one.
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
		if m := s.byName(owner); m != nil && m.result == nil && m.st.Pending == nil && !m.st.MustRelease && !m.frozen {
			s.fail("initialize is left empty by %s, which is not bootstrapping", owner)
		}
	}
	for _, m := range s.members {
		if m.dir.foreign && m.dir.kind == engine.DirEmpty {
			s.fail("the foreign directory of %s was deleted", m.name)
		}
		if m.needsReinit && m.pg != engine.PGStopped && !m.handStarted {
			s.fail("%s runs PostgreSQL in a directory marked as needing reinit", m.name)
		}
	}
	s.checkChange()
}

func TestInvariantsUnderFaults(t *testing.T) {
	seen := map[string]int{}
	defer func() { t.Logf("effects carried out: %v", seen) }()
	rapid.Check(t, func(t *rapid.T) {
		s := &sim{t: t, mem: dcstest.NewMemory(), nextSysid: 7300000000000000000, seen: seen, cut: map[string]bool{},
			now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
		s.operator = s.mem.Open("operator")
		s.drawSync(t)
		n := rapid.IntRange(2, 5).Draw(t, "members")
		for i := range n {
			name := fmt.Sprintf("node%d", i+1)
			m := &simMember{name: name, st: newState(name), noMaster: rapid.Bool().Draw(t, "no_master")}
			m.clonefrom = rapid.IntRange(0, 3).Draw(t, "clonefrom") == 0
			if rapid.Bool().Draw(t, "rejoin_methods") {
				m.rejoinMethods = []string{"rewind"}
			}
			m.reimage = rapid.Bool().Draw(t, "reimage")
			s.members = append(s.members, m)
		}
		s.mem.Inject = func(op, member string) dcstest.Fault {
			if member == "operator" {
				return dcstest.FaultNone
			}
			if s.cut[member] {
				return dcstest.FaultUnavailable
			}
			if !s.flaky {
				return dcstest.FaultNone
			}
			return rapid.SampledFrom([]dcstest.Fault{dcstest.FaultNone, dcstest.FaultNone, dcstest.FaultNone, dcstest.FaultUnavailable, dcstest.FaultUncertain, dcstest.FaultSessionLost}).Draw(t, "fault "+op)
		}
		pick := func(what string) *simMember { return rapid.SampledFrom(s.members).Draw(t, what) }
		t.Repeat(s.withDCSFaults(pick, map[string]func(*rapid.T){
			"steps": func(t *rapid.T) {
				// Members take turns, the DCS checked after every step.
				for range rapid.IntRange(1, 30).Draw(t, "steps") {
					s.step(pick("member"))
					s.check()
				}
			},
			"every member's cycles": func(t *rapid.T) {
				// Every member completes its cycles in turn, standbys streaming between them: the
				// cluster comes up and settles as far as the faults let it.
				for range rapid.IntRange(1, 8).Draw(t, "rounds") {
					for _, m := range s.members {
						s.step(m)
						for i := 0; i < 10 && m.result != nil; i++ {
							s.step(m)
						}
						s.check()
					}
					s.replicate()
				}
			},
			"one member's steps": func(t *rapid.T) {
				m := pick("member")
				for range rapid.IntRange(1, 10).Draw(t, "steps") {
					s.step(m)
					s.check()
				}
			},
			"agent killed": func(t *rapid.T) {
				// PostgreSQL survives; the agent's session ends as its lease expires.
				m := pick("member")
				s.event("%s: the agent is killed", m.name)
				s.kill(m)
			},
			"machine crash": func(t *rapid.T) {
				m := pick("member")
				s.event("%s: the machine crashes", m.name)
				s.kill(m)
				m.pg = engine.PGStopped // a crash leaves pg_control as it was
			},
			"PostgreSQL crashes": func(t *rapid.T) {
				m := pick("member")
				s.event("%s: PostgreSQL crashes", m.name)
				m.pg = engine.PGStopped
			},
			"primary writes": func(t *rapid.T) {
				for _, m := range s.members {
					if m.pg == engine.PGPrimary {
						s.event("%s: the primary writes", m.name)
						s.write(&m.dir)
						if !s.commitWaits(m) {
							s.acknowledge(m)
						}
					}
				}
				s.replicateSome()
			},
			"operator asks for a reinit": func(t *rapid.T) {
				m := pick("member")
				methods := rapid.SampledFrom([][]string{nil, {"basebackup"}}).Draw(t, "methods")
				s.event("operator: reinit %s %v", m.name, methods)
				_ = engine.RequestReinit(context.Background(), s.operator, m.name, engine.ReinitRequest{Methods: methods, By: "operator"})
			},
			"operator asks for a restart": func(t *rapid.T) {
				m := pick("member")
				if l := s.byName(s.cluster().Leader); l != nil && rapid.Bool().Draw(t, "the leader") {
					m = l // the restart that must keep the leader key
				}
				req := engine.RestartRequest{By: "operator", At: s.now,
					Pending: rapid.Bool().Draw(t, "pending"), Role: rapid.SampledFrom([]string{"", dcs.RolePrimary, dcs.RoleReplica}).Draw(t, "role")}
				s.event("operator: restart %s (pending %v, role %q)", m.name, req.Pending, req.Role)
				_ = engine.RequestRestart(context.Background(), s.operator, m.name, req)
			},
			"operator places a copy": func(t *rapid.T) {
				// A copy of another member's directory without standby.signal (a base backup, or
				// a stopped copy), or a directory of another cluster, on a member whose agent is
				// down and whose directory is empty.
				m := pick("member")
				l := pick("copied member")
				if m.store != nil || m.dir.kind != engine.DirEmpty || l == m || l.dir.kind != engine.DirCluster || l.dir.foreign {
					return
				}
				kind := rapid.SampledFrom([]string{"base backup", "stopped copy", "standby without its signal", "foreign"}).Draw(t, "copy")
				switch kind {
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
				s.event("operator: places a %s of %s on %s", kind, l.name, m.name)
				m.needsReinit, m.led = false, false
			},
			"operator starts PostgreSQL by hand": func(t *rapid.T) {
				// pg_ctl start on a member whose agent is down: a primary unless the directory
				// has standby settings. Its agent must fence it if another member leads.
				m := pick("member")
				if m.store != nil || m.dir.kind != engine.DirCluster || m.pg != engine.PGStopped || m.dir.foreign {
					return
				}
				s.event("operator: starts PostgreSQL on %s by hand", m.name)
				if m.dir.standby {
					m.pg = engine.PGStandby
					return
				}
				m.pg = engine.PGPrimary
				m.dir.state, m.dir.backupLabel = pg.DBInProduction, false
				s.write(&m.dir)
				m.handStarted = true
			},
			"replicas catch up": func(t *rapid.T) {
				s.event("the standbys catch up with their upstreams")
				s.replicate()
			},
			"time passes": func(t *rapid.T) {
				d := time.Duration(rapid.IntRange(1, 60).Draw(t, "seconds")) * time.Second
				s.now = s.now.Add(d)
				s.event("%s pass", d)
			},
			"primary's agent keeps synchronous replication": func(t *rapid.T) {
				for _, m := range s.members {
					s.tendSync(m)
				}
			},
			"operator: switchover":           func(t *rapid.T) { s.switchover() },
			"operator: scheduled switchover": func(t *rapid.T) { s.scheduledSwitchover() },
			"operator: failover":             func(t *rapid.T) { s.failover() },
			"":                               func(t *rapid.T) { s.check() },
		}))
	})
}

// withDCSFaults adds to actions the faults every simulator draws between the agents' steps: a
// lease that expires, an agent frozen longer than its lease and resumed, a partition from the
// DCS, a DCS that injects faults.
func (s *sim) withDCSFaults(pick func(string) *simMember, actions map[string]func(*rapid.T)) map[string]func(*rapid.T) {
	for name, f := range map[string]func(*rapid.T){
		"lease expires": func(t *rapid.T) {
			if m := pick("member"); m.store != nil {
				s.event("%s: its session's lease expires", m.name)
				m.store.Lose()
			}
		},
		"frozen": func(t *rapid.T) {
			// The agent is paused (between two cycles) longer than its lease; resumed later.
			if m := pick("member"); m.store != nil && m.result == nil && !m.frozen {
				s.event("%s: frozen longer than its lease", m.name)
				m.frozen = true
				m.store.Lose()
			}
		},
		"resumed": func(t *rapid.T) {
			if m := pick("member"); m.frozen {
				s.event("%s: resumed", m.name)
				m.frozen = false
			}
		},
		"partition": func(t *rapid.T) {
			m := pick("member")
			s.cut[m.name] = !s.cut[m.name]
			s.event("%s: partitioned from the DCS: %v", m.name, s.cut[m.name])
		},
		"DCS flaky": func(t *rapid.T) {
			s.flaky = !s.flaky
			s.event("the DCS injects faults: %v", s.flaky)
		},
	} {
		actions[name] = f
	}
	return actions
}
