package engine_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/pgimaged/pgimaged/core/dcs"
	"github.com/pgimaged/pgimaged/core/dcs/dcstest"
	"github.com/pgimaged/pgimaged/core/engine"
	"github.com/pgimaged/pgimaged/core/pg"
)

// TestSlotName: Patroni's slot_name_from_member_name.
func TestSlotName(t *testing.T) {
	for member, want := range map[string]string{
		"node1":         "node1",
		"Node-2.dc1":    "node_2_dc1",
		"db@host":       "dbu0064host",
		"under_score_9": "under_score_9",
		"x" + string(make([]byte, 70)): "x" + func() string {
			s := ""
			for len(s) < 62 {
				s += "u0000"
			}
			return s[:62]
		}(),
	} {
		if got := engine.SlotName(member); got != want {
			t.Errorf("SlotName(%q) = %q, want %q", member, got, want)
		}
	}
}

func TestPlanSlots(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	members := func(names ...string) []dcs.Member {
		var ms []dcs.Member
		for _, n := range names {
			ms = append(ms, dcs.Member{Name: n, State: dcs.StateRunning, ConnURL: "postgres://127.0.0.1:5432/postgres"})
		}
		return ms
	}
	slots := func(names ...string) []pg.Slot {
		var ss []pg.Slot
		for _, n := range names {
			ss = append(ss, pg.Slot{Name: n})
		}
		return ss
	}
	cases := []struct {
		name         string
		in           engine.SlotInput
		create, drop []string
	}{
		{name: "the leader creates a slot for every other member, its own key included in none",
			in:     engine.SlotInput{Self: "n1", Cluster: dcs.Cluster{Leader: "n1", Members: members("n1", "n2", "N-3")}},
			create: []string{"n2", "n_3"}},
		{name: "a member cloning has its slot before it streams",
			in: engine.SlotInput{Self: "n1", Cluster: dcs.Cluster{Leader: "n1", Members: append(members("n1"),
				dcs.Member{Name: "n4", State: dcs.StateCreatingReplica})}},
			create: []string{"n4"}},
		{name: "existing slots are kept, slots of no member left alone",
			in: engine.SlotInput{Self: "n1", Cluster: dcs.Cluster{Leader: "n1", Members: members("n1", "n2")},
				Existing: slots("n2", "backup_tool")}},
		{name: "a member streaming from a cascade has its slot there, not on the leader",
			in: engine.SlotInput{Self: "n1", Cluster: dcs.Cluster{Leader: "n1", Members: append(members("n1", "n2"),
				dcs.Member{Name: "n3", State: dcs.StateRunning, Tags: map[string]any{"replicatefrom": "n2"}})},
				Existing: slots("n2", "n3")},
			drop: []string{"n3"}},
		{name: "the cascading replica keeps the slot of the member that streams from it",
			in: engine.SlotInput{Self: "n2", Cluster: dcs.Cluster{Leader: "n1", Members: append(members("n1", "n2"),
				dcs.Member{Name: "n3", State: dcs.StateRunning, Tags: map[string]any{"replicatefrom": "n2"}})}},
			create: []string{"n3"}},
		{name: "a former leader, now a replica, drops the slots it kept as the leader",
			in: engine.SlotInput{Self: "n1", Cluster: dcs.Cluster{Leader: "n2", Members: members("n1", "n2", "n3")},
				Existing: slots("n2", "n3", "backup_tool")},
			drop: []string{"n2", "n3"}},
		{name: "a slot in use is not dropped",
			in: engine.SlotInput{Self: "n1", Cluster: dcs.Cluster{Leader: "n2", Members: members("n1", "n2", "n3")},
				Existing: []pg.Slot{{Name: "n3", Active: true}}}},
		{name: "a member whose key is gone keeps its slot within the grace period",
			in: engine.SlotInput{Self: "n1", Cluster: dcs.Cluster{Leader: "n1", Members: members("n1")},
				Existing: slots("n2"), Seen: map[string]time.Time{"n2": now.Add(-time.Minute)}, TTL: 30 * time.Minute}},
		{name: "a member gone for longer than the grace period loses its slot",
			in: engine.SlotInput{Self: "n1", Cluster: dcs.Cluster{Leader: "n1", Members: members("n1")},
				Existing: slots("n2"), Seen: map[string]time.Time{"n2": now.Add(-31 * time.Minute)}, TTL: 30 * time.Minute},
			drop: []string{"n2"}},
		{name: "a slot never seen as a member's is not pgimaged's",
			in: engine.SlotInput{Self: "n1", Cluster: dcs.Cluster{Leader: "n1", Members: members("n1")},
				Existing: slots("n2"), TTL: time.Nanosecond}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.in.Now = now
			got := engine.PlanSlots(tc.in)
			if diff := cmp.Diff(tc.create, got.Create, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("create (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.drop, got.Drop, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("drop (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("seen members are remembered, so their slots are dropped once they have been gone long enough", func(t *testing.T) {
		in := engine.SlotInput{Self: "n1", Cluster: dcs.Cluster{Leader: "n1", Members: members("n1", "n2")},
			Existing: slots("n2"), Now: now, TTL: 30 * time.Minute}
		p := engine.PlanSlots(in)
		in.Cluster.Members, in.Seen = members("n1"), p.Seen
		in.Now = now.Add(10 * time.Minute)
		if p = engine.PlanSlots(in); len(p.Drop) != 0 {
			t.Fatalf("dropped %v within the grace period", p.Drop)
		}
		in.Seen, in.Now = p.Seen, now.Add(31*time.Minute)
		if p = engine.PlanSlots(in); !cmp.Equal(p.Drop, []string{"n2"}) {
			t.Fatalf("drop %v, want [n2] after the grace period", p.Drop)
		}
	})
}

func TestPlanSync(t *testing.T) {
	cl := func(sync *dcs.SyncState) dcs.Cluster {
		return dcs.Cluster{Leader: "n1", Sync: sync, Members: []dcs.Member{
			{Name: "n1"}, {Name: "n2"}, {Name: "n3"}, {Name: "n4", Tags: map[string]any{"nosync": true}},
		}}
	}
	rep := func(name, state, sync string, flush int64) pg.Replica {
		return pg.Replica{ApplicationName: name, State: state, SyncState: sync, Flush: flush}
	}
	cases := []struct {
		name   string
		in     engine.SyncInput
		names  string
		narrow *dcs.SyncState
		key    dcs.SyncState
	}{
		{name: "the furthest streaming member is picked; the key waits for PostgreSQL to say so",
			in: engine.SyncInput{Cluster: cl(nil), Replicas: []pg.Replica{
				rep("n2", "streaming", "async", 10), rep("n3", "streaming", "async", 20), rep("n4", "streaming", "async", 30)}},
			names: `"n3"`, narrow: &dcs.SyncState{Leader: "n1", Standbys: []string{}}, key: dcs.SyncState{Leader: "n1", Standbys: []string{}}},
		{name: "reported synchronous under the names in force: the key names it",
			in: engine.SyncInput{Cluster: cl(&dcs.SyncState{Leader: "n1"}), Names: `"n3"`, Replicas: []pg.Replica{
				rep("n2", "streaming", "async", 30), rep("n3", "streaming", "sync", 20)}},
			names: `"n3"`, key: dcs.SyncState{Leader: "n1", Standbys: []string{"n3"}}},
		{name: "the synchronous member stays synchronous though another is further",
			in: engine.SyncInput{Cluster: cl(&dcs.SyncState{Leader: "n1", Standbys: []string{"n3"}}), Names: `"n3"`, Replicas: []pg.Replica{
				rep("n2", "streaming", "async", 50), rep("n3", "streaming", "sync", 20)}},
			names: `"n3"`, key: dcs.SyncState{Leader: "n1", Standbys: []string{"n3"}}},
		{name: "the synchronous member stopped streaming: the key loses it before the names change",
			in: engine.SyncInput{Cluster: cl(&dcs.SyncState{Leader: "n1", Standbys: []string{"n3"}}), Names: `"n3"`, Replicas: []pg.Replica{
				rep("n2", "streaming", "async", 50), rep("n3", "catchup", "potential", 20)}},
			names: `"n2"`, narrow: &dcs.SyncState{Leader: "n1", Standbys: []string{}}, key: dcs.SyncState{Leader: "n1", Standbys: []string{}}},
		{name: "nosync never, and nobody else: no synchronous standby",
			in:    engine.SyncInput{Cluster: cl(&dcs.SyncState{Leader: "n1"}), Replicas: []pg.Replica{rep("n4", "streaming", "async", 50)}},
			names: "", key: dcs.SyncState{Leader: "n1", Standbys: []string{}}},
		{name: "strict mode with no candidate blocks writes",
			in:    engine.SyncInput{Cluster: cl(&dcs.SyncState{Leader: "n1"}), Strict: true},
			names: "*", key: dcs.SyncState{Leader: "n1", Standbys: []string{}}},
		{name: "two synchronous members",
			in: engine.SyncInput{Cluster: cl(&dcs.SyncState{Leader: "n1"}), Count: 2, Replicas: []pg.Replica{
				rep("n2", "streaming", "async", 10), rep("n3", "streaming", "async", 20)}},
			names: `FIRST 2 ("n2", "n3")`, key: dcs.SyncState{Leader: "n1", Standbys: []string{}}},
		{name: "a sync key another leader wrote is rewritten",
			in: engine.SyncInput{Cluster: cl(&dcs.SyncState{Leader: "n2", Standbys: []string{"n1"}}), Names: `"n3"`, Replicas: []pg.Replica{
				rep("n3", "streaming", "sync", 10)}},
			names: `"n3"`, narrow: &dcs.SyncState{Leader: "n1", Standbys: []string{}}, key: dcs.SyncState{Leader: "n1", Standbys: []string{"n3"}}},
		{name: "a member not in the DCS is never synchronous",
			in:    engine.SyncInput{Cluster: cl(&dcs.SyncState{Leader: "n1"}), Replicas: []pg.Replica{rep("pg_basebackup", "streaming", "async", 10)}},
			names: "", key: dcs.SyncState{Leader: "n1", Standbys: []string{}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.in.Self = "n1"
			got := engine.PlanSync(tc.in)
			if got.Names != tc.names {
				t.Errorf("synchronous_standby_names %q, want %q", got.Names, tc.names)
			}
			if diff := cmp.Diff(tc.narrow, got.Narrow); diff != "" {
				t.Errorf("narrowed key (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.key, got.Key); diff != "" {
				t.Errorf("key (-want +got):\n%s", diff)
			}
		})
	}
}

// TestKeepSync: the sync key loses a member before synchronous_standby_names stops naming it,
// and names a member only once PostgreSQL reports it synchronous under the names in force.
func TestKeepSync(t *testing.T) {
	ctx := t.Context()
	st := dcstest.NewMemory().Open("node1")
	cl := dcs.Cluster{Leader: "n1", Members: []dcs.Member{{Name: "n1"}, {Name: "n2"}, {Name: "n3"}}}
	if ok, err := st.CompareAndSwap(ctx, dcs.SyncKey, nil, dcs.SyncState{Leader: "n1", Standbys: []string{"n3"}}.Value()); !ok || err != nil {
		t.Fatal(ok, err)
	}
	read := func() string {
		b, _, err := st.Get(ctx, dcs.SyncKey)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	// n3 stopped streaming: the key drops it, then the names move to n2.
	kept, err := engine.KeepSync(ctx, st, engine.SyncInput{Self: "n1", Cluster: cl, Names: `"n3"`, Count: 1,
		Replicas: []pg.Replica{{ApplicationName: "n2", State: "streaming", SyncState: "async"}}})
	if err != nil || !kept.NamesChanged || kept.Names != `"n2"` {
		t.Fatalf("KeepSync = %+v, %v; want the names to become n2", kept, err)
	}
	if got := read(); got != `{"leader":"n1","sync_standby":null}` {
		t.Fatalf("sync key %s before the names change, want no synchronous standby", got)
	}
	// Under the new names PostgreSQL reports n2 synchronous: the key names it.
	kept, err = engine.KeepSync(ctx, st, engine.SyncInput{Self: "n1", Cluster: cl, Names: `"n2"`, Count: 1,
		Replicas: []pg.Replica{{ApplicationName: "n2", State: "streaming", SyncState: "sync"}}})
	if err != nil || kept.NamesChanged {
		t.Fatalf("KeepSync = %+v, %v; want the key updated alone", kept, err)
	}
	if got := read(); got != `{"leader":"n1","sync_standby":"n2"}` {
		t.Fatalf("sync key %s, want n2", got)
	}
}
