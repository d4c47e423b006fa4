package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/pgimaged/pgimaged/core/dcs"
	"github.com/pgimaged/pgimaged/core/pg"
)

// Promotion of a standby cluster's site (`pgimaged standby promote`, the API's POST
// /standby/promote): the operator's request is recorded under [StandbyKey] as promoting, by an
// atomic create; the standby leader's agent ends its recovery, keeps the leader key as the
// primary, records the timeline switch in the cluster history and marks the record promoted.
// From then on the DCS, not the configuration, says the cluster is no longer a standby
// cluster: a member whose configuration still holds a standby_cluster block ignores it, says
// so, and follows the new primary like any replica.

// StandbyKey is where the DCS records that a standby cluster was asked to be, or was, promoted.
const StandbyKey = dcs.KeyPrefix + "standby_cluster"

// StandbyPhase is how far a promotion has come.
type StandbyPhase string

// The phases of [StandbyRecord].
const (
	StandbyPromoting StandbyPhase = "promoting"
	StandbyPromoted  StandbyPhase = "promoted"
)

// StandbyRecord is the promotion of the standby cluster as kept under [StandbyKey].
type StandbyRecord struct {
	Phase StandbyPhase `json:"phase"`
	// Leader is the standby leader asked to promote.
	Leader string    `json:"leader"`
	By     string    `json:"by,omitempty"`
	At     time.Time `json:"at"`
	// Timeline and PromotedAt (promoted): the timeline the new primary began and when.
	Timeline   int       `json:"timeline,omitempty"`
	PromotedAt time.Time `json:"promoted_at,omitzero"`
	// Remote is the standby_cluster block in force, which the DCS decides on (standby_follow.go);
	// nil in a record without one.
	Remote *RemoteBlock `json:"standby_cluster,omitempty"`
	// FromFile: Remote is the standby_cluster block of the standby leader's configuration,
	// recorded when it was made; a member's own block then wins over it, and it serves the
	// members without one. Without FromFile (`standby follow`) the record's block wins.
	FromFile bool `json:"from_file,omitempty"`
	// SwitchLSN and FollowedAt (following, after `standby follow`): where the cluster's WAL and
	// the remote's (on Timeline) went apart ([ForkPoint]), and when the cluster began to follow
	// it.
	SwitchLSN  uint64    `json:"switch_lsn,omitempty"`
	FollowedAt time.Time `json:"followed_at,omitzero"`
	// TimelineBegan (following): where the remote's timeline Timeline began (0 on its
	// first). Promoted before, the cluster may have begun a timeline of the same number
	// elsewhere: a directory on that one holds WAL the remote never had.
	TimelineBegan uint64 `json:"timeline_lsn,omitempty"`
	raw           []byte
}

// Describe says what the record says, for messages.
func (r *StandbyRecord) Describe() string {
	switch r.Phase {
	case StandbyPromoted:
		return fmt.Sprintf("the standby cluster was promoted: %s became its primary on timeline %d at %s", r.Leader, r.Timeline, r.PromotedAt.Format(time.RFC3339))
	case StandbyFollowAsked:
		return fmt.Sprintf("%s asked at %s that the cluster follow %s as a standby cluster, its primary %s becoming the standby leader", r.By, r.At.Format(time.RFC3339), r.Remote.Describe(), r.Leader)
	case StandbyFollowing:
		if !r.FollowedAt.IsZero() {
			return fmt.Sprintf("the cluster is a standby cluster of %s since %s (standby follow asked by %s; the remote's timeline %d)", r.Remote.Describe(), r.FollowedAt.Format(time.RFC3339), r.By, r.Timeline)
		}
		return fmt.Sprintf("the cluster is a standby cluster of %s (recorded by %s at %s)", r.Remote.Describe(), r.By, r.At.Format(time.RFC3339))
	}
	return fmt.Sprintf("the promotion of the standby cluster (standby leader %s) was asked by %s at %s", r.Leader, r.By, r.At.Format(time.RFC3339))
}

// ReadStandby reads the promotion record; nil when the cluster was never asked to promote.
func ReadStandby(ctx context.Context, st dcs.Store) (*StandbyRecord, error) {
	b, ok, err := st.Get(ctx, StandbyKey)
	if err != nil || !ok {
		return nil, err
	}
	var r StandbyRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("the standby cluster's record (%s) cannot be read: %w", StandbyKey, err)
	}
	r.raw = b
	return &r, nil
}

// ErrNotStandbyCluster: the cluster has no standby leader to promote.
var ErrNotStandbyCluster = errors.New("no standby leader to promote")

// RequestStandbyPromote records the promotion of the cluster's standby leader, which cl must
// show running as standby_leader with the leader key. Of two requests one is recorded; a
// cluster promoted already, or asked already, is refused with [ErrChangePending].
func RequestStandbyPromote(ctx context.Context, st dcs.Store, cl dcs.Cluster, by string) (StandbyRecord, error) {
	lm, ok := cl.LeaderMember()
	if !ok || lm.Role != dcs.RoleStandbyLeader {
		return StandbyRecord{}, fmt.Errorf("%w: the leader key names %q, which does not run as standby_leader", ErrNotStandbyCluster, cl.Leader)
	}
	if !lm.IsRunning() {
		return StandbyRecord{}, fmt.Errorf("%w: the standby leader %s is %s, not running", ErrNotStandbyCluster, lm.Name, lm.State)
	}
	// A promotion asked of a member that no longer leads (its agent died mid-way, another
	// standby took the key) gives way to this one; any other record stands.
	cur, err := standbyRecordUnlessChange(ctx, st)
	if err != nil {
		return StandbyRecord{}, err
	}
	var old []byte
	var remote *RemoteBlock
	var fromFile bool
	if cur != nil {
		if cur.Phase == StandbyPromoted || cur.Phase == StandbyFollowAsked || cur.Phase == StandbyPromoting && cur.Leader == lm.Name {
			return StandbyRecord{}, fmt.Errorf("%w: %s", ErrChangePending, cur.Describe())
		}
		old, remote, fromFile = cur.raw, cur.Remote, cur.FromFile
	}
	if why := cloningMember(cl); why != "" {
		return StandbyRecord{}, fmt.Errorf("%w: %s", ErrChangePending, why)
	}
	return writeStandbyRecord(ctx, st, old, StandbyRecord{Phase: StandbyPromoting, Leader: lm.Name, By: by, At: time.Now().UTC(), Remote: remote, FromFile: fromFile})
}

// standbyRecordUnlessChange is the standby cluster's record, refused ([ErrChangePending])
// while a change of primary is pending.
func standbyRecordUnlessChange(ctx context.Context, st dcs.Store) (*StandbyRecord, error) {
	if ch, err := ReadChange(ctx, st); err != nil {
		return nil, err
	} else if ch != nil && !ch.over(time.Now()) {
		return nil, fmt.Errorf("%w: %s (phase %s)", ErrChangePending, ch.Describe(), ch.Phase)
	}
	return ReadStandby(ctx, st)
}

// writeStandbyRecord records r in place of the record old holds (nil: none), by
// compare-and-swap; another writer first is [ErrChangePending] with what it recorded.
func writeStandbyRecord(ctx context.Context, st dcs.Store, old []byte, r StandbyRecord) (StandbyRecord, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return StandbyRecord{}, err
	}
	ok, err := st.CompareAndSwap(ctx, StandbyKey, old, b)
	if err != nil {
		return StandbyRecord{}, err
	}
	if !ok {
		cur, err := ReadStandby(ctx, st)
		if err != nil || cur == nil {
			return StandbyRecord{}, fmt.Errorf("%w: the standby cluster's record changed meanwhile (ask again)", ErrChangePending)
		}
		return StandbyRecord{}, fmt.Errorf("%w: %s", ErrChangePending, cur.Describe())
	}
	r.raw = b
	return r, nil
}

// AwaitStandbyPromote waits until the record is promoted and its new primary publishes itself
// running as the primary; it returns the record.
func AwaitStandbyPromote(ctx context.Context, st dcs.Store, poll time.Duration) (*StandbyRecord, error) {
	for {
		r, err := ReadStandby(ctx, st)
		if err == nil && r != nil && r.Phase == StandbyPromoted {
			if cl, err := st.Cluster(ctx); err == nil {
				if lm, ok := cl.LeaderMember(); ok && lm.Name == r.Leader && lm.Role == dcs.RolePrimary && lm.IsRunning() {
					return r, nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return r, fmt.Errorf("waiting for the standby leader to promote: %w", ctx.Err())
		case <-time.After(poll):
		}
	}
}

// ActPromoteStandby: the standby leader of a standby cluster asked to promote ends its
// recovery and leads as the primary.
const ActPromoteStandby ActionKind = "promote standby cluster"

// PromoteStandby carries a standby cluster's promotion out on its standby leader: with the
// leader key held it ends recovery (or finds it ended by an attempt cut short), records the
// timeline switch in the cluster history and marks [StandbyKey] promoted. Result: Err.
type PromoteStandby struct{ Record *StandbyRecord }

func (PromoteStandby) Awaited() bool { return true }

const awaitPromoteStandby awaitPoint = 201

// decideStandbyPromote is the standby leader's decision while its promotion is asked; false:
// the usual decision stands.
func decideStandbyPromote(obs Observation) (Action, bool) {
	r, cl := obs.StandbyRecord, obs.Cluster
	if r == nil || r.Phase != StandbyPromoting || cl == nil || cl.Leader != obs.Member || r.Leader != obs.Member ||
		obs.DataDir != DirCluster || obs.PostgreSQL == PGStopped {
		return Action{}, false
	}
	return Action{Kind: ActPromoteStandby, State: StatePromoting, SystemIdentifier: cl.SystemIdentifier(),
		Reason: "an operator asked to promote the standby cluster: its standby leader ends recovery and leads as the primary"}, true
}

// promoteStandby starts [PromoteStandby].
func (p *stepper) promoteStandby(act Action, obs Observation) (State, []Effect) {
	p.log("warn", "promoting the standby cluster: this standby leader becomes its primary", "by", obs.StandbyRecord.By)
	p.s.setStatus(StatePromoting, nil)
	p.publish()
	return p.await(awaitPromoteStandby, PromoteStandby{Record: obs.StandbyRecord})
}

// resumePromoteStandby goes on after [PromoteStandby].
func (p *stepper) resumePromoteStandby(res Result) (State, []Effect) {
	if res.Err != nil {
		p.log("error", "promoting the standby cluster failed", "error", res.Err)
		return p.failed(fmt.Errorf("promoting the standby cluster: %w", res.Err))
	}
	p.do(Mark{Kind: MarkLed, On: true})
	p.s.act = Action{Kind: ActAdopt, Primary: true}
	p.s.Role, p.s.Status, p.s.LastErr, p.s.Failures = dcs.RolePrimary, dcs.StateRunning, "", 0
	p.log("info", "the standby cluster is promoted: this member is its primary and holds the leader key")
	p.publish()
	return p.wait(p.s.LoopWait)
}

// promoteStandby carries out [PromoteStandby].
func (a *Agent) promoteStandby(ctx context.Context, e PromoteStandby) error {
	n := a.Node
	sw, err := a.promoteHoldingKey(ctx)
	if err != nil {
		return err
	}
	sw.Reason = "standby cluster promoted"
	if switched(sw) {
		if err := recordSwitch(ctx, a.store, sw); err != nil {
			return fmt.Errorf("while recording the switch to timeline %d in the cluster history: %w", sw.Timeline, err)
		}
	}
	next := *e.Record
	next.Phase, next.Timeline, next.PromotedAt = StandbyPromoted, sw.Timeline, time.Now().UTC()
	b, err := json.Marshal(next)
	if err != nil {
		return err
	}
	ok, err := a.store.CompareAndSwap(ctx, StandbyKey, e.Record.raw, b)
	if err != nil {
		return fmt.Errorf("while recording that the standby cluster is promoted: %w", err)
	}
	if !ok {
		return errors.New("the standby cluster's record changed during the promotion")
	}
	n.logger().Info("standby cluster promoted", "timeline", sw.Timeline, "switch_lsn", pg.LSN(sw.LSN))
	return nil
}

// rawString is the record as stored, "" for none.
func (r *StandbyRecord) rawString() string {
	if r == nil {
		return ""
	}
	return string(r.raw)
}

// standbyRecordChanged reports whether the promotion record differs from what the last cycle
// read: a request to promote is acted on at once, not at the next loop_wait.
func (a *Agent) standbyRecordChanged(ctx context.Context) bool {
	r, err := ReadStandby(ctx, a.store)
	return err == nil && r.rawString() != a.lastStandby
}

// observeStandbyRecord adds the standby cluster's record read this cycle
// ([Agent.readStandbyRecord]): once it says promoted, the cluster is no longer a standby
// cluster, whatever the configuration holds.
func (a *Agent) observeStandbyRecord(obs *Observation, r *StandbyRecord, err error) {
	if err != nil {
		a.Node.logger().Warn("could not read the standby cluster's record", "error", err)
		return
	}
	obs.StandbyRecord, a.lastStandby = r, r.rawString()
	if r != nil && r.Phase == StandbyFollowing && obs.DataDir == DirCluster {
		if tl := ownTimeline(*obs); tl > 1 {
			if _, at, err := pg.SwitchPoint(a.Node.Config.DataDir, tl); err == nil {
				obs.TimelineBegan = at
			}
		}
	}
	if r == nil || r.Phase != StandbyPromoted {
		return
	}
	obs.StandbyCluster, obs.FollowsRemote = false, false
}

// promoteHoldingKey takes (or keeps) the leader key, then promotes PostgreSQL and marks the
// directory as led; the switch it returns names this member as the new leader.
func (a *Agent) promoteHoldingKey(ctx context.Context) (dcs.TimelineSwitch, error) {
	n := a.Node
	held, err := a.store.AcquireLeader(ctx, n.Config.Name)
	if err != nil {
		return dcs.TimelineSwitch{}, err
	}
	if !held {
		return dcs.TimelineSwitch{}, errors.New("the leader key is held by another member: not promoted")
	}
	sw, err := promote(ctx, a.srv)
	if err != nil {
		return dcs.TimelineSwitch{}, err
	}
	n.markLed(true)
	sw.NewLeader = n.Config.Name
	return sw, nil
}
