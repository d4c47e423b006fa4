package patroni

import "testing"

// What a dropped setting's value says: a setting left off, or a mode that guards nothing, is
// no loss; one that made the cluster more durable or guarded is.
func TestWeakens(t *testing.T) {
	for _, tc := range []struct {
		path string
		v    any
		want bool
	}{
		{"bootstrap.dcs.synchronous_mode", true, true},
		{"bootstrap.dcs.synchronous_mode", false, false},
		{"bootstrap.dcs.synchronous_mode", "off", false},
		{"bootstrap.dcs.postgresql.use_slots", true, true},
		{"bootstrap.dcs.slots", map[string]any{"s1": map[string]any{"type": "physical"}}, true},
		{"bootstrap.dcs.failsafe_mode", true, true},
		{"postgresql.callbacks", map[string]any{"on_start": "/bin/cb"}, true},
		{"postgresql.callbacks.on_role_change", "/bin/cb", true},
		{"bootstrap.dcs.standby_cluster.restore_command", "cp /a/%f %p", true},
		{"postgresql.authentication.replication.sslmode", "verify-full", true},
		{"postgresql.authentication.replication.sslmode", "prefer", false},
		{"postgresql.authentication.replication.gssencmode", "disable", false},
		{"postgresql.authentication.replication.gssencmode", "require", true},
		{"watchdog", map[string]any{"mode": "off"}, false},
		{"watchdog", map[string]any{"mode": false}, false},
		{"watchdog", map[string]any{"mode": "required"}, true},
		{"watchdog", map[string]any{"device": "/dev/watchdog"}, true}, // Patroni's default mode is automatic
		{"tags.nofailover", true, false},
		{"log.file_num", 4, false},
		{"bootstrap.dcs.retry_timeout", 10, false},
	} {
		if _, got := weakens(tc.path, tc.v); got != tc.want {
			t.Errorf("weakens(%s, %v) = %v, want %v", tc.path, tc.v, got, tc.want)
		}
	}
}
