package engine

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/pgimaged/pgimaged/core/dcs"
	"github.com/pgimaged/pgimaged/core/pg"
)

// Replication slots and synchronous replication, as Patroni keeps them (use_slots,
// synchronous_mode). Each cycle the agent of a running PostgreSQL plans, from what the DCS and
// PostgreSQL say, which physical slots it keeps ([PlanSlots]) and, on the primary in
// synchronous mode, whom synchronous_standby_names names and what the sync key says
// ([PlanSync]); the plans are pure, the agent carries them out (agent_syncslots.go).

// SlotName is the physical replication slot of member, named as Patroni names it: lower case,
// '-' and '.' as '_', any other character outside [a-z0-9_] as u and its code point in four
// digits, at most 63 bytes.
func SlotName(member string) string {
	var b strings.Builder
	for _, c := range strings.ToLower(member) {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '_':
			b.WriteRune(c)
		case c == '-', c == '.':
			b.WriteByte('_')
		default:
			fmt.Fprintf(&b, "u%04d", c)
		}
	}
	s := b.String()
	if len(s) > 63 {
		s = s[:63]
	}
	return s
}

// streamsFrom is the member m streams from: the running member its replicatefrom tag names,
// else the leader ("" when there is none) — the rule [upstream] follows on m's side.
func streamsFrom(cl dcs.Cluster, m dcs.Member) string {
	if from, ok := m.Tags["replicatefrom"].(string); ok && from != m.Name {
		if u, ok := cl.Member(from); ok && u.IsRunning() && u.ConnURL != "" {
			return from
		}
	}
	return cl.Leader
}

// SlotInput is what [PlanSlots] decides from.
type SlotInput struct {
	// Self is this member; the slots are on its PostgreSQL.
	Self    string
	Cluster dcs.Cluster
	// Existing are the physical slots PostgreSQL has.
	Existing []pg.Slot
	// Seen is when each member slot's member was last seen in the DCS by this agent (by slot
	// name); only slots named in it or after a published member are pgimaged's to drop.
	Seen map[string]time.Time
	Now  time.Time
	// TTL is member_slots_ttl: how long a slot outlives its member key.
	TTL time.Duration
}

// SlotPlan is what to do with slots: create, drop, and the Seen map to keep for next time.
type SlotPlan struct {
	Create, Drop []string
	Seen         map[string]time.Time
}

// PlanSlots decides the slots this member keeps: one for every member that streams from it (on
// the leader: every member but those a replicatefrom tag sends elsewhere; on a replica: those
// whose replicatefrom tag names it), created as soon as the member's key is published, so the
// slot holds WAL from before the member first streams. A slot of a member that streams
// elsewhere (the old leader's, once it follows the new one) is dropped, unless a walsender
// still uses it; a slot of a member whose key is gone is dropped only once it has been gone
// for TTL (a member that restarts keeps its WAL). Slots whose names are no member's, as this
// agent has seen them, are not pgimaged's and stay.
func PlanSlots(in SlotInput) SlotPlan {
	seen := make(map[string]time.Time, len(in.Seen))
	for slot, at := range in.Seen {
		seen[slot] = at
	}
	want := map[string]bool{}
	present := map[string]bool{}
	for _, m := range in.Cluster.Members {
		slot := SlotName(m.Name)
		present[slot] = true
		seen[slot] = in.Now
		if m.Name != in.Self && streamsFrom(in.Cluster, m) == in.Self {
			want[slot] = true
		}
	}
	var plan SlotPlan
	have := map[string]bool{}
	for _, s := range in.Existing {
		have[s.Name] = true
		at, known := seen[s.Name]
		switch {
		case want[s.Name] || !known || s.Active:
		case present[s.Name] || in.Now.Sub(at) > in.TTL:
			plan.Drop = append(plan.Drop, s.Name)
			delete(seen, s.Name)
		}
	}
	for slot := range want {
		if !have[slot] {
			plan.Create = append(plan.Create, slot)
		}
	}
	for slot, at := range seen { // forget members gone for longer than the TTL with no slot
		if !have[slot] && !present[slot] && in.Now.Sub(at) > in.TTL {
			delete(seen, slot)
		}
	}
	slices.Sort(plan.Create)
	slices.Sort(plan.Drop)
	plan.Seen = seen
	return plan
}

// SyncInput is what [PlanSync] decides from, on the primary in synchronous mode.
type SyncInput struct {
	Self    string
	Cluster dcs.Cluster
	// Replicas are the standbys connected to the primary (pg_stat_replication).
	Replicas []pg.Replica
	// Names is the synchronous_standby_names in force; Count is synchronous_node_count;
	// Strict is synchronous_mode_strict.
	Names  string
	Count  int
	Strict bool
}

// SyncPlan is what the primary writes, in this order: the sync key narrowed to the members
// that stay synchronous (Narrow, before synchronous_standby_names stops waiting for the
// others), synchronous_standby_names (Names), and the sync key naming the members PostgreSQL
// reports as synchronous under the names in force (Key).
type SyncPlan struct {
	// Picked are the members synchronous_standby_names names.
	Picked []string
	// Names is synchronous_standby_names to write ("" none, "*" strict mode with no
	// candidate).
	Names string
	// Narrow is the sync key to write before Names, nil when the key needs no narrowing.
	Narrow *dcs.SyncState
	// Key is the sync key to hold once Names is in force.
	Key dcs.SyncState
}

// syncCandidates are the members that may be synchronous: streaming from the primary, known
// to the DCS, not this member and not tagged nosync; those PostgreSQL reports synchronous
// first, then the furthest flushed, then by name.
func syncCandidates(in SyncInput) []pg.Replica {
	var cs []pg.Replica
	for _, r := range in.Replicas {
		m, ok := in.Cluster.Member(r.ApplicationName)
		if !ok || m.Name == in.Self || r.State != "streaming" || m.NoSync() {
			continue
		}
		cs = append(cs, r)
	}
	isSync := func(r pg.Replica) int {
		if r.SyncState == "sync" || r.SyncState == "quorum" {
			return 0
		}
		return 1
	}
	slices.SortFunc(cs, func(a, b pg.Replica) int {
		return cmp.Or(cmp.Compare(isSync(a), isSync(b)), cmp.Compare(b.Flush, a.Flush), strings.Compare(a.ApplicationName, b.ApplicationName))
	})
	return cs
}

// PlanSync chooses the synchronous standbys: up to Count healthy streaming members (never a
// nosync-tagged one), those already synchronous kept first. The sync key names a member only
// once PostgreSQL reports it synchronous under the synchronous_standby_names in force, and
// loses it before synchronous_standby_names stops naming it: a member the key names has every
// write the primary acknowledged.
func PlanSync(in SyncInput) SyncPlan {
	count := max(in.Count, 1)
	var plan SyncPlan
	cands := syncCandidates(in)
	for _, r := range cands[:min(count, len(cands))] {
		plan.Picked = append(plan.Picked, r.ApplicationName)
	}
	slices.Sort(plan.Picked)
	switch {
	case len(plan.Picked) > 0:
		plan.Names = pg.SynchronousStandbyNames(plan.Picked)
	case in.Strict:
		plan.Names = "*"
	}
	var cur []string
	if k := in.Cluster.Sync; k != nil && k.Leader == in.Self {
		cur = k.Standbys
	}
	kept := []string{}
	for _, name := range cur {
		if slices.Contains(plan.Picked, name) {
			kept = append(kept, name)
		}
	}
	if in.Cluster.Sync == nil || in.Cluster.Sync.Leader != in.Self || len(kept) < len(cur) {
		plan.Narrow = &dcs.SyncState{Leader: in.Self, Standbys: kept}
	}
	plan.Key = dcs.SyncState{Leader: in.Self, Standbys: kept}
	if plan.Names != in.Names {
		return plan // reported states are those of the names before: confirm next cycle
	}
	confirmed := []string{}
	for _, r := range in.Replicas {
		if slices.Contains(plan.Picked, r.ApplicationName) && (r.SyncState == "sync" || r.SyncState == "quorum") {
			confirmed = append(confirmed, r.ApplicationName)
		}
	}
	slices.Sort(confirmed)
	plan.Key.Standbys = confirmed
	return plan
}

// SyncKept is what [KeepSync] did and leaves to do.
type SyncKept struct {
	// Key is the sync key as last written, nil when it was left as it was.
	Key *dcs.SyncState
	// NamesChanged: synchronous_standby_names is to become Names (then reloaded).
	NamesChanged bool
	Names        string
}

// KeepSync is one cycle of the primary's upkeep of synchronous replication against st: it
// reads the sync key (in.Cluster.Sync is what it reads), plans ([PlanSync]) and writes the key
// by compare-and-swap, narrowed first; it says when synchronous_standby_names is to change,
// which the caller writes only then. A key that changed since it was read is an error, and
// nothing else is done: the next cycle reads it again.
func KeepSync(ctx context.Context, st dcs.Store, in SyncInput) (SyncKept, error) {
	var kept SyncKept
	raw, present, err := st.Get(ctx, dcs.SyncKey)
	if err != nil {
		return kept, fmt.Errorf("while reading the sync key: %w", err)
	}
	in.Cluster.Sync = nil
	if present {
		if in.Cluster.Sync = dcs.ParseSync(raw); in.Cluster.Sync == nil {
			in.Cluster.Sync = &dcs.SyncState{} // unreadable: rewritten
		}
	}
	plan := PlanSync(in)
	swap := func(next dcs.SyncState) error {
		v := next.Value()
		if present && bytes.Equal(v, raw) {
			return nil
		}
		var old []byte
		if present {
			old = raw
		}
		ok, err := st.CompareAndSwap(ctx, dcs.SyncKey, old, v)
		if err != nil {
			return fmt.Errorf("while writing the sync key: %w", err)
		}
		if !ok {
			return errors.New("the sync key changed since it was read")
		}
		raw, present, kept.Key = v, true, &next
		return nil
	}
	if plan.Narrow != nil {
		if err := swap(*plan.Narrow); err != nil {
			return kept, err // synchronous_standby_names keeps waiting for the members the key names
		}
	}
	if plan.Names != in.Names {
		kept.NamesChanged, kept.Names = true, plan.Names
		return kept, nil // the key names a member once PostgreSQL reports it synchronous under these
	}
	return kept, swap(plan.Key)
}
