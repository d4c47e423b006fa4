package engine

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The WAL receiver's last failure is read from PostgreSQL's log as it writes it: libpq's
// reason included, the failures before the receiver last streamed forgotten.
func TestWALReceiverFailure(t *testing.T) {
	refused := `2026-12-07 01:58:10.963 UTC [23413] FATAL:  could not connect to the primary server: connection to server at "127.0.0.1", port 42249 failed: Connection refused
		Is the server running on that host and accepting TCP/IP connections?`
	password := `2026-12-07 01:59:00.001 UTC [23500] FATAL:  could not connect to the primary server: connection to server at "127.0.0.1", port 42249 failed: FATAL:  password authentication failed for user "replicator"`
	streams := `2026-12-07 01:58:12.000 UTC [23420] LOG:  started streaming WAL from primary at 0/3000000 on timeline 1`
	forked := `2026-12-07 02:00:00.000 UTC [23408] LOG:  new timeline 3 forked off current database system timeline 2 before current recovery point 0/5000148`
	notChild := `2026-12-07 02:00:00.000 UTC [23600] FATAL:  could not start WAL streaming: ERROR:  requested timeline 3 is not a child of this server's history`
	for name, c := range map[string]struct {
		log      []string
		want     string
		diverged bool
	}{
		"no log":                          {nil, "", false},
		"refused":                         {[]string{refused}, `could not connect to the primary server: connection to server at "127.0.0.1", port 42249 failed: Connection refused`, false},
		"refused, then streams":           {[]string{refused, streams}, "", false},
		"streams, then password refused":  {[]string{streams, password}, `could not connect to the primary server: connection to server at "127.0.0.1", port 42249 failed: FATAL:  password authentication failed for user "replicator"`, false},
		"refused before the last standby": {[]string{refused, "2026-12-07 01:58:11 UTC [1] LOG:  entering standby mode"}, "", false},
		"timeline forked off":             {[]string{streams, forked}, strings.TrimSpace(forked[strings.Index(forked, "new timeline"):]), true},
		"timeline not a child":            {[]string{streams, notChild}, "could not start WAL streaming: ERROR:  requested timeline 3 is not a child of this server's history", true},
		"a new timeline followed":         {[]string{streams, "2026-12-07 02:00:00 UTC [1] LOG:  new target timeline is 3"}, "", false},
	} {
		t.Run(name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "postgresql.log")
			if c.log != nil {
				if err := os.WriteFile(file, []byte(strings.Join(c.log, "\n")+"\n"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			got := walReceiverFailure(file, logStderr)
			if got != c.want {
				t.Errorf("walReceiverFailure = %q, want %q", got, c.want)
			}
			if diverged(got) != c.diverged {
				t.Errorf("diverged(%q) = %v, want %v", got, !c.diverged, c.diverged)
			}
		})
	}
}
