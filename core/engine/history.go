package engine

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/pgimaged/pgimaged/core/dcs"
)

// HistoryLimit is how many bootstrap and clone attempts the DCS keeps per member.
const HistoryLimit = 50

// HistoryKey is the DCS key of member's attempts (not Patroni's history key, which holds
// timelines).
func HistoryKey(member string) string { return dcs.HistoryKeyDir + member }

// ReadHistory reads member's bootstrap and clone attempts from st, oldest first.
func ReadHistory(ctx context.Context, st dcs.Store, member string) ([]dcs.Attempt, error) {
	b, ok, err := st.Get(ctx, HistoryKey(member))
	if err != nil || !ok {
		return nil, err
	}
	var atts []dcs.Attempt
	if err := json.Unmarshal(b, &atts); err != nil {
		return nil, fmt.Errorf("while reading the history of %s: %w", member, err)
	}
	return atts, nil
}

// appendHistory adds atts to member's history in st, keeping the newest HistoryLimit.
func appendHistory(ctx context.Context, st dcs.Store, member string, atts []dcs.Attempt) error {
	old, err := ReadHistory(ctx, st, member)
	if err != nil {
		old = nil // an unreadable history is replaced rather than kept growing nowhere
	}
	all := append(old, atts...)
	if len(all) > HistoryLimit {
		all = all[len(all)-HistoryLimit:]
	}
	b, err := json.Marshal(all)
	if err != nil {
		return err
	}
	return st.Put(ctx, HistoryKey(member), b)
}

// saveHistory writes the attempts that ended since the last save into the DCS; those that
// could not be written are kept for the next publish.
func (a *Agent) saveHistory(ctx context.Context) {
	a.mu.Lock()
	unsaved := a.unsaved
	a.mu.Unlock()
	if len(unsaved) == 0 || a.store == nil {
		return
	}
	if err := appendHistory(ctx, a.store, a.Node.Config.Name, unsaved); err != nil {
		a.Node.logger().Warn("could not record the attempts in the DCS history; trying again on the next publish", "error", err)
		return
	}
	a.mu.Lock()
	a.unsaved = a.unsaved[len(unsaved):]
	a.mu.Unlock()
}
