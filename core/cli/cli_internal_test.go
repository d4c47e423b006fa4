package cli

import (
	"bytes"
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/pgimaged/pgimaged/core/config"
	"github.com/pgimaged/pgimaged/sdk"
)

func TestPatroniArgumentsAreAccepted(t *testing.T) {
	var errb bytes.Buffer
	e := &env{stdout: &bytes.Buffer{}, stderr: &errb}
	fs := flag.NewFlagSet("clone", flag.ContinueOnError)
	fs.SetOutput(&errb)
	scope := fs.String("scope", "", "")
	datadir := fs.String("datadir", "", "")
	role := fs.String("role", "", "")
	connstring := fs.String("connstring", "", "")
	// What Patroni runs for a replica method: its four parameters plus the method's own.
	args := []string{"--scope=batman", "--role=replica", "--datadir=/data/x", "--connstring=host=10.0.0.1 port=5432", "--envdir=/etc/wal-e.d/env", "--use_iam=1"}
	if code, ok := parseFlags(e, fs, args, true); !ok {
		t.Fatalf("parse failed (%d): %s", code, errb.String())
	}
	if *scope != "batman" || *datadir != "/data/x" || *role != "replica" || *connstring != "host=10.0.0.1 port=5432" {
		t.Errorf("parsed %q %q %q %q", *scope, *datadir, *role, *connstring)
	}
	if !strings.Contains(errb.String(), "ignoring unknown option --envdir") || !strings.Contains(errb.String(), "--use_iam") {
		t.Errorf("unknown options not reported: %s", errb.String())
	}
	// Without leniency an unknown option is a usage error.
	fs2 := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs2.SetOutput(&bytes.Buffer{})
	if _, ok := parseFlags(e, fs2, []string{"--bogus=1"}, false); ok {
		t.Error("an unknown option was accepted")
	}
}

func TestOneShotSource(t *testing.T) {
	cfg := &config.Config{}
	cfg.PostgreSQL.Replication = config.Credentials{Username: "replicator", Password: "from-config"}
	cases := []struct {
		name, in, wantDSN, wantPassword string
	}{
		{"URL without user takes the replication role", "postgres://10.0.0.1:5433/postgres", "host=10.0.0.1 port=5433 user=replicator dbname=postgres", "from-config"},
		{"Patroni's keyword string", "dbname=postgres user=replicator host=10.0.0.2 port=5432", "host=10.0.0.2 port=5432 user=replicator dbname=postgres", "from-config"},
		{"a password in the string goes to pgpass, not the DSN", "postgres://other:pw-in-url@10.0.0.3/postgres", "host=10.0.0.3 user=other dbname=postgres", "pw-in-url"},
		{"another user does not get the replication password", "host=10.0.0.4 user=other", "host=10.0.0.4 user=other dbname=postgres", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src, err := oneShotSource(cfg, tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if got := src.Conn.DSN(); got != tc.wantDSN {
				t.Errorf("DSN %q, want %q", got, tc.wantDSN)
			}
			if src.Password != tc.wantPassword {
				t.Errorf("password %q, want %q", src.Password, tc.wantPassword)
			}
		})
	}
	if src, err := oneShotSource(cfg, ""); err != nil || src != nil {
		t.Errorf("empty connstring: %v %v, want no source", src, err)
	}
}

func TestShellJoin(t *testing.T) {
	// ^ is a pipe to the Bourne shell and a glob to zsh: quoted like every character outside
	// the plain ones.
	got := shellJoin([]string{"/usr/bin/pg_basebackup", "--pgdata=/d", "--dbname=host=x port=5432", "--label=it's", "^x"})
	want := `/usr/bin/pg_basebackup --pgdata=/d '--dbname=host=x port=5432' '--label=it'\''s' '^x'`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestProgressDescription(t *testing.T) {
	cases := []struct {
		name    string
		p       sdk.Progress
		elapsed time.Duration
		moved   int64
		want    string
	}{
		{"start", sdk.Progress{Phase: "copy", Done: 0, Total: 1 << 30}, 0, 0, "basebackup (copy) 0 B of 1.0 GiB"},
		{"running", sdk.Progress{Phase: "copy", Done: 512 << 20, Total: 1 << 30}, 4 * time.Second, 512 << 20, "basebackup (copy) 512.0 MiB of 1.0 GiB, 128.0 MiB/s, 4s left"},
		{"unknown total", sdk.Progress{Done: 3 << 20}, 2 * time.Second, 2 << 20, "basebackup 3.0 MiB, 1.0 MiB/s"},
		{"under a second: no rate yet", sdk.Progress{Phase: "copy", Done: 1 << 30, Total: 1 << 30}, 300 * time.Millisecond, 1 << 30, "basebackup (copy) 1.0 GiB of 1.0 GiB"},
		{"percent", sdk.Progress{Phase: "restore", Done: 40, Total: 100, Unit: sdk.UnitPercent}, 4 * time.Second, 40, "basebackup (restore) 6s left"}, // the bar draws the percentage
		{"files", sdk.Progress{Phase: "fetch", Done: 12, Total: 48, Unit: sdk.UnitFiles}, 4 * time.Second, 12, "basebackup (fetch) 12 of 48 files, 3.0 files/s, 12s left"},
	}
	for _, tc := range cases {
		if got := describe("basebackup", tc.p, tc.elapsed, tc.moved); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}
