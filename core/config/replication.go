package config

import (
	"time"
)

// DefaultMemberSlotsTTL is how long the primary keeps the replication slot of a member whose
// member key is gone (Patroni's member_slots_ttl): long enough for a member that restarts, or
// whose host reboots, to find the WAL it lacks still there.
const DefaultMemberSlotsTTL = 30 * time.Minute

// Replication is how the primary serves its replicas, with Patroni's cluster settings of the
// same names (written at the top level of the file, beside maximum_lag_on_failover).
type Replication struct {
	// UseSlots (use_slots, default true): the primary keeps a physical replication slot for
	// every member, and replicas stream through it (primary_slot_name).
	UseSlots bool
	// MemberSlotsTTL (member_slots_ttl) is how long a member's slot outlives its member key.
	MemberSlotsTTL time.Duration
	// SynchronousMode (synchronous_mode): the primary names healthy streaming members in
	// synchronous_standby_names and publishes them in the DCS sync key; only those may take
	// over.
	SynchronousMode bool
	// SynchronousModeStrict (synchronous_mode_strict): with no synchronous standby the primary
	// blocks writes (synchronous_standby_names = '*') rather than run alone.
	SynchronousModeStrict bool
	// SynchronousNodeCount (synchronous_node_count, default 1) is how many members are
	// synchronous at once.
	SynchronousNodeCount int
}

// replication reads the settings of [Replication].
func (d *decoder) replication(s *fileSchema) {
	r := &d.cfg.Replication
	if b, ok := d.boolean(s.UseSlots, "use_slots"); ok {
		r.UseSlots = b
	}
	r.MemberSlotsTTL = d.duration(s.SlotsTTL, "member_slots_ttl")
	if b, ok := d.boolean(s.SyncMode, "synchronous_mode"); ok {
		r.SynchronousMode = b
	}
	if b, ok := d.boolean(s.SyncStrict, "synchronous_mode_strict"); ok {
		r.SynchronousModeStrict = b
	}
	switch n := s.SyncCount; {
	case n == nil || !d.ok("synchronous_node_count"):
	case *n < 1 || *n != float64(int(*n)):
		d.fail("synchronous_node_count", "Invalid synchronous_node_count", "synchronous_node_count is how many members are synchronous at once: a whole number, 1 or more.")
	default:
		r.SynchronousNodeCount = int(*n)
	}
	if r.SynchronousModeStrict && !r.SynchronousMode {
		d.fail("synchronous_mode_strict", "synchronous_mode_strict without synchronous_mode",
			"synchronous_mode_strict only has a meaning with synchronous_mode = true; write both.")
	}
}

// replicationDefaults sets the defaults of [Replication].
func (c *Config) replicationDefaults() {
	r := &c.Replication
	if _, set := c.Ranges["use_slots"]; !set {
		r.UseSlots = true
	}
	setDefault(&r.MemberSlotsTTL, DefaultMemberSlotsTTL)
	if r.SynchronousNodeCount == 0 {
		r.SynchronousNodeCount = 1
	}
}
