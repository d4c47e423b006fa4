package engine

import (
	"fmt"
	"strconv"
	"time"

	"github.com/pgimaged/pgimaged/core/dcs"
	"github.com/pgimaged/pgimaged/core/pg"
)

// DataDirState is what the data directory holds, as far as a decision is concerned.
type DataDirState int

const (
	// DirEmpty: the data directory is absent or has no entries.
	DirEmpty DataDirState = iota
	// DirLeftover: pgimaged's incomplete marker says an attempt of its own was filling the
	// directory and did not finish. It goes to the next attempt, never to adoption.
	DirLeftover
	// DirCluster: a complete cluster (PG_VERSION and pg_control) without the marker.
	DirCluster
	// DirForeign: not empty, not a cluster, and not marked as pgimaged's own leftover.
	DirForeign
)

func (s DataDirState) String() string {
	switch s {
	case DirEmpty:
		return "empty"
	case DirLeftover:
		return "leftover"
	case DirCluster:
		return "cluster"
	case DirForeign:
		return "foreign files"
	}
	return "unknown"
}

// PGState is whether this member's PostgreSQL runs, and as what.
type PGState int

const (
	// PGStopped: no postmaster runs in the data directory.
	PGStopped PGState = iota
	// PGPrimary: it runs and is not in recovery.
	PGPrimary
	// PGStandby: it runs in recovery.
	PGStandby
)

func (s PGState) String() string {
	switch s {
	case PGStopped:
		return "stopped"
	case PGPrimary:
		return "running as a primary"
	case PGStandby:
		return "running as a standby"
	}
	return "unknown"
}

// Observation is everything a decision depends on, gathered by the caller: the DCS, the data
// directory, PostgreSQL and the configuration. [Decide] reads nothing else.
type Observation struct {
	// Member is this member's name.
	Member string

	// Cluster is the DCS state; nil when it could not be read, with DCSError saying why.
	Cluster  *dcs.Cluster
	DCSError error

	// DataDir is what the data directory holds.
	DataDir DataDirState
	// KeepLeftover (DirLeftover only): what a failed method with keep_data left, kept for the
	// next attempt of the replica methods; it is never adopted, and only a clone reuses it.
	KeepLeftover bool
	// DirProblem (DirForeign only) says why the directory may not be filled.
	DirProblem string
	// Control is the cluster's pg_control (DirCluster only); ControlError when it cannot be
	// read (a damaged pg_control).
	Control      pg.ControlData
	ControlError error
	// Standby: standby.signal, or a recovery.conf with standby_mode on. The directory starts
	// as a standby.
	Standby bool
	// EndingRecovery: recovery.signal (or a recovery.conf without standby_mode) and no
	// standby.signal: the directory starts a recovery that ends in a promotion.
	EndingRecovery bool
	// BackupLabel: backup_label is present, so the directory was copied by a base backup and
	// has never been started since.
	BackupLabel bool
	// NeedsReinit: an earlier decision found this directory unable to follow the leader (it
	// was fenced, or its WAL went its own way); the mark stays beside the data directory until
	// an operator replaces the directory.
	NeedsReinit bool
	// Led: this member ran the directory as the cluster's primary while holding the leader
	// key, and has not been fenced since (a mark beside the data directory, which a copy of
	// the directory does not carry along).
	Led bool

	// PostgreSQL is whether this member's PostgreSQL runs, and as what.
	PostgreSQL PGState

	// ReinitRequested is an operator's pending request to re-clone this member (`pgimaged
	// reinit`, the API's POST /reinit), nil when there is none.
	ReinitRequested *ReinitRequest

	// ReinitError: the pending reinit request could not be read.
	ReinitError error

	// RestartRequested is an operator's pending request to restart PostgreSQL (`pgimaged
	// restart`, the API's POST /restart), nil when there is none. PendingRestart: PostgreSQL
	// reports a setting that needs a restart to apply (pg_settings.pending_restart).
	RestartRequested *RestartRequest
	PendingRestart   bool

	// NoMaster: at least one replica method can run without a source.
	NoMaster bool
	// Source is the member a clone would copy from ("" when none is running), as
	// [ChooseSource] picks it.
	Source string
	// Chain is the replica methods a clone would run now ([PlanChain]): from Source, with
	// the pending reinit's methods or the configured ones.
	Chain []ChainStep

	// Change is the pending change of primary (switchover, failover), nil when none; Now is
	// when the cycle began, against which its deadlines are read.
	Change *PendingChange
	Now    time.Time
	// WAL is where the running server's WAL stands; nil when PostgreSQL does not run or did
	// not answer.
	WAL *pg.Position
	// Following is the host:port a standby's primary_conninfo (as pgimaged wrote it) names,
	// "" for none.
	Following string
	// UpstreamPrimary is the host:port of the primary this standby's WAL comes from (the
	// server Following names, or up a chain of cascading standbys) when, asked during a
	// failover that names this member, it answered as a primary (not in recovery): the primary
	// the failover would replace still runs, only its agent is gone. "" when none answered
	// so, or it was not asked.
	UpstreamPrimary string
	// ReceiverFailure is the last failure of a running standby's WAL receiver that does not
	// stream, as PostgreSQL logged it since it last streamed; "" when it streams.
	ReceiverFailure string
	// ReplicateFrom is this member's replicatefrom tag: the member it streams from instead of
	// the leader.
	ReplicateFrom string
	// RejoinMethods are the rejoin methods (rejoin_methods) that can run; none: a directory
	// that cannot follow the leader needs a reinit. RejoinFailed: every one of them failed for
	// this directory. Reimage: rejoin = "reimage" lets the replica methods replace it then.
	RejoinMethods []string
	RejoinFailed  bool
	Reimage       bool
	// Paused: the cluster is in maintenance mode ([PauseKey]).
	Paused bool

	// SynchronousMode is synchronous_mode: a failover's candidate re-checks itself as
	// [InSynchronousMode] reads the cluster.
	SynchronousMode bool
	// MaxLag is maximum_lag_on_failover: the leader checks a scheduled switchover's candidate
	// against it when the time comes.
	MaxLag int64
	// StandbyCluster: the configuration has a standby_cluster block, so the cluster's leader
	// is a standby of the remote. FollowsRemote: the data directory's primary_conninfo names
	// the remote (none: a standby cluster that follows an archive alone, and a directory
	// without it).
	StandbyCluster bool
	FollowsRemote  bool
	// LeaderGone: no member has held the leader key for a ttl (as long as a leader key outlives
	// its agent on etcd; the file DCS drops it at once), so that a standby leader's agent that
	// restarts takes its key back first ([Step] measures it).
	LeaderGone bool
	// StandbyRecord is the DCS's record of the standby cluster's promotion ([StandbyKey]), nil
	// when there is none.
	StandbyRecord *StandbyRecord
	// TimelineBegan is where the data directory's timeline began, from the timeline's history
	// file in its pg_wal; 0 when unknown or on the first timeline. Read while the record says
	// the cluster follows a remote: it tells the remote's timeline from one of the same number
	// that the cluster's own promotion began elsewhere.
	TimelineBegan pg.LSN

	// Result is the outcome of the effect [Step] awaited; nil at the start of a cycle. The
	// rest of the observation is the cycle's.
	Result *Result
}

// ActionKind is what a decision tells the node to do; its value is the plan's path.
type ActionKind string

// The actions of [Decide].
const (
	// ActAdopt runs the cluster in the data directory as it is (see Action.Start).
	ActAdopt ActionKind = "adopt"
	// ActFence stops a PostgreSQL that runs as a primary while another member holds the leader
	// key, and reports it.
	ActFence ActionKind = "fence"
	// ActBootstrap races for initialize and bootstraps if this member wins.
	ActBootstrap ActionKind = "bootstrap"
	// ActClone makes this member a replica with the replica methods.
	ActClone ActionKind = "clone"
	// ActClean empties pgimaged's own half-made data directory (stopping a server that runs in
	// it first); the next decision starts afresh.
	ActClean ActionKind = "clean"
	// ActWait does nothing this cycle.
	ActWait ActionKind = "wait"
	// ActRefuse: the data directory is not this cluster's, or not pgimaged's; nothing is
	// touched and the node stops.
	ActRefuse ActionKind = "refuse"
	// ActReinit: the directory looks like a primary of this cluster while another member
	// leads and cannot safely follow it. It is left as it is, stopped, and published as
	// needing reinit; only an operator's reinit replaces it.
	ActReinit ActionKind = "reinit"
	// ActReclone carries out an operator's reinit request: stop PostgreSQL, empty the data
	// directory, clone again (see [ReinitRefusal] for when it is refused instead).
	ActReclone ActionKind = "reclone"
)

// StartMode is how an adopted cluster is brought up.
type StartMode int

const (
	// KeepRunning: PostgreSQL already runs in the right role.
	KeepRunning StartMode = iota
	// StartPrimary: start it as a primary (only with the leader key held).
	StartPrimary
	// StartStandby: start it as a standby (its standby settings are in place, or Rejoin
	// writes them).
	StartStandby
)

// Action is the decision for one cycle.
type Action struct {
	Kind   ActionKind
	Reason string
	// SystemIdentifier is the data directory's (adopt, refuse, reinit) or the DCS's (clone).
	SystemIdentifier string
	// State is what the member publishes while it carries the action out or waits.
	State string

	// For ActAdopt:
	Start StartMode
	// Primary: the member runs a primary and must hold the leader key; with StartPrimary the
	// key is taken before PostgreSQL starts and a member that cannot take it does not start.
	Primary bool
	// ClaimInitialize: the DCS has no initialize; record this directory's system identifier.
	ClaimInitialize bool
	// Rejoin: write standby settings that follow the leader before starting.
	Rejoin bool
	// StandbyLeader (ActBootstrap, ActAdopt): the member leads a standby cluster: it takes the
	// leader key but runs as a standby of the remote, never as a primary. With ActBootstrap
	// it clones from the remote instead of bootstrapping.
	StandbyLeader bool
	// FollowRemote (ActAdopt with StandbyLeader): the directory's standby settings follow a
	// member, not the remote; once the key is held they are rewritten to follow the remote.
	FollowRemote bool

	// For ActClean: a server runs in the half-made directory and is stopped first.
	Stop bool

	// ReinitRefused (any kind but ActReclone) says why a pending reinit request is refused;
	// the request is dropped and the reason reported.
	ReinitRefused string

	// Change is the pending change of primary that ActHandOver, ActTakeOver and
	// ActAbortChange carry on.
	Change *PendingChange
	// Leader is the member ActRepoint and ActRejoin follow.
	Leader *dcs.Member
}

// States a member publishes beyond Patroni's.
const (
	StateNeedsReinit      = "needs reinit"
	StateFenced           = "fenced"
	StateWaitingBootstrap = "waiting for bootstrap"
	StateWaitingSource    = "waiting for a clone source"
	StateWaitingLeader    = "waiting for the leader"
	StateWaitingDCS       = "waiting for the DCS"
	StateRefused          = dcs.StateFailed
	StateReinitializing   = "reinitializing"
)

const (
	reasonLeftover          = "pgimaged's own half-made data directory (an attempt that did not finish) is emptied; it is never adopted"
	reasonOtherPrimaryAlive = "another member publishes a running primary"
)

// Decide is the node's decision: what to do now given obs. It reads nothing but obs and has
// no effect; `pgimaged run` carries the action out and `pgimaged plan` prints it. The
// invariants it keeps are listed in docs/invariants.md.
func Decide(obs Observation) Action {
	if obs.Paused && obs.Cluster != nil {
		return decidePaused(obs)
	}
	if obs.ReinitRequested != nil {
		if why := ReinitRefusal(obs); why != "" {
			act := decide(obs)
			act.ReinitRefused = why
			return act
		}
		return Action{Kind: ActReclone, State: StateReinitializing, SystemIdentifier: obs.Cluster.SystemIdentifier(),
			Reason: "an operator asked for a reinit: PostgreSQL is stopped, the data directory emptied and a replica cloned again"}
	}
	if act, ok := decideStandbyPromote(obs); ok { // standby_promote.go
		return act
	}
	if act, ok := decideStandbyFollow(obs); ok { // standby_follow.go
		return act
	}
	if act, ok := standbyFollowDiverged(obs); ok { // standby_follow.go
		return act
	}
	if act, ok := decideChange(obs); ok {
		return act
	}
	return decide(obs)
}

func decide(obs Observation) Action {
	cl := obs.Cluster
	switch obs.DataDir {
	case DirLeftover:
		cloning := cl != nil && cl.Initialize != nil && !cl.Bootstrapping()
		if !obs.KeepLeftover || !cloning || obs.PostgreSQL != PGStopped {
			return Action{Kind: ActClean, Reason: reasonLeftover, Stop: obs.PostgreSQL != PGStopped, State: dcs.StateStarting}
		}
		// keep_data leftovers go to the next clone attempt, never to adoption.
	case DirForeign:
		reason := "the data directory holds files that are not a cluster and that pgimaged did not create: it is never emptied; move them away"
		if obs.DirProblem != "" {
			reason = obs.DirProblem
		}
		return Action{Kind: ActRefuse, State: StateRefused, Reason: reason}
	case DirCluster:
		return decideCluster(obs)
	}
	// An empty data directory (or keep_data leftovers for the next clone).
	switch {
	case cl == nil:
		return Action{Kind: ActWait, State: StateWaitingDCS,
			Reason: fmt.Sprintf("the DCS cannot be read (%v): the node waits; nothing is bootstrapped until it holds initialize", obs.DCSError)}
	case cl.Initialize == nil && obs.StandbyCluster:
		return standbyLeaderBootstrap()
	case cl.Initialize == nil:
		return Action{Kind: ActBootstrap, State: dcs.StateBootstrapping,
			Reason: "no initialize key: this node races for it and bootstraps if it wins"}
	case cl.Bootstrapping():
		return Action{Kind: ActWait, State: StateWaitingBootstrap,
			Reason: "another member holds initialize and is bootstrapping"}
	}
	if obs.Source == "" && !obs.NoMaster {
		return Action{Kind: ActWait, State: StateWaitingSource, SystemIdentifier: cl.SystemIdentifier(),
			Reason: "no running member to clone from and no replica method sets no_master"}
	}
	return Action{Kind: ActClone, State: dcs.StateCreatingReplica, SystemIdentifier: cl.SystemIdentifier(),
		Reason: "the cluster exists (initialize holds its system identifier): this node clones a replica"}
}

func decideCluster(obs Observation) Action {
	cl := obs.Cluster
	if obs.ControlError != nil {
		return Action{Kind: ActRefuse, State: StateRefused,
			Reason: fmt.Sprintf("the data directory holds a cluster whose pg_control cannot be read (%v): pgimaged will not start or touch it", obs.ControlError)}
	}
	own := strconv.FormatUint(obs.Control.SystemIdentifier, 10)
	act := Action{Kind: ActAdopt, SystemIdentifier: own}
	if cl == nil {
		act.Kind, act.State = ActWait, StateWaitingDCS
		act.Reason = fmt.Sprintf("the data directory holds a cluster, but the DCS cannot be read (%v): nothing is started or stopped until it can", obs.DCSError)
		return act
	}
	if id := cl.SystemIdentifier(); id != "" && id != own {
		act.Kind, act.State = ActRefuse, StateRefused
		act.Reason = fmt.Sprintf("the data directory holds system identifier %s but the DCS records %s: pgimaged will not touch it", own, id)
		return act
	}
	standby := obs.Standby && !obs.EndingRecovery
	leader := cl.Leader
	ours := leader == obs.Member
	otherLeads := leader != "" && !ours
	otherPrimary := otherRunningPrimary(cl, obs.Member)

	switch obs.PostgreSQL {
	case PGStandby:
		return decideStandby(obs, act)
	case PGPrimary:
		switch {
		case otherLeads:
			act.Kind, act.State = ActFence, StateFenced
			act.Reason = fmt.Sprintf("PostgreSQL runs as a primary here but member %s holds the leader key: it is stopped (fenced); two primaries must never run", leader)
			return act
		case ours:
			act.Start, act.Primary, act.State = KeepRunning, true, dcs.StateRunning
			act.Reason = "PostgreSQL runs as a primary here and the leader key names this member: it keeps running and the key is held by this session"
			return act
		case cl.Bootstrapping():
			act.Kind, act.State = ActWait, StateWaitingBootstrap
			act.Reason = "PostgreSQL runs as a primary here, no member leads and another member is bootstrapping: the leader key is not taken"
			return act
		case behindHistory(obs) != "":
			// Before a pending change: a superseded primary is stopped, whatever is pending.
			act.Kind, act.State = ActFence, StateFenced
			act.Reason = "PostgreSQL runs as a primary here and no member leads, but " + behindHistory(obs) + ": what it accepts is not the cluster's; it is stopped (fenced) and never takes the leader key again"
			return act
		case changeFor(obs) != "":
			act.Kind, act.State = ActWait, StateWaitingLeader
			act.Reason = fmt.Sprintf("PostgreSQL runs as a primary here and no member leads, but a change of primary to %s is pending: the leader key is not taken", changeFor(obs))
			return act
		case cl.Initialize != nil && !obs.Led:
			// Started by someone else while the cluster's primary may run elsewhere with its
			// agent down: taking the key could make this one win over the real primary.
			act.Kind, act.State = ActWait, dcs.StateRunning // published as what runs: a primary without the key
			act.Reason = "PostgreSQL runs as a primary here but this member never led with this directory and no member holds the leader key: the key is not taken (pgimaged failover --candidate gives it); it is fenced as soon as another member leads"
			return act
		}
		act.Start, act.Primary, act.State = KeepRunning, true, dcs.StateRunning
		act.ClaimInitialize = cl.Initialize == nil
		act.Reason = "PostgreSQL runs as a primary here and no member leads: this member takes the leader key"
		return act
	}

	// Stopped.
	if obs.NeedsReinit {
		if otherLeads {
			if a, ok := rejoinAction(obs, act, "the data directory was marked as needing reinit (fenced, or its WAL went its own way)"); ok {
				return a
			}
		}
		act.Kind, act.State = ActReinit, StateNeedsReinit
		act.Reason = "the data directory was marked as needing reinit (fenced, or its WAL went its own way): it is not started; replace it (pgimaged reinit, or move it away)"
		return act
	}
	if a, ok := standbyLeads(obs, act, standby); ok {
		return a
	}
	if standby {
		act.Start, act.State = StartStandby, dcs.StateStarting
		act.Reason = "the data directory holds a standby of this cluster; it is started as a standby"
		return act
	}
	switch {
	case ours:
		act.Start, act.Primary, act.State = StartPrimary, true, dcs.StateStarting
		act.Reason = "the data directory holds a primary and the leader key names this member: it is started as a primary"
		return act
	case otherLeads:
		return decideRejoin(obs, act)
	case cl.Bootstrapping():
		act.Kind, act.State = ActWait, StateWaitingBootstrap
		act.Reason = "the data directory holds a primary, but another member holds initialize and is bootstrapping: it is not started"
		return act
	case changeFor(obs) != "":
		act.Kind, act.State = ActWait, StateWaitingLeader
		act.Reason = fmt.Sprintf("the data directory holds a primary and no member leads, but a change of primary to %s is pending: it is not started", changeFor(obs))
		return act
	case behindHistory(obs) != "":
		act.Kind, act.State = ActWait, StateWaitingLeader
		act.Reason = "the data directory holds a primary and no member leads, but " + behindHistory(obs) + ": it is never started as the primary again; waiting for a leader to rejoin"
		return act
	case otherPrimary != "":
		act.Kind, act.State = ActWait, StateWaitingLeader
		act.Reason = fmt.Sprintf("the data directory holds a primary, no member holds the leader key and %s (%s): it is not started", reasonOtherPrimaryAlive, otherPrimary)
		return act
	case cl.Initialize != nil && !obs.Led:
		// The primary may run elsewhere with its agent down (its keys expired): only the
		// member that led with this directory restarts it as the primary without a leader.
		act.Kind, act.State = ActWait, StateWaitingLeader
		act.Reason = "the data directory holds a primary, no member holds the leader key and this member never led with this directory: it is not started; waiting for the leader"
		return act
	case obs.BackupLabel || obs.Control.HasPosition && obs.Control.State.InRecovery():
		// A base backup never started, or a standby without its standby.signal: a replica's
		// directory. pgimaged never promotes one; it follows a leader once there is one.
		act.Kind, act.State = ActWait, StateWaitingLeader
		act.Reason = "the data directory is a replica's (a base backup never started, or a standby without standby.signal) and no member leads: it is never started as a primary; waiting for a leader to follow"
		return act
	}
	act.Start, act.Primary, act.State = StartPrimary, true, dcs.StateStarting
	act.ClaimInitialize = cl.Initialize == nil
	act.Reason = "the data directory already holds a cluster and no member leads: this member takes the leader key, then starts it as a primary; it is never overwritten"
	return act
}

// decideRejoin handles a stopped primary-looking directory of this cluster while another member
// leads: it may follow the leader as a standby only when it holds nothing the leader lacks. Its
// files can show that only for a directory that last ran as a standby (so wrote no WAL of its
// own) on the leader's timeline and not past the leader's position; anything else — a
// directory that ran as a primary, a base backup of unknown origin, another timeline — needs a
// reinit. A directory that ran as a primary on the leader's timeline has a history that forked
// from the leader's at a point its files do not record, so it is never rejoined.
func decideRejoin(obs Observation, act Action) Action {
	cl := obs.Cluster
	leader := cl.Leader
	cd := obs.Control
	act.Kind, act.State = ActReinit, StateNeedsReinit
	lm, ok := cl.LeaderMember()
	if !ok || !lm.IsRunning() || lm.Timeline <= 0 || lm.XLogLocation <= 0 || lm.ConnURL == "" {
		act.Kind, act.State = ActWait, StateWaitingLeader
		act.Reason = fmt.Sprintf("the data directory looks like a primary but member %s leads: it is never started as a primary; waiting for the leader to publish its timeline and WAL position to tell whether it can follow", leader)
		return act
	}
	end := max(cd.Checkpoint, cd.Redo, cd.MinRecoveryPoint)
	if handedOver(obs) {
		act.Kind, act.Start, act.Rejoin, act.State = ActAdopt, StartStandby, true, dcs.StateStarting
		act.Reason = fmt.Sprintf("the data directory is this member's clean end of a switchover to %s (shutdown checkpoint %s, before the new timeline began): it follows the new primary as it is", leader, cd.Checkpoint)
		return act
	}
	diverged := func(why string) Action {
		if a, ok := rejoinAction(obs, act, why); ok {
			return a
		}
		act.Reason = why + ": it needs a reinit; it is left as it is"
		return act
	}
	switch {
	case cl.SystemIdentifier() == "":
		act.Kind, act.State = ActWait, StateWaitingLeader
		act.Reason = fmt.Sprintf("the data directory looks like a primary, member %s leads and the DCS records no system identifier yet: it is not started", leader)
	case !cd.HasPosition:
		act.Reason = fmt.Sprintf("the data directory looks like a primary, member %s leads, and its pg_control gives no WAL position pgimaged can read: it needs a reinit", leader)
	case obs.BackupLabel:
		// A base backup of some server of this cluster: which one, and whether that server's
		// WAL went its own way on the same timeline, its files cannot tell.
		act.Reason = fmt.Sprintf("the data directory is a base backup (backup_label) without standby settings while member %s leads: where it was copied from cannot be told, so it needs a reinit; it is left as it is", leader)
	case !cd.State.InRecovery():
		return diverged(fmt.Sprintf("the data directory ran as a primary (state %q) while member %s leads: its WAL may hold changes the leader lacks", cd.State, leader))
	case int64(cd.Timeline) < int64(lm.Timeline) && followsHistory(obs, end):
		act.Kind, act.Start, act.Rejoin, act.State = ActAdopt, StartStandby, true, dcs.StateStarting
		act.Reason = fmt.Sprintf("the data directory is a standby of timeline %d up to %s, before the point where the cluster's next timeline began: it follows the leader %s onto timeline %d", cd.Timeline, end, leader, lm.Timeline)
	case int64(cd.Timeline) != int64(lm.Timeline):
		return diverged(fmt.Sprintf("the data directory is on timeline %d, the leader %s on timeline %d", cd.Timeline, leader, lm.Timeline))
	case int64(end) > lm.XLogLocation:
		return diverged(fmt.Sprintf("the data directory's WAL reaches %s, past the leader %s's position %s", end, leader, pg.LSN(lm.XLogLocation)))
	default:
		act.Kind, act.Start, act.Rejoin, act.State = ActAdopt, StartStandby, true, dcs.StateStarting
		act.Reason = fmt.Sprintf("the data directory looks like a primary but member %s leads; it holds no WAL of its own (timeline %d, up to %s, leader at %s): it is started as a standby of the leader, never as a primary",
			leader, cd.Timeline, end, pg.LSN(lm.XLogLocation))
	}
	return act
}

// otherRunningPrimary names another member that publishes a running primary, "" when none.
func otherRunningPrimary(cl *dcs.Cluster, self string) string {
	for _, m := range cl.Members {
		if m.Name != self && m.IsRunning() && m.IsPrimary() {
			return m.Name
		}
	}
	return ""
}
