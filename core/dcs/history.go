package dcs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// ErrHistoryChanged reports that the cluster's history no longer holds what the caller read:
// another writer appended first. Read it again and decide again.
var ErrHistoryChanged = errors.New("the cluster history changed since it was read")

const (
	// historyKey is Patroni's history key under the scope: a JSON list of
	// [timeline, switch LSN, reason, timestamp, new leader], one per change of primary.
	historyKey = "history"
	// SwitchesKey holds what pgimaged records of each switch beyond Patroni's five columns (the
	// old leader), apart from the history key so that Patroni's readers see the shape they know.
	SwitchesKey = KeyPrefix + "switches"
)

// TimelineSwitch is one change of primary as the cluster's history records it.
type TimelineSwitch struct {
	// Timeline is the timeline the new primary began. Patroni's history, like PostgreSQL's
	// timeline history file, names the timeline that ended instead (Timeline-1).
	Timeline int `json:"timeline"`
	// LSN is where the previous timeline ended and this one began (the switch point), in bytes.
	LSN uint64 `json:"lsn"`
	// Reason says why the primary changed (PostgreSQL's history file says "no recovery target
	// specified" for a promotion).
	Reason string `json:"reason,omitempty"`
	// Time is when the new primary took over (read back in UTC); zero when the history does not
	// say.
	Time time.Time `json:"time,omitzero"`
	// OldLeader is the member that led before the switch, "" when unknown (a switch Patroni
	// recorded).
	OldLeader string `json:"old_leader,omitempty"`
	// NewLeader is the member that was promoted, "" when unknown.
	NewLeader string `json:"new_leader,omitempty"`
}

// History is the cluster's timeline switches, oldest first, as read from the DCS. Pass it back
// to [Store.AppendTimelineSwitch], which appends only if the history is still the one read.
type History struct {
	Switches []TimelineSwitch

	// value is the history key's value as read ("" when absent), rev its etcd mod revision (0
	// when absent): what AppendTimelineSwitch compares.
	value string
	rev   int64
}

// Latest returns the newest switch; false when the history records none.
func (h History) Latest() (TimelineSwitch, bool) {
	if len(h.Switches) == 0 {
		return TimelineSwitch{}, false
	}
	return h.Switches[len(h.Switches)-1], true
}

// Timeline returns the cluster's current timeline as the history knows it: the newest switch's
// timeline, 0 when the history records none (the cluster is on the timeline it was bootstrapped
// on).
func (h History) Timeline() int {
	if sw, ok := h.Latest(); ok {
		return sw.Timeline
	}
	return 0
}

// historyTime is how the history's timestamps are written: Python's isoformat, as Patroni
// writes them.
const historyTime = "2006-01-02T15:04:05.000000-07:00"

// switchExtra is pgimaged's record of one switch in [SwitchesKey].
type switchExtra struct {
	Timeline  int    `json:"timeline"`
	LSN       uint64 `json:"lsn"`
	OldLeader string `json:"old_leader,omitempty"`
}

// parseHistory reads the history key's value and pgimaged's records beside it. Like Patroni, it
// reads a value that is not a list as no history, and skips lines it cannot read.
func parseHistory(value, extras []byte) []TimelineSwitch {
	var lines []json.RawMessage
	if json.Unmarshal(value, &lines) != nil {
		return nil
	}
	var ex []switchExtra
	_ = json.Unmarshal(extras, &ex) // pgimaged's additions only; without them the history stands
	var out []TimelineSwitch
	for _, l := range lines {
		sw, ok := parseHistoryLine(l)
		if !ok {
			continue
		}
		for _, e := range ex {
			if e.Timeline == sw.Timeline && e.LSN == sw.LSN {
				sw.OldLeader = e.OldLeader
			}
		}
		out = append(out, sw)
	}
	return out
}

// parseHistoryLine reads one line [timeline, lsn, reason, timestamp, new leader]; the last
// three may be missing, as in lines Patroni copied from a history file without a timestamp.
func parseHistoryLine(raw json.RawMessage) (TimelineSwitch, bool) {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var cols []any
	if d.Decode(&cols) != nil || len(cols) < 2 {
		return TimelineSwitch{}, false
	}
	tl, ok1 := cols[0].(json.Number)
	lsn, ok2 := cols[1].(json.Number)
	if !ok1 || !ok2 {
		return TimelineSwitch{}, false
	}
	parent, err1 := strconv.Atoi(tl.String())
	at, err2 := strconv.ParseUint(lsn.String(), 10, 64)
	if err1 != nil || err2 != nil || parent < 1 {
		return TimelineSwitch{}, false
	}
	sw := TimelineSwitch{Timeline: parent + 1, LSN: at}
	str := func(i int) string {
		if i < len(cols) {
			s, _ := cols[i].(string)
			return s
		}
		return ""
	}
	sw.Reason = str(2)
	if ts := str(3); ts != "" {
		if t, err := time.Parse(time.RFC3339Nano, ts); err == nil {
			sw.Time = t.UTC()
		}
	}
	sw.NewLeader = str(4)
	return sw, true
}

// PatroniLine is sw as a line of Patroni's history: [ended timeline, switch LSN, reason,
// timestamp, new leader].
func (sw TimelineSwitch) PatroniLine() []any {
	ts := ""
	if !sw.Time.IsZero() {
		ts = sw.Time.UTC().Format(historyTime)
	}
	return []any{sw.Timeline - 1, sw.LSN, sw.Reason, ts, sw.NewLeader}
}

// appendHistory returns the history key's and [SwitchesKey]'s new values with sw appended to
// h, after checking that sw comes after h's newest switch.
func appendHistory(h History, sw TimelineSwitch) (value, extras []byte, err error) {
	if sw.Timeline < 2 {
		return nil, nil, fmt.Errorf("timeline %d cannot be the result of a switch (the first is 1)", sw.Timeline)
	}
	if last, ok := h.Latest(); ok {
		if sw.Timeline <= last.Timeline {
			return nil, nil, fmt.Errorf("timeline %d is not after the history's newest, %d", sw.Timeline, last.Timeline)
		}
		if sw.LSN < last.LSN {
			return nil, nil, fmt.Errorf("switch LSN %d of timeline %d is before the one of timeline %d, %d", sw.LSN, sw.Timeline, last.Timeline, last.LSN)
		}
	}
	for _, name := range []string{sw.OldLeader, sw.NewLeader} {
		if name != "" {
			if err := validName("member", name); err != nil {
				return nil, nil, err
			}
		}
	}
	lines := []json.RawMessage{}
	if h.value != "" && json.Unmarshal([]byte(h.value), &lines) != nil {
		lines = []json.RawMessage{} // not a list: Patroni reads it as no history, so do we
	}
	line, err := json.Marshal(sw.PatroniLine())
	if err != nil {
		return nil, nil, err
	}
	if value, err = json.Marshal(append(lines, line)); err != nil {
		return nil, nil, err
	}
	ex := []switchExtra{}
	for _, s := range append(h.Switches, sw) {
		if s.OldLeader != "" {
			ex = append(ex, switchExtra{Timeline: s.Timeline, LSN: s.LSN, OldLeader: s.OldLeader})
		}
	}
	if extras, err = json.Marshal(ex); err != nil {
		return nil, nil, err
	}
	return value, extras, nil
}

// readHistory reads the history key and pgimaged's records beside it.
func (s *fileStore) readHistory() (History, error) {
	rec, _, err := readRecord(s.path(historyKey))
	if err != nil {
		return History{}, err
	}
	extras, _, err := readRecord(s.path(filepath.FromSlash(SwitchesKey)))
	if err != nil {
		return History{}, err
	}
	return History{Switches: parseHistory([]byte(rec.value), []byte(extras.value)), value: rec.value}, nil
}

// History reads the cluster's changes of primary.
func (s *fileStore) History(ctx context.Context) (History, error) {
	const what = "reading the cluster history"
	if s.isClosed() {
		return History{}, fmt.Errorf("while %s: %w", what, ErrClosed)
	}
	h, err := s.readHistory()
	if err != nil {
		return History{}, fmt.Errorf("while %s: %w", what, err)
	}
	return h, nil
}

// AppendTimelineSwitch appends sw under the directory lock if the history is still prev's.
func (s *fileStore) AppendTimelineSwitch(ctx context.Context, prev History, sw TimelineSwitch) error {
	what := fmt.Sprintf("recording the switch to timeline %d in the cluster history", sw.Timeline)
	value, extras, err := appendHistory(prev, sw)
	if err != nil {
		return fmt.Errorf("while %s: %w", what, err)
	}
	return s.mutate(ctx, what, sessionOptional, func(*fileSession) error {
		cur, err := s.readHistory()
		if err != nil {
			return err
		}
		if cur.value != prev.value {
			return ErrHistoryChanged
		}
		// The records first: without the history line they name, they are ignored.
		ep := s.path(filepath.FromSlash(SwitchesKey))
		if err := s.owner.mkdirAll(filepath.Dir(ep)); err != nil {
			return err
		}
		if _, err := s.writeRecord(ep, fileRecord{value: string(extras)}, false, true); err != nil {
			return err
		}
		_, err = s.writeRecord(s.path(historyKey), fileRecord{value: string(value)}, false, true)
		return err
	})
}

// History reads the cluster's changes of primary.
func (s *etcdStore) History(ctx context.Context) (History, error) {
	const what = "reading the cluster history"
	cli, err := s.client(ctx)
	if err != nil {
		return History{}, fmt.Errorf("while %s: %w", what, err)
	}
	var resp *clientv3.TxnResponse
	err = s.do(ctx, what, func(ctx context.Context) (err error) {
		resp, err = cli.Txn(ctx).Then(clientv3.OpGet(s.key(historyKey)), clientv3.OpGet(s.key(SwitchesKey))).Commit()
		return err
	})
	if err != nil {
		return History{}, err
	}
	var h History
	var extras []byte
	if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) > 0 {
		h.value, h.rev = string(kvs[0].Value), kvs[0].ModRevision
	}
	if kvs := resp.Responses[1].GetResponseRange().Kvs; len(kvs) > 0 {
		extras = kvs[0].Value
	}
	h.Switches = parseHistory([]byte(h.value), extras)
	return h, nil
}

// AppendTimelineSwitch appends sw in one transaction that compares the history key's revision
// with prev's.
func (s *etcdStore) AppendTimelineSwitch(ctx context.Context, prev History, sw TimelineSwitch) error {
	what := fmt.Sprintf("recording the switch to timeline %d in the cluster history", sw.Timeline)
	value, extras, err := appendHistory(prev, sw)
	if err != nil {
		return fmt.Errorf("while %s: %w", what, err)
	}
	cli, err := s.client(ctx)
	if err != nil {
		return fmt.Errorf("while %s: %w", what, err)
	}
	key := s.key(historyKey)
	var resp *clientv3.TxnResponse
	err = s.do(ctx, what, func(ctx context.Context) (err error) {
		resp, err = cli.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(key), "=", prev.rev)).
			Then(clientv3.OpPut(s.key(SwitchesKey), string(extras)), clientv3.OpPut(key, string(value))).
			Commit()
		return err
	})
	if err != nil {
		return err
	}
	if !resp.Succeeded {
		return fmt.Errorf("while %s: %w", what, ErrHistoryChanged)
	}
	return nil
}
