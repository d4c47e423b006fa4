package config_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pgimaged/pgimaged/core/config"
)

// TestReplicationSettings: use_slots is on unless written off; synchronous replication is off
// unless written, with one synchronous member by default; Patroni's spellings of booleans.
func TestReplicationSettings(t *testing.T) {
	for src, want := range map[string]config.Replication{
		"": {UseSlots: true, MemberSlotsTTL: 30 * time.Minute, SynchronousNodeCount: 1},
		"use_slots = false\nmember_slots_ttl = \"10s\"\n": {MemberSlotsTTL: 10 * time.Second, SynchronousNodeCount: 1},
		"synchronous_mode = \"on\"\nsynchronous_node_count = 2\n": {UseSlots: true, MemberSlotsTTL: 30 * time.Minute,
			SynchronousMode: true, SynchronousNodeCount: 2},
		"synchronous_mode = true\nsynchronous_mode_strict = 1\n": {UseSlots: true, MemberSlotsTTL: 30 * time.Minute,
			SynchronousMode: true, SynchronousModeStrict: true, SynchronousNodeCount: 1},
	} {
		cfg, diags := config.Parse("node1.hcl", []byte("scope = \"s\"\nname = \"n\"\ndata_dir = \"/data\"\n"+src))
		if diags.HasErrors() {
			t.Fatalf("%q: %v", src, diags)
		}
		if diff := cmp.Diff(want, cfg.Replication); diff != "" {
			t.Errorf("%q (-want +got):\n%s", src, diff)
		}
	}
}
