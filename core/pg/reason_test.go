package pg_test

import (
	"testing"

	"github.com/pgimaged/pgimaged/core/pg"
)

// StartReason picks PostgreSQL's account of a failed start out of what one start logged.
func TestStartReason(t *testing.T) {
	const at = "2026-05-01 10:00:00.000 UTC [4242] "
	for _, tc := range []struct {
		name  string
		lines []string
		want  string
	}{
		{"port in use", []string{
			at + "LOG:  starting PostgreSQL 15.6 on x86_64-pc-linux-gnu",
			at + `LOG:  could not bind IPv4 address "127.0.0.1": Address already in use`,
			at + "HINT:  Is another postmaster already running on port 5432? If not, wait a few seconds and retry.",
			at + `WARNING:  could not create listen socket for "127.0.0.1"`,
			at + "FATAL:  could not create any TCP/IP sockets",
			at + "LOG:  database system is shut down",
		}, `could not bind IPv4 address "127.0.0.1": Address already in use; could not create listen socket for "127.0.0.1"; could not create any TCP/IP sockets`},
		{"bad parameter, no prefix", []string{
			`LOG:  invalid value for parameter "max_connections": "lots"`,
			`FATAL:  configuration file "/data/postgresql.conf" contains errors`,
		}, `invalid value for parameter "max_connections": "lots"; configuration file "/data/postgresql.conf" contains errors`},
		{"only the first fatal", []string{
			at + "LOG:  listening on IPv4 address \"127.0.0.1\", port 5432",
			at + "FATAL:  data directory \"/data\" has invalid permissions",
			at + "DETAIL:  Permissions should be u=rwx (0700) or u=rwx,g=rx (0750).",
			at + "FATAL:  the database system is shutting down",
		}, `data directory "/data" has invalid permissions`},
		{"no fatal", []string{at + "LOG:  starting PostgreSQL 15.6", at + "WARNING:  something odd"}, ""},
		{"nothing logged", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := pg.StartReason(tc.lines); got != tc.want {
				t.Errorf("StartReason:\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

// EnvironmentCause tells a start that failed for a cause outside the data directory from one
// that failed for the data directory or its configuration.
func TestEnvironmentCause(t *testing.T) {
	for _, tc := range []struct {
		reason string
		want   bool
	}{
		{`could not bind IPv4 address "127.0.0.1": Address already in use; could not create any TCP/IP sockets`, true},
		{`could not create shared memory segment: Cannot allocate memory`, true},
		{`could not create lock file "/run/postgresql/.s.PGSQL.5432.lock": Permission denied`, true},
		{`invalid value for parameter "max_connections": "lots"; configuration file "/data/postgresql.conf" contains errors`, false},
		{`could not locate a valid checkpoint record`, false},
		{`data directory "/data" has invalid permissions`, false},
		{"", false},
	} {
		if got := pg.EnvironmentCause(tc.reason); got != tc.want {
			t.Errorf("EnvironmentCause(%q) = %v, want %v", tc.reason, got, tc.want)
		}
	}
}
