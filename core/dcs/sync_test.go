package dcs_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pgimaged/pgimaged/core/dcs"
)

// TestSyncKeyShape: the sync key reads and writes Patroni's {"leader", "sync_standby"}, the
// standbys comma-separated and null when there is none.
func TestSyncKeyShape(t *testing.T) {
	for raw, want := range map[string]*dcs.SyncState{
		`{"leader":"node1","sync_standby":"node2"}`:       {Leader: "node1", Standbys: []string{"node2"}},
		`{"leader":"node1","sync_standby":"node3,node2"}`: {Leader: "node1", Standbys: []string{"node2", "node3"}},
		`{"leader":"node1","sync_standby":null}`:          {Leader: "node1"},
		`not json`:                                        nil,
	} {
		if diff := cmp.Diff(want, dcs.ParseSync([]byte(raw))); diff != "" {
			t.Errorf("%s (-want +got):\n%s", raw, diff)
		}
	}
	if got := string(dcs.SyncState{Leader: "n1", Standbys: []string{"n3", "n2"}}.Value()); got != `{"leader":"n1","sync_standby":"n2,n3"}` {
		t.Errorf("value %s", got)
	}
	if got := string(dcs.SyncState{Leader: "n1"}.Value()); got != `{"leader":"n1","sync_standby":null}` {
		t.Errorf("value without standbys %s", got)
	}
}

// TestSyncKeyCompareAndSwap: on every backend the sync key lives beside Patroni's keys, is
// written by compare-and-swap only over what was read, and is part of the cluster as read.
func TestSyncKeyCompareAndSwap(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend, e env) {
		ctx := context.Background()
		s := e.open(t)
		first := dcs.SyncState{Leader: "node1", Standbys: []string{"node2"}}.Value()
		if ok, err := s.CompareAndSwap(ctx, dcs.SyncKey, nil, first); err != nil || !ok {
			t.Fatalf("create: %v %v", ok, err)
		}
		if cl := cluster(t, s); !cl.Sync.Has("node2") || cl.Sync.Leader != "node1" {
			t.Fatalf("cluster's sync %+v", cl.Sync)
		}
		next := dcs.SyncState{Leader: "node1"}.Value()
		if ok, err := s.CompareAndSwap(ctx, dcs.SyncKey, next, next); err != nil || ok {
			t.Fatalf("a swap over a value not read: %v %v", ok, err)
		}
		if ok, err := s.CompareAndSwap(ctx, dcs.SyncKey, first, next); err != nil || !ok {
			t.Fatalf("swap: %v %v", ok, err)
		}
		if cl := cluster(t, s); cl.Sync == nil || cl.Sync.Has("node2") {
			t.Fatalf("cluster's sync after the swap %+v", cl.Sync)
		}
		if ok, err := s.CompareAndSwap(ctx, dcs.SyncKey, next, nil); err != nil || !ok {
			t.Fatalf("delete: %v %v", ok, err)
		}
		if cl := cluster(t, s); cl.Sync != nil {
			t.Fatalf("cluster's sync after the delete %+v", cl.Sync)
		}
	})
}
