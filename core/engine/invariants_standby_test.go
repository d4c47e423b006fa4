package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/pgimaged/pgimaged/core/config"
	"github.com/pgimaged/pgimaged/core/dcs"
	"github.com/pgimaged/pgimaged/core/dcs/dcstest"
	"github.com/pgimaged/pgimaged/core/engine"
	"github.com/pgimaged/pgimaged/core/pg"
)

// The simulator's model of a standby cluster (standby_leader.go): its members' configuration
// holds a standby_cluster block naming a remote primary, which runs outside the cluster and
// writes WAL, on a timeline that moves when the remote changes primary. The member that wins
// initialize copies the remote (CloneRemote) and leads as standby_leader; the others clone from
// it; when no member has led for a ttl, a standby takes the key and follows the remote itself
// (FollowRemote); an operator may promote it (PromoteStandby). Checked beyond the invariants of
// every cluster: no member of a standby cluster bootstraps, none runs a primary but the one an
// operator asked to promote, at most one publishes standby_leader, and once the faults end the
// standby leader follows the remote.

// observeStandby is what Node.observeStandby and Agent.observeStandbyRecord add for m.
func (s *sim) observeStandby(m *simMember, obs *engine.Observation) {
	obs.StandbyCluster, obs.FollowsRemote = true, m.dir.kind == engine.DirCluster && m.following == s.remote.name
	if m.store == nil || obs.Cluster == nil {
		return
	}
	rec, err := engine.ReadStandby(context.Background(), m.store)
	if err != nil {
		obs.Cluster, obs.DCSError = nil, err
		return
	}
	obs.StandbyRecord = rec
	if rec != nil && rec.Phase == engine.StandbyPromoted {
		obs.StandbyCluster, obs.FollowsRemote = false, false
	}
}

// promoted is the DCS's record of the promotion once it is done, nil before.
func (s *sim) promoted() *engine.StandbyRecord {
	if rec := s.promotion(); rec != nil && rec.Phase == engine.StandbyPromoted {
		return rec
	}
	return nil
}

// followAsked reports whether `standby follow` was asked of the promoted cluster and its
// primary has not yet become the standby leader.
func (s *sim) followAsked() bool {
	rec := s.promotion()
	return rec != nil && rec.Phase == engine.StandbyFollowAsked
}

// promotion is the DCS's record of a promotion asked or done, nil when there is none.
func (s *sim) promotion() *engine.StandbyRecord {
	rec, err := engine.ReadStandby(context.Background(), s.operator)
	if err != nil {
		return nil
	}
	return rec
}

// promoteStandby models Agent.promoteStandby: with the leader key held, the standby leader ends
// recovery on a new timeline, the switch goes into the history and the record says promoted.
func (s *sim) promoteStandby(m *simMember, e engine.PromoteStandby) engine.Result {
	ctx := context.Background()
	held, err := m.store.AcquireLeader(ctx, m.name)
	if err != nil || !held {
		return engine.Result{Err: errors.Join(err, errors.New("not promoted: the leader key is held by another member"))}
	}
	if m.pg != engine.PGPrimary {
		s.promote(m)
	}
	h, err := m.store.History(ctx)
	if err != nil {
		return engine.Result{Err: err}
	}
	if h.Timeline() < int(m.dir.timeline) {
		if err := m.store.AppendTimelineSwitch(ctx, h, dcs.TimelineSwitch{Timeline: int(m.dir.timeline), LSN: uint64(m.dir.switchAt), NewLeader: m.name}); err != nil {
			return engine.Result{Err: err}
		}
	}
	rec, err := engine.ReadStandby(ctx, m.store)
	if err != nil || rec == nil || rec.Phase != engine.StandbyPromoting {
		return engine.Result{Err: errors.Join(err, errors.New("the record changed"))}
	}
	next := *rec
	next.Phase, next.Timeline = engine.StandbyPromoted, int(m.dir.timeline)
	b, _ := json.Marshal(next)
	old, _, _ := m.store.Get(ctx, engine.StandbyKey)
	if ok, err := m.store.CompareAndSwap(ctx, engine.StandbyKey, old, b); err != nil || !ok {
		return engine.Result{Err: errors.Join(err, errors.New("the record changed"))}
	}
	s.event("%s: promoted the standby cluster on timeline %d", m.name, m.dir.timeline)
	return engine.Result{}
}

// executeStandby models the effects of a standby cluster's members; false: e is not one.
func (s *sim) executeStandby(m *simMember, e engine.Effect) (engine.Result, bool) {
	if s.remote == nil {
		if _, ok := e.(engine.CloneRemote); ok {
			s.fail("%s copies a remote in a cluster without standby_cluster", m.name)
		}
		return engine.Result{}, false
	}
	switch e := e.(type) {
	case engine.RunBootstrap:
		s.fail("%s bootstraps a new cluster in a standby cluster", m.name)
	case engine.StartPG:
		if rec := s.promotion(); e.Primary && (rec == nil || rec.Leader != m.name) {
			s.fail("%s starts a primary in a standby cluster (promoted: %v)", m.name, rec)
		}
		return engine.Result{}, false
	case engine.PromoteStandby:
		return s.promoteStandby(m, e), true
	case engine.FollowStandby:
		return s.followStandby(m, e), true
	case engine.CloneRemote:
		return s.cloneRemote(m), true
	case engine.FollowRemote:
		switch {
		case e.Reload && m.pg == engine.PGPrimary:
			s.fail("%s re-points a primary at the remote", m.name)
		case e.Reload && m.pg == engine.PGStopped:
			// PostgreSQL stopped since the cycle's observation: the reload fails.
			return engine.Result{Err: errors.New("pg_ctl reload: PostgreSQL does not run")}, true
		}
		if !s.prefixOf(m.dir, s.remote.dir) {
			s.fail("%s follows the remote with WAL the remote lacks", m.name)
		}
		m.dir.standby, m.following = true, s.remote.name
		return engine.Result{}, true
	case engine.WriteStandby:
		// Every member's WAL is the remote's: a standby ahead of its new upstream waits for it.
		l := s.byName(e.Leader.Name)
		switch {
		case l == nil:
			s.fail("%s follows %s, which does not exist", m.name, e.Leader.Name)
		case !s.prefixOf(m.dir, l.dir) && !s.prefixOf(l.dir, m.dir) && s.promoted() == nil && !s.followAsked() && !s.followedAgain():
			s.fail("%s follows %s, whose WAL went another way", m.name, e.Leader.Name)
		case !s.prefixOf(m.dir, l.dir) && !s.prefixOf(l.dir, m.dir):
			// Received from the remote past the point where the promotion began (also while
			// `standby follow` is asked and the primary still runs on its own WAL; or, after
			// a follow, written past the remote's fork): the rejoin's to handle, as after any
			// promotion.
			s.event("%s: follows %s with WAL past the promotion", m.name, l.name)
		}
		if e.Reload && m.pg != engine.PGStandby {
			s.fail("%s re-points a PostgreSQL that does not run as a standby", m.name)
		}
		m.dir.standby, m.following = true, l.name
		return engine.Result{}, true
	}
	return engine.Result{}, false
}

// followStandby models Agent.followStandby after a promotion of the standby cluster: with the
// leader key held, the primary is stopped and rewound onto the remote's WAL (or the rewind
// fails and the directory is left marked), started as a standby of the remote, and the record
// says following.
func (s *sim) followStandby(m *simMember, e engine.FollowStandby) engine.Result {
	ctx := context.Background()
	held, err := m.store.AcquireLeader(ctx, m.name)
	if err != nil || !held {
		return engine.Result{Err: errors.Join(err, errors.New("the leader key is held by another member"))}
	}
	if m.dir.kind != engine.DirCluster || m.dir.foreign || m.dir.sysid != s.remote.dir.sysid {
		s.fail("%s follows the remote with a %s directory (sysid %d)", m.name, m.dir.kind, m.dir.sysid)
	}
	// The cluster's own history, read before anything is stopped, as Agent.followStandby
	// does: unread, nothing tells where its WAL and the remote's went apart.
	h, err := m.store.History(ctx)
	if err != nil {
		return engine.Result{Err: err}
	}
	s.stopPG(m)
	m.pg = engine.PGStopped
	m.needsReinit = true
	if rapid.SampledFrom([]string{"ok", "ok", "fails"}).Draw(s.t, "rewind toward the remote") == "fails" {
		s.event("%s: the rewind toward the remote fails", m.name)
		return engine.Result{Err: errors.New("pg_rewind: fails"), Attempts: []dcs.Attempt{{Method: "rewind"}}}
	}
	d := s.remote.dir
	d.kind, d.standby, d.state, d.checkpoint = engine.DirCluster, true, pg.DBInArchiveRecovery, 0
	m.dir, m.pg, m.following, m.needsReinit, m.led = d, engine.PGStandby, s.remote.name, false, false
	s.followed = true // from now on the cluster's timelines are the remote's
	rec, err := engine.ReadStandby(ctx, m.store)
	if err != nil || rec == nil || rec.Phase != engine.StandbyFollowAsked {
		return engine.Result{Err: errors.Join(err, errors.New("the record changed"))}
	}
	next := *rec
	starts := map[int]uint64{} // the remote's switches the cluster's history may share: none here
	next.Phase, next.Timeline = engine.StandbyFollowing, int(d.timeline)
	next.SwitchLSN = engine.ForkPoint(h, dcs.TimelineSwitch{Timeline: int(d.timeline), LSN: uint64(d.switchAt)}, starts)
	if d.timeline > 1 {
		next.TimelineBegan = uint64(d.switchAt)
	}
	b, _ := json.Marshal(next)
	old, _, _ := m.store.Get(ctx, engine.StandbyKey)
	if ok, err := m.store.CompareAndSwap(ctx, engine.StandbyKey, old, b); err != nil || !ok {
		return engine.Result{Err: errors.Join(err, errors.New("the record changed"))}
	}
	s.event("%s: rewound toward the remote; the cluster follows it again", m.name)
	return engine.Result{Attempts: []dcs.Attempt{{Method: "rewind", OK: true}}}
}

// followsRemoteAgain reports whether m holds the leader key as the standby leader of a cluster
// that `standby follow` made a standby cluster again: its timelines are the remote's from then
// on, which may be older than those the cluster's own promotion recorded in its history.
func (s *sim) followsRemoteAgain(m *simMember) bool {
	return s.followedAgain() && m.pg != engine.PGPrimary
}

// followedAgain reports whether `standby follow` made the cluster, promoted before, a standby
// cluster of the remote again.
func (s *sim) followedAgain() bool { return s.remote != nil && s.followed }

// cloneRemote models the standby_cluster block's methods copying the remote, while this session
// holds an empty initialize.
func (s *sim) cloneRemote(m *simMember) engine.Result {
	if !m.store.Alive() {
		return engine.Result{Err: dcs.ErrSessionLost}
	}
	if s.mem.InitializeOwner() != m.name {
		s.fail("%s copies the remote without holding initialize", m.name)
	}
	if m.dir.kind != engine.DirEmpty && m.dir.kind != engine.DirLeftover || m.dir.foreign {
		s.fail("%s copies the remote into a %s directory", m.name, m.dir.kind)
	}
	outcome := rapid.SampledFrom([]string{"ok", "ok", "fails", "crash"}).Draw(s.t, "copy of the remote")
	s.event("%s: the copy of the remote: %s", m.name, outcome)
	copyOf := s.remote.dir
	copyOf.kind, copyOf.standby, copyOf.state = engine.DirLeftover, true, pg.DBInArchiveRecovery
	switch outcome {
	case "fails":
		m.dir = simDir{}
		return engine.Result{Err: fmt.Errorf("%w: basebackup: fails", engine.ErrAllMethodsFailed)}
	case "crash":
		m.dir = copyOf
		s.kill(m)
		return engine.Result{}
	}
	m.dir, m.pg, m.following, m.bootstrapping = copyOf, engine.PGStandby, s.remote.name, true
	return engine.Result{SysID: strconv.FormatUint(copyOf.sysid, 10), Attempts: []dcs.Attempt{{Method: "basebackup", OK: true}}}
}

// checkStandby verifies the invariants of a standby cluster between steps.
func (s *sim) checkStandby() {
	cl := s.cluster()
	// A primary runs only on the member an operator asked to promote: from its promotion on
	// (the record says promoted once it is recorded, a step later).
	rec := s.promotion()
	for _, m := range s.members {
		if m.pg == engine.PGPrimary && (rec == nil || rec.Leader != m.name) {
			s.fail("%s runs a primary in a standby cluster (promotion: %v)", m.name, rec)
		}
	}
	var leaders []string
	for _, mb := range cl.Members {
		if mb.Role == dcs.RoleStandbyLeader {
			leaders = append(leaders, mb.Name)
		}
	}
	if len(leaders) > 1 {
		s.fail("members %v publish standby_leader; the leader key names %q", leaders, cl.Leader)
	}
	if id := cl.SystemIdentifier(); id != "" && id != strconv.FormatUint(s.remote.dir.sysid, 10) {
		s.fail("initialize holds %s, not the remote's system identifier %d", id, s.remote.dir.sysid)
	}
}

func TestStandbyClusterInvariantsUnderFaults(t *testing.T) {
	seen := map[string]int{}
	defer func() { t.Logf("effects carried out: %v", seen) }()
	rapid.Check(t, func(t *rapid.T) {
		s := &sim{t: t, mem: dcstest.NewMemory(), nextSysid: 7300000000000000000, seen: seen, cut: map[string]bool{},
			now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
		s.operator = s.mem.Open("operator")
		s.remote = &simMember{name: "remote", pg: engine.PGPrimary,
			dir: simDir{kind: engine.DirCluster, sysid: 7100000000000000001, timeline: 1, end: 0x3000000, state: pg.DBInProduction, branch: s.newBranch(-1, 0x3000000)}}
		n := rapid.IntRange(2, 4).Draw(t, "members")
		for i := range n {
			name := fmt.Sprintf("node%d", i+1)
			m := &simMember{name: name, st: newState(name)}
			m.clonefrom = rapid.IntRange(0, 3).Draw(t, "clonefrom") == 0
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
		check := func() { s.check(); s.checkStandby() }
		// round lets every member complete its cycle in turn, then the standbys catch up.
		round := func() {
			for _, m := range s.members {
				s.step(m)
				for i := 0; i < 10 && m.result != nil; i++ {
					s.step(m)
				}
				check()
			}
			s.replicate()
		}
		pick := func(what string) *simMember { return rapid.SampledFrom(s.members).Draw(t, what) }
		t.Repeat(s.withDCSFaults(pick, map[string]func(*rapid.T){
			"steps": func(t *rapid.T) {
				for range rapid.IntRange(1, 30).Draw(t, "steps") {
					s.step(pick("member"))
					check()
				}
			},
			"every member's cycles": func(t *rapid.T) {
				for range rapid.IntRange(1, 8).Draw(t, "rounds") {
					round()
				}
			},
			"agent killed": func(t *rapid.T) {
				m := pick("member")
				s.event("%s: the agent is killed", m.name)
				s.kill(m)
			},
			"machine crash": func(t *rapid.T) {
				m := pick("member")
				s.event("%s: the machine crashes", m.name)
				s.kill(m)
				m.pg = engine.PGStopped
			},
			"PostgreSQL crashes": func(t *rapid.T) {
				m := pick("member")
				s.event("%s: PostgreSQL crashes", m.name)
				s.stopPG(m)
			},
			"the remote writes": func(t *rapid.T) {
				s.write(&s.remote.dir)
				s.replicateSome()
			},
			"the remote changes primary": func(t *rapid.T) {
				// A switchover there: the WAL goes on, on the next timeline. Never one a promotion
				// of the standby cluster made: two timelines of one number on two lines of WAL are
				// what neither PostgreSQL nor pg_rewind can tell apart.
				s.remote.dir.timeline++
				for _, m := range s.members {
					s.remote.dir.timeline = max(s.remote.dir.timeline, m.dir.seenTL+1, m.dir.timeline+1)
				}
				s.remote.dir.switchAt = s.remote.dir.end
				s.write(&s.remote.dir)
				s.event("the remote changes primary: timeline %d", s.remote.dir.timeline)
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
			"operator: standby promote": func(t *rapid.T) {
				_, err := engine.RequestStandbyPromote(context.Background(), s.operator, s.cluster(), "operator")
				s.event("operator: standby promote (%v)", err)
			},
			"operator: standby follow": func(t *rapid.T) {
				_, err := engine.RequestStandbyFollow(context.Background(), s.operator, s.cluster(), &config.StandbyCluster{Host: "remote"}, "operator")
				s.event("operator: standby follow (%v)", err)
			},
			"": func(t *rapid.T) { check() },
		}))
		// Settled: faults over, every agent running, time past the ttl: exactly one standby
		// leader, and it follows the remote.
		s.flaky, s.cut = false, map[string]bool{}
		for _, m := range s.members {
			m.frozen = false
			if m.store != nil && !m.store.Alive() {
				m.store = nil
			}
		}
		for range 6 {
			s.now = s.now.Add(5 * time.Second)
			round()
		}
		cl := s.cluster()
		if l := s.byName(cl.Leader); s.promoted() == nil && cl.SystemIdentifier() != "" && l != nil && l.dir.kind == engine.DirCluster && l.following != s.remote.name {
			s.fail("the standby leader %s follows %q, not the remote", l.name, l.following)
		}
	})
}
