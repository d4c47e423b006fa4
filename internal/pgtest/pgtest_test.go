package pgtest_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/pgimaged/pgimaged/core/pg"
	"github.com/pgimaged/pgimaged/core/plugin/host/proc"
	"github.com/pgimaged/pgimaged/internal/pgtest"
	"github.com/pgimaged/pgimaged/internal/testenv"
)

func TestStartPrimary(t *testing.T) {
	var pid int
	var dataDir string
	t.Run("primary", func(t *testing.T) {
		p := pgtest.StartPrimary(t, pgtest.Options{
			DataChecksums: true,
			Parameters:    map[string]string{"archive_mode": "on", "archive_command": "/bin/true"},
		})
		dataDir = p.DataDir
		var ok bool
		if pid, ok = p.Server.Running(); !ok {
			t.Fatal("the primary is not running")
		}

		cases := []struct{ sql, want string }{
			{"SHOW data_checksums", "on"},
			{"SHOW wal_level", "replica"},
			{"SHOW archive_mode", "on"},
			{"SHOW port", strconv.Itoa(p.Port)},
			{"SELECT pg_is_in_recovery()", "f"},
			{"SELECT rolreplication FROM pg_roles WHERE rolname = '" + p.ReplUser + "'", "t"},
			{"SELECT rolsuper FROM pg_roles WHERE rolname = '" + p.Superuser + "'", "t"},
			{"SELECT system_identifier::text FROM pg_control_system()", strconv.FormatUint(p.SystemIdentifier(t), 10)},
		}
		for _, tc := range cases {
			if got := p.QueryString(t, tc.sql); got != tc.want {
				t.Errorf("%s = %q, want %q", tc.sql, got, tc.want)
			}
		}

		p.Exec(t, "CREATE TABLE kept (v text)")
		p.Exec(t, "INSERT INTO kept VALUES ($1)", "survives a restart")
		p.Stop(t)
		if _, ok := p.Server.Running(); ok {
			t.Fatal("Running after Stop")
		}
		p.Start(t)
		if got := p.QueryString(t, "SELECT v FROM kept"); got != "survives a restart" {
			t.Errorf("after restart: %q", got)
		}
		pid, _ = p.Server.Running()

		if got, want := p.ConnURL(), "postgres://127.0.0.1:"+strconv.Itoa(p.Port)+"/postgres"; got != want {
			t.Errorf("ConnURL = %s, want %s", got, want)
		}
		if strings.Contains(p.Conn().DSN(), p.SuperPass) || strings.Contains(p.ReplConn().DSN(), p.ReplPass) {
			t.Error("a DSN carries a password")
		}
	})
	if pid == 0 {
		return
	}
	if processExists(pid) {
		t.Errorf("the primary's postmaster (pid %d) outlived its test", pid)
	}
	if _, err := os.Stat(dataDir); !os.IsNotExist(err) {
		t.Errorf("the primary's data directory outlived its test: %v", err)
	}
}

func TestBasebackup(t *testing.T) {
	p := pgtest.StartPrimary(t, pgtest.Options{})
	dir := filepath.Join(testenv.PostgresUser(t).TempDir(t), "copy")
	p.Basebackup(t, dir)
	id, err := pg.SystemIdentifier(dir)
	if err != nil {
		t.Fatal(err)
	}
	if id != p.SystemIdentifier(t) {
		t.Errorf("copy's system identifier %d, primary's %d", id, p.SystemIdentifier(t))
	}
}

func TestFreePortNeverRepeats(t *testing.T) {
	seen := map[int]bool{}
	for range 50 {
		port := pgtest.FreePort(t)
		if seen[port] {
			t.Fatalf("port %d handed out twice", port)
		}
		seen[port] = true
	}
}

// processExists reports whether pid is a live, non-zombie process.
func processExists(pid int) bool {
	p, ok := proc.Read(pid)
	return ok && p.Running()
}
