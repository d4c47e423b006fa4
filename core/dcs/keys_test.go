package dcs_test

import (
	"strings"
	"testing"

	"github.com/pgimaged/pgimaged/core/dcs"
)

// Permanent keys outlive the session that wrote them, and stay out of Patroni's keys.
func TestPermanentKeys(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend, e env) {
		ctx := t.Context()
		w := e.open(t)
		key := dcs.ReinitKeyDir + "node2"
		if err := w.Put(ctx, key, []byte(`{"methods":["basebackup"]}`)); err != nil {
			t.Fatalf("Put: %v", err)
		}
		if err := w.Put(ctx, "members/node2", []byte("x")); err == nil {
			t.Errorf("Put wrote a key outside %s", dcs.KeyPrefix)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		r := e.open(t)
		v, ok, err := r.Get(ctx, key)
		if err != nil || !ok || string(v) != `{"methods":["basebackup"]}` {
			t.Fatalf("Get after the writer closed = %q, %v, %v", v, ok, err)
		}
		if len(cluster(t, r).Members) != 0 {
			t.Errorf("a permanent key shows as a member")
		}
		if err := r.Delete(ctx, key); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		if err := r.Delete(ctx, key); err != nil {
			t.Errorf("Delete of an absent key: %v", err)
		}
		if _, ok, err := r.Get(ctx, key); ok || err != nil {
			t.Errorf("Get after Delete = %v, %v", ok, err)
		}
	})
}

// List names the permanent keys directly under a directory, sorted, on every backend.
func TestListPermanentKeys(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend, e env) {
		ctx := t.Context()
		st := e.open(t)
		l, ok := st.(dcs.Lister)
		if !ok {
			t.Fatalf("the %s store is no Lister", b.name)
		}
		dir := strings.TrimSuffix(dcs.ReinitKeyDir, "/")
		if names, err := l.List(ctx, dir); err != nil || len(names) != 0 {
			t.Fatalf("List of an empty directory = %q, %v", names, err)
		}
		for _, k := range []string{dcs.ReinitKeyDir + "node3", dcs.ReinitKeyDir + "node1", dcs.HistoryKeyDir + "node2"} {
			if err := st.Put(ctx, k, []byte("{}")); err != nil {
				t.Fatal(err)
			}
		}
		if err := st.PutMember(ctx, dcs.Member{Name: "node9", State: dcs.StateRunning, Role: dcs.RoleReplica}); err != nil {
			t.Fatal(err)
		}
		names, err := l.List(ctx, dir)
		if err != nil || strings.Join(names, ",") != "node1,node3" {
			t.Errorf("List(%s) = %q, %v; want node1,node3", dir, names, err)
		}
		if _, err := l.List(ctx, "members"); err == nil {
			t.Errorf("List outside %s accepted", dcs.KeyPrefix)
		}
	})
}
