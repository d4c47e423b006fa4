package dcs_test

import (
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
