package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/pgimaged/pgimaged/core/dcs"
	"github.com/pgimaged/pgimaged/core/pg"
)

// A change of primary is an operator's command (`pgimaged switchover`, `pgimaged failover`, the
// API's POST /switchover and /failover). The command checks the candidate against what the
// members publish and records the request under [ChangeKey] by an atomic create, so that of two
// operators one wins and the other is told whose request runs. The agents carry it out, each
// step a compare-and-swap on the request:
//
//	switchover  asked ──(the leader: clean shutdown, key released)──▶ demoted{checkpoint LSN}
//	            demoted ──(the candidate replayed the checkpoint)──▶ promoting ──▶ done: the
//	            candidate promoted, took the leader key, recorded the timeline switch; or
//	            demoted ──(the candidate cannot, or the leader's wait ran out)──▶ aborted: the
//	            old primary starts again as the primary.
//	failover    asked ──(no leader; the candidate re-checks its position)──▶ promoting ──▶ done.
//
// Only the member a request names may take a free leader key while it is pending, and a member
// whose timeline is older than the history's newest never takes it again.

// ChangeKey is where a pending change of primary waits for the agents that carry it out.
const ChangeKey = dcs.KeyPrefix + "change"

// ChangeKind is what the operator asked for.
type ChangeKind string

// The kinds of a change of primary.
const (
	// Switchover: the primary is up; it hands over after a clean shutdown, losing nothing.
	Switchover ChangeKind = "switchover"
	// Failover: no member holds the leader key; the candidate is promoted.
	Failover ChangeKind = "failover"
)

// ChangePhase is how far a change has come.
type ChangePhase string

// The phases of a change of primary.
const (
	PhaseAsked     ChangePhase = "asked"
	PhaseDemoted   ChangePhase = "demoted"
	PhasePromoting ChangePhase = "promoting"
	PhaseAborted   ChangePhase = "aborted"
)

// ChangeRequest is a change of primary as kept under [ChangeKey].
type ChangeRequest struct {
	Kind ChangeKind `json:"kind"`
	// Leader is the member that led when a switchover was asked ("" for a failover).
	Leader    string `json:"leader,omitempty"`
	Candidate string `json:"candidate"`
	// Force: a failover to a candidate that is not the most advanced; LostWindow is how many
	// bytes of WAL other members held beyond it when it was asked.
	Force      bool        `json:"force,omitempty"`
	LostWindow int64       `json:"lost_window,omitempty"`
	By         string      `json:"by,omitempty"`
	At         time.Time   `json:"at"`
	Phase      ChangePhase `json:"phase"`
	// CheckpointLSN (demoted) is the old primary's shutdown checkpoint, which the candidate
	// replays before it promotes; Timeline is the timeline it ended on.
	CheckpointLSN pg.LSN `json:"checkpoint_lsn,omitempty"`
	Timeline      int    `json:"timeline,omitempty"`
	// Deadline bounds the phase: past it the leader resumes a switchover nobody carries on.
	Deadline time.Time `json:"deadline,omitzero"`
	// Reason (aborted) says why the change did not happen.
	Reason string `json:"reason,omitempty"`
	// ScheduledAt (a switchover): the leader hands over at this time, not before, when the
	// candidate (none named: the most advanced healthy replica then) passes the switchover's
	// checks then; the request's deadline is counted from it.
	ScheduledAt time.Time `json:"scheduled_at,omitzero"`
}

// Waiting reports whether the request is a scheduled switchover whose time has not come at now.
func (r ChangeRequest) Waiting(now time.Time) bool {
	return !r.ScheduledAt.IsZero() && r.Phase == PhaseAsked && now.Before(r.ScheduledAt)
}

// Describe says what the request asks, for messages.
func (r ChangeRequest) Describe() string {
	to := r.Candidate
	if to == "" {
		to = "the most advanced healthy replica"
	}
	s := fmt.Sprintf("%s to %s", r.Kind, to)
	if r.Leader != "" {
		s = fmt.Sprintf("%s from %s to %s", r.Kind, r.Leader, to)
	}
	if !r.ScheduledAt.IsZero() {
		s += " scheduled at " + r.ScheduledAt.UTC().Format(time.RFC3339)
	}
	if r.By != "" {
		s += ", asked by " + r.By + " at " + r.At.UTC().Format(time.RFC3339)
	}
	return s
}

// PendingChange is a change request as read, with the bytes a compare-and-swap compares.
type PendingChange struct {
	ChangeRequest
	raw []byte
}

// rawString is the change as stored, "" for none: what tells one read from the next.
func (p *PendingChange) rawString() string {
	if p == nil {
		return ""
	}
	return string(p.raw)
}

// ReadChange reads the pending change of primary; nil when there is none.
func ReadChange(ctx context.Context, st dcs.Store) (*PendingChange, error) {
	b, ok, err := st.Get(ctx, ChangeKey)
	if err != nil || !ok {
		return nil, err
	}
	var req ChangeRequest
	if err := json.Unmarshal(b, &req); err != nil {
		return nil, fmt.Errorf("the pending change of primary (%s) cannot be read: %w", ChangeKey, err)
	}
	return &PendingChange{ChangeRequest: req, raw: b}, nil
}

// ErrChangePending means another change of primary is pending; the error names it.
var ErrChangePending = errors.New("another change of primary is pending")

// RequestChange records req if no change is pending. Of two requests at once, one is recorded;
// the other gets [ErrChangePending] naming the winner.
func RequestChange(ctx context.Context, st dcs.Store, req ChangeRequest) error {
	if req.At.IsZero() {
		req.At = time.Now().UTC()
	}
	req.Phase = PhaseAsked
	b, err := json.Marshal(req)
	if err != nil {
		return err
	}
	// An aborted request stays as the record of its outcome, and one nobody took up before its
	// deadline is void: either gives way to the next.
	cur, err := ReadChange(ctx, st)
	if err != nil {
		return err
	}
	var old []byte
	if cur != nil {
		// A scheduled switchover whose time has not come gives way to the next request, as
		// Patroni's does: the operator asked for another change since.
		if !cur.over(req.At) && !cur.Waiting(req.At) {
			return fmt.Errorf("%w: %s (phase %s)", ErrChangePending, cur.Describe(), cur.Phase)
		}
		old = cur.raw
	}
	ok, err := st.CompareAndSwap(ctx, ChangeKey, old, b)
	if err != nil || ok {
		return err
	}
	if cur, err = ReadChange(ctx, st); err != nil || cur == nil {
		return fmt.Errorf("%w (it ended while this one was asked; ask again)", ErrChangePending)
	}
	return fmt.Errorf("%w: %s (phase %s)", ErrChangePending, cur.Describe(), cur.Phase)
}

// over reports whether the request no longer runs at now: it was aborted, or it is still asked
// past its deadline (nobody took it up).
func (r ChangeRequest) over(now time.Time) bool {
	return r.Phase == PhaseAborted || r.Phase == PhaseAsked && !r.Deadline.IsZero() && now.After(r.Deadline)
}

// Why a scheduled time is refused ([ParseSchedule]).
var (
	ErrScheduleNoZone     = errors.New("a scheduled time needs its time zone (an offset such as +00:00, or Z)")
	ErrSchedulePast       = errors.New("the scheduled time has passed")
	ErrScheduleUnreadable = errors.New("the scheduled time is not in an ISO 8601 form such as 2026-12-07T18:30:00+00:00")
)

// scheduleLayouts are the ISO 8601 forms a scheduled time is read in (patronictl sends
// Python's isoformat(): 2026-12-07T18:30:00+00:00); each without its zone is what
// [ErrScheduleNoZone] recognises.
var scheduleLayouts = []string{
	"2006-01-02T15:04:05.999999999Z07:00", "2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02T15:04:05.999999999Z0700", "2006-01-02 15:04:05.999999999Z0700",
	"2006-01-02T15:04Z07:00", "2006-01-02 15:04Z07:00", "2006-01-02T15:04Z0700", "2006-01-02 15:04Z0700",
}

// ParseSchedule reads the time a switchover is scheduled at, which must carry its time zone
// and lie after now.
func ParseSchedule(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, layout := range scheduleLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			if t.Before(now) {
				return time.Time{}, fmt.Errorf("%w: %s is before now (%s)", ErrSchedulePast, t.Format(time.RFC3339), now.UTC().Format(time.RFC3339))
			}
			return t, nil
		}
		if _, err := time.Parse(strings.NewReplacer("Z07:00", "", "Z0700", "").Replace(layout), s); err == nil {
			return time.Time{}, fmt.Errorf("%w: %q", ErrScheduleNoZone, s)
		}
	}
	return time.Time{}, fmt.Errorf("%w: %q", ErrScheduleUnreadable, s)
}

// CancelScheduled removes a scheduled switchover whose time has not come. false: none is
// scheduled (nothing pending, a change that is not scheduled, or one under way); the error
// says so when another one is pending.
func CancelScheduled(ctx context.Context, st dcs.Store) (*PendingChange, error) {
	cur, err := ReadChange(ctx, st)
	if err != nil || cur == nil || !cur.Waiting(time.Now()) {
		return nil, err
	}
	ok, err := AdvanceChange(ctx, st, cur, nil)
	switch {
	case err != nil:
		return nil, err
	case !ok:
		return nil, fmt.Errorf("%w: the scheduled switchover changed while it was being cancelled; look again", ErrChangePending)
	}
	return cur, MirrorScheduled(ctx, st, nil, time.Now())
}

// underWay reports whether the request is being carried out at now: neither over nor a
// scheduled switchover waiting for its time, which stops nothing until then.
func (r ChangeRequest) underWay(now time.Time) bool {
	return !r.over(now) && !r.Waiting(now)
}

// MirrorScheduled keeps Patroni's failover key ([dcs.FailoverKey]) in line with the pending
// change ch (nil: none) at now: the scheduled switchover while its time has not come, for
// patronictl's list and flush; otherwise no key.
func MirrorScheduled(ctx context.Context, st dcs.Store, ch *ChangeRequest, now time.Time) error {
	var want []byte
	if ch != nil && ch.Waiting(now) {
		want = dcs.ScheduledSwitchover(ch.Leader, ch.Candidate, ch.ScheduledAt)
	}
	cur, present, err := st.Get(ctx, dcs.FailoverKey)
	switch {
	case err != nil:
		return err
	case want == nil && present:
		_, err = st.CompareAndSwap(ctx, dcs.FailoverKey, cur, nil)
	case want != nil && string(cur) != string(want):
		var old []byte
		if present {
			old = cur
		}
		_, err = st.CompareAndSwap(ctx, dcs.FailoverKey, old, want)
	}
	return err
}

// AdvanceChange moves the pending change p to next, only if nobody changed it since it was
// read; next nil removes it (the change is done, or its outcome was read). false: it changed,
// and the caller reads it again.
func AdvanceChange(ctx context.Context, st dcs.Store, p *PendingChange, next *ChangeRequest) (bool, error) {
	var b []byte
	if next != nil {
		var err error
		if b, err = json.Marshal(next); err != nil {
			return false, err
		}
	}
	return st.CompareAndSwap(ctx, ChangeKey, p.raw, b)
}

// ChangeRefusal says why a change of primary is refused, with the members' positions when they
// are the reason.
type ChangeRefusal struct {
	Reason    string
	Positions []MemberPosition
	// Lagging names the members refused only because their published position is more than
	// maximum_lag_on_failover behind the leader's (see [CheckSwitchoverSettled]).
	Lagging []string
}

func (r *ChangeRefusal) Error() string {
	if len(r.Positions) == 0 {
		return r.Reason
	}
	parts := make([]string, len(r.Positions))
	for i, p := range r.Positions {
		parts[i] = p.String()
	}
	return r.Reason + " (" + strings.Join(parts, "; ") + ")"
}

// MemberPosition is where a member's WAL stands, as it publishes it.
type MemberPosition struct {
	Member   string `json:"member"`
	Timeline int    `json:"timeline"`
	LSN      int64  `json:"lsn"`
	// Behind is how many bytes it lacks of the most advanced member's WAL.
	Behind int64 `json:"behind"`
}

func (p MemberPosition) String() string {
	return fmt.Sprintf("%s: timeline %d at %s, %d bytes behind", p.Member, p.Timeline, pg.LSN(p.LSN), p.Behind)
}

// positions are the running members' positions, the most advanced first (a later timeline
// first, then the further LSN, then the name).
func positions(cl dcs.Cluster) []MemberPosition {
	var ps []MemberPosition
	for _, m := range cl.Members {
		if m.IsRunning() && (m.Timeline > 0 || m.XLogLocation > 0) {
			ps = append(ps, MemberPosition{Member: m.Name, Timeline: m.Timeline, LSN: m.XLogLocation})
		}
	}
	slices.SortFunc(ps, func(a, b MemberPosition) int {
		switch {
		case a.Timeline != b.Timeline:
			return b.Timeline - a.Timeline
		case a.LSN != b.LSN:
			if a.LSN > b.LSN {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Member, b.Member)
	})
	for i := range ps {
		if ps[i].Timeline == ps[0].Timeline {
			ps[i].Behind = max(0, ps[0].LSN-ps[i].LSN)
		} else {
			ps[i].Behind = -1 // on an older timeline: not comparable in bytes
		}
	}
	return ps
}

// ineligible says why member m cannot become the primary, "" when it can.
func ineligible(cl dcs.Cluster, m dcs.Member) string {
	switch {
	case m.NoFailover():
		return fmt.Sprintf("member %s is tagged nofailover", m.Name)
	case inFlight(m.State):
		return fmt.Sprintf("member %s is in the middle of a clone (%s)", m.Name, m.State)
	case !m.IsRunning():
		return fmt.Sprintf("member %s is not running (state %q)", m.Name, m.State)
	}
	return ""
}

// CheckSwitchover checks a switchover to candidate ("" for the most advanced healthy replica)
// against cl; maxLag is maximum_lag_on_failover in bytes. In synchronous mode (cl.Sync set)
// only a synchronous standby may take over. It returns the request to record, or
// a [*ChangeRefusal].
func CheckSwitchover(cl dcs.Cluster, candidate string, maxLag int64) (ChangeRequest, error) {
	lm, ok := cl.LeaderMember()
	switch {
	case cl.Leader == "":
		return ChangeRequest{}, &ChangeRefusal{Reason: "no member holds the leader key: a switchover needs a running primary; use failover --candidate"}
	case !ok || !lm.IsRunning():
		return ChangeRequest{}, &ChangeRefusal{Reason: fmt.Sprintf("the leader %s does not publish a running primary: a switchover needs one", cl.Leader)}
	case candidate == cl.Leader:
		return ChangeRequest{}, &ChangeRefusal{Reason: fmt.Sprintf("member %s is the leader already", candidate)}
	}
	var lagging []string
	check := func(m dcs.Member) string {
		if why := ineligible(cl, m); why != "" {
			return why
		}
		if m.PGImaged == nil || m.PGImaged.Upstream == "" {
			return fmt.Sprintf("member %s does not stream WAL", m.Name)
		}
		if m.Timeline != lm.Timeline {
			return fmt.Sprintf("member %s publishes timeline %d, the leader timeline %d: it does not follow the leader's timeline yet", m.Name, m.Timeline, lm.Timeline)
		}
		if lag := lm.XLogLocation - m.XLogLocation; lag > maxLag {
			lagging = append(lagging, m.Name)
			return fmt.Sprintf("member %s is %d bytes behind the leader, more than maximum_lag_on_failover (%d)", m.Name, lag, maxLag)
		}
		return ""
	}
	if candidate != "" {
		m, ok := cl.Member(candidate)
		if !ok {
			return ChangeRequest{}, &ChangeRefusal{Reason: fmt.Sprintf("member %s is not published in scope", candidate)}
		}
		if why := notSynchronous(cl, candidate); why != "" {
			return ChangeRequest{}, &ChangeRefusal{Reason: why, Positions: positions(cl)}
		}
		if why := check(m); why != "" {
			return ChangeRequest{}, &ChangeRefusal{Reason: why, Positions: positions(cl), Lagging: lagging}
		}
		return ChangeRequest{Kind: Switchover, Leader: cl.Leader, Candidate: candidate}, nil
	}
	var whys []string
	for _, p := range positions(cl) { // most advanced first
		m, _ := cl.Member(p.Member)
		if m.Name == cl.Leader {
			continue
		}
		why := notSynchronous(cl, m.Name)
		if why == "" {
			why = check(m)
		}
		if why == "" {
			return ChangeRequest{Kind: Switchover, Leader: cl.Leader, Candidate: m.Name}, nil
		}
		whys = append(whys, why)
	}
	reason := "no replica can take over"
	if len(whys) > 0 {
		reason += ": " + strings.Join(whys, "; ")
	}
	return ChangeRequest{}, &ChangeRefusal{Reason: reason, Positions: positions(cl), Lagging: lagging}
}

// CheckSwitchoverSettled is [CheckSwitchover] on cl, read again while it refuses members only
// for their lag. Each member publishes its position once per loop_wait, on its own beat: a
// leader that published just after a burst of WAL (a base backup's checkpoint and segment
// switch, a bulk write) shows its replicas behind by what they have received since they last
// published. So a refusal that names lagging members waits, reading the cluster every poll,
// until each of them has published another position (or window has passed), and checks once
// more then; it returns at once when a check passes. The switchover itself does not rest on
// this check: the candidate promotes only once it has replayed the old primary's shutdown
// checkpoint.
func CheckSwitchoverSettled(ctx context.Context, read func(context.Context) (dcs.Cluster, error), cl dcs.Cluster, candidate string, maxLag int64, window, poll time.Duration) (ChangeRequest, error) {
	req, err := CheckSwitchover(cl, candidate, maxLag)
	var refusal *ChangeRefusal
	if err == nil || !errors.As(err, &refusal) || len(refusal.Lagging) == 0 {
		return req, err
	}
	was := map[string]int64{}
	for _, name := range refusal.Lagging {
		m, _ := cl.Member(name)
		was[name] = m.XLogLocation
	}
	deadline := time.Now().Add(window)
	for time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return req, err
		case <-time.After(poll):
		}
		now, rerr := read(ctx)
		if rerr != nil {
			continue
		}
		req, err = CheckSwitchover(now, candidate, maxLag)
		if err == nil {
			return req, nil
		}
		fresh := true
		for name, lsn := range was {
			if m, ok := now.Member(name); ok && m.XLogLocation == lsn {
				fresh = false
			}
		}
		if fresh {
			return req, err
		}
	}
	return req, err
}

// InSynchronousMode is cl as a change of primary reads it when the cluster runs in synchronous
// mode (on): with no sync key yet — a primary acknowledges commits before its agent first
// writes the key — no member is known to hold them, so the key is read as naming none
// (Patroni's rule: in synchronous mode only a member the key names takes over).
func InSynchronousMode(cl dcs.Cluster, on bool) dcs.Cluster {
	if on && cl.Sync == nil {
		cl.Sync = &dcs.SyncState{}
	}
	return cl
}

// notSynchronous says why member may not take over in synchronous mode (the sync key exists,
// written by a primary in synchronous mode): the key does not name it. "" when it may.
func notSynchronous(cl dcs.Cluster, member string) string {
	if cl.Sync == nil || cl.Sync.Has(member) {
		return ""
	}
	names := "none"
	if len(cl.Sync.Standbys) > 0 {
		names = strings.Join(cl.Sync.Standbys, ", ")
	}
	return fmt.Sprintf("member %s is not a synchronous standby (the sync key names: %s): in synchronous mode only a synchronous standby holds every acknowledged write", member, names)
}

// CheckFailover checks a failover to candidate against cl: no member may hold the leader key,
// and the candidate must be the most advanced of the running members; force accepts a less
// advanced one and records the bytes others held beyond it. In synchronous mode (cl.Sync set)
// the candidate must be a synchronous standby, the most advanced of them; force accepts
// another.
func CheckFailover(cl dcs.Cluster, candidate string, force bool) (ChangeRequest, error) {
	if candidate == "" {
		return ChangeRequest{}, &ChangeRefusal{Reason: "a failover needs --candidate"}
	}
	if cl.Leader != "" {
		lm, _ := cl.LeaderMember()
		return ChangeRequest{}, &ChangeRefusal{Reason: fmt.Sprintf("member %s holds the leader key (state %q): a failover is for a cluster without a leader; use switchover", cl.Leader, lm.State)}
	}
	m, ok := cl.Member(candidate)
	if !ok {
		return ChangeRequest{}, &ChangeRefusal{Reason: fmt.Sprintf("member %s is not published in scope", candidate)}
	}
	if why := ineligible(cl, m); why != "" {
		return ChangeRequest{}, &ChangeRefusal{Reason: why, Positions: positions(cl)}
	}
	req := ChangeRequest{Kind: Failover, Candidate: candidate, Force: force}
	ps := positions(cl)
	if why := notSynchronous(cl, candidate); why != "" {
		if !force {
			return ChangeRequest{}, &ChangeRefusal{Reason: why + " (give --force to accept losing what it lacks)", Positions: ps}
		}
	} else if cl.Sync != nil {
		// Only the synchronous standbys hold every acknowledged write; WAL beyond them on
		// another member was never acknowledged, so they are compared among themselves.
		ps = slices.DeleteFunc(ps, func(p MemberPosition) bool { return !cl.Sync.Has(p.Member) })
	}
	if len(ps) == 0 || ps[0].Member == candidate {
		return req, nil
	}
	var mine MemberPosition
	for _, p := range ps {
		if p.Member == candidate {
			mine = p
		}
	}
	if mine.Timeline == ps[0].Timeline && mine.LSN == ps[0].LSN {
		return req, nil // as advanced as the first, which sorts before it by name
	}
	if !force {
		return ChangeRequest{}, &ChangeRefusal{Reason: fmt.Sprintf("member %s is not the most advanced member; %s is (give --force to accept losing what it lacks)", candidate, ps[0].Member), Positions: ps}
	}
	req.LostWindow = mine.Behind
	if mine.Behind < 0 {
		req.LostWindow = ps[0].LSN
	}
	return req, nil
}

// ChangeOutcome is how a change of primary ended.
type ChangeOutcome struct {
	// Done: the candidate holds the leader key.
	Done bool
	// Leader is the member that leads at the end, Timeline the history's newest timeline.
	Leader   string
	Timeline int
	// Reason says why it did not happen.
	Reason string
}

// sameRequest reports whether p is the request asked as req.
func sameRequest(p *PendingChange, req ChangeRequest) bool {
	return p != nil && p.Kind == req.Kind && p.Candidate == req.Candidate && p.At.Equal(req.At)
}

// AwaitChange waits until the change req (as recorded) has ended, reading the DCS every poll:
// the candidate holds the leader key and the request is gone, or the request was aborted. When
// ctx ends first and no agent has taken the request up, it is aborted so that it cannot run
// later by surprise; one already under way is left to finish.
func AwaitChange(ctx context.Context, st dcs.Store, req ChangeRequest, poll time.Duration) (ChangeOutcome, error) {
	for {
		p, perr := ReadChange(ctx, st)
		cl, cerr := st.Cluster(ctx)
		if perr == nil && cerr == nil {
			switch {
			case sameRequest(p, req) && p.Phase == PhaseAborted:
				return ChangeOutcome{Leader: cl.Leader, Timeline: cl.History.Timeline(), Reason: p.Reason}, nil
			case sameRequest(p, req):
			case cl.Leader == req.Candidate:
				return ChangeOutcome{Done: true, Leader: cl.Leader, Timeline: cl.History.Timeline()}, nil
			default:
				return ChangeOutcome{Leader: cl.Leader, Timeline: cl.History.Timeline(),
					Reason: fmt.Sprintf("the request ended without %s leading (leader now: %q)", req.Candidate, cl.Leader)}, nil
			}
		}
		select {
		case <-time.After(poll):
			continue
		case <-ctx.Done():
		}
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if p, err := ReadChange(wctx, st); err == nil && sameRequest(p, req) && p.Phase == PhaseAsked {
			next := p.ChangeRequest
			next.Phase, next.Reason = PhaseAborted, "no agent took the request up in time"
			if ok, _ := AdvanceChange(wctx, st, p, &next); ok {
				return ChangeOutcome{Reason: next.Reason}, fmt.Errorf("%s: %w; the request is withdrawn", next.Reason, ctx.Err())
			}
		}
		return ChangeOutcome{}, fmt.Errorf("stopped waiting (%w): the change is under way; follow it with pgimaged status", ctx.Err())
	}
}
