package engine

import (
	"time"

	"github.com/pgimaged/pgimaged/core/dcs"
)

// Effect is one thing [Step] asks its driver to do. Effects are plain values: `pgimaged run`
// carries them out ([Agent]), the simulator models them. An effect whose outcome the next
// decision depends on ([Effect.Awaited]) is the last of its batch; the driver feeds its
// outcome back to Step as [Observation.Result].
type Effect interface {
	// Awaited reports whether Step waits for this effect's [Result].
	Awaited() bool
}

// TryInitialize races for the empty initialize key. Result: Won, Err.
type TryInitialize struct{}

// SetInitialize records SysID in the initialize key this session holds. Result: Err.
type SetInitialize struct{ SysID string }

// ReadBackInitialize settles a write of SysID into initialize that failed with an error that
// may still have written it, by reading the key back (a bounded number of reads). Result:
// Written, Known.
type ReadBackInitialize struct{ SysID string }

// ReleaseInitialize gives up an empty initialize this session may hold (a bounded number of
// tries; a lost session has released it already). Result: OK.
type ReleaseInitialize struct{}

// AcquireLeader takes (or keeps) the leader key for this member's session. Result: Held, Err.
// Later decisions (a switchover, a failover) compare and swap it instead.
type AcquireLeader struct{}

// RunBootstrap runs the bootstrap method into the empty data directory while this session
// holds initialize; a lost session cancels it. Result: SysID, Attempts, Err.
type RunBootstrap struct{ Method string }

// RunChain fills the data directory with the replica methods of Plan and starts the replica.
// With Reinit, PostgreSQL is stopped and the data directory emptied first (an operator's
// request). Result: SysID, Attempts, Err.
type RunChain struct {
	Plan   ChainPlan
	Reinit *ReinitRequest
}

// ChainPlan is a clone as decided: where from, with which methods, into which cluster.
type ChainPlan struct {
	// Source is the member to copy from (see [ChooseSource]); Name "" for none.
	Source dcs.Member
	// SourceWhy says which rule chose it.
	SourceWhy string
	// Methods are the labels asked for (a reinit's); empty: the configured chain.
	Methods []string
	// Steps are the chain as [PlanChain] gives it for this source and these methods.
	Steps []ChainStep
	// SysID is the system identifier the replica must have (the DCS's).
	SysID string
}

// StartPG writes the settings for the role and starts the cluster in the data directory,
// waiting until it accepts connections. Result: Err (Prepare: it failed before starting).
type StartPG struct{ Primary bool }

// StopMode is how [StopPG] stops PostgreSQL.
type StopMode string

const (
	// StopFast: `pg_ctl stop -m fast`, then `-m immediate` if that fails.
	StopFast StopMode = "fast"
	// StopImmediate: `pg_ctl stop -m immediate`; its failure is not reported.
	StopImmediate StopMode = "immediate"
)

// StopPG stops the PostgreSQL that runs in the data directory. Result (StopFast): Err.
type StopPG struct{ Mode StopMode }

// WriteStandby writes standby settings that follow Leader before the directory starts.
// Re-pointing a running standby at a new leader will be the same effect. Result: Err.
type WriteStandby struct {
	Leader dcs.Member
	// Reload: PostgreSQL runs; its settings are kept but primary_conninfo (and its passfile),
	// and it is reloaded to apply them.
	Reload bool
}

// CleanLeftover empties pgimaged's own half-made data directory (the incomplete marker says
// so) and removes the marker. Result: Err.
type CleanLeftover struct{}

// RemoveCluster removes the cluster a bootstrap of this member just made (it could not be
// recorded in initialize) and its incomplete marker.
type RemoveCluster struct{}

// MarkKind names a mark beside the data directory.
type MarkKind string

// The marks of [Mark].
const (
	// MarkLed: this member ran the directory as the cluster's primary with the leader key.
	MarkLed MarkKind = "led"
	// MarkNeedsReinit: the directory may not be started; Reason says why.
	MarkNeedsReinit MarkKind = "needs reinit"
	// MarkComplete: the directory is complete; its incomplete marker goes.
	MarkComplete MarkKind = "complete"
)

// Mark sets (On) or removes a mark beside the data directory.
type Mark struct {
	Kind   MarkKind
	On     bool
	Reason string
}

// Publish writes the member key. Member holds what Step decides (state, role, last error,
// system identifier, attempts); the driver adds what it measures (conn_url, tags, WAL position,
// upstream, progress). EndPath: a bootstrap or clone just ended; its critical path is
// published with it.
type Publish struct {
	Member  dcs.Member
	EndPath bool
}

// DeleteReinit removes this member's reinit request from the DCS.
type DeleteReinit struct{}

// Log is a line for the agent's log.
type Log struct {
	Level string // "debug", "info", "warn" or "error"
	Msg   string
	Args  []any
}

// Wait ends the cycle: the next begins after D, or when the DCS changes in a way that matters.
type Wait struct{ D time.Duration }

// Fail ends the cycle with Err: the driver reopens a lost session, waits shortly for an
// unavailable DCS, stops on a refusal ([IsFatal]) and otherwise logs it and waits D.
type Fail struct {
	Err error
	D   time.Duration
}

func (TryInitialize) Awaited() bool      { return true }
func (SetInitialize) Awaited() bool      { return true }
func (ReadBackInitialize) Awaited() bool { return true }
func (ReleaseInitialize) Awaited() bool  { return true }
func (AcquireLeader) Awaited() bool      { return true }
func (RunBootstrap) Awaited() bool       { return true }
func (RunChain) Awaited() bool           { return true }
func (StartPG) Awaited() bool            { return true }
func (s StopPG) Awaited() bool           { return s.Mode == StopFast }
func (WriteStandby) Awaited() bool       { return true }
func (CleanLeftover) Awaited() bool      { return true }
func (RemoveCluster) Awaited() bool      { return false }
func (Mark) Awaited() bool               { return false }
func (Publish) Awaited() bool            { return false }
func (DeleteReinit) Awaited() bool       { return false }
func (Log) Awaited() bool                { return false }
func (Wait) Awaited() bool               { return false }
func (Fail) Awaited() bool               { return false }

// Result is the outcome of an awaited effect, fed back to [Step].
type Result struct {
	Err error
	// Won (TryInitialize), Held (AcquireLeader), Written and Known (ReadBackInitialize), OK
	// (ReleaseInitialize).
	Won, Held, Written, Known, OK bool
	// Prepare (StartPG): the failure came before PostgreSQL was started (its settings).
	Prepare bool
	// Canceled: the agent is shutting down; the effect was cut short.
	Canceled bool
	// SysID is the system identifier of the cluster a bootstrap or clone made.
	SysID string
	// Attempts are the method attempts a bootstrap or clone made, in order.
	Attempts []dcs.Attempt
}
