package main_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgimaged/pgimaged/internal/pgtest"
)

// TestWALEThresholdDecidesTheMethod runs the wale plugin inside pgimaged's chain against the
// WAL-E stand-in, over a real base backup: a recent backup makes the replica; when the WAL to
// replay exceeds threshold_megabytes the method fails on purpose and basebackup runs instead.
func TestWALEThresholdDecidesTheMethod(t *testing.T) {
	p := pgtest.StartPrimary(t, pgtest.Options{})
	p.Exec(t, "CREATE TABLE t AS SELECT g FROM generate_series(1, 1000) g")
	storage := workDir(t)
	if err := os.MkdirAll(filepath.Join(storage, "basebackups_005"), 0o700); err != nil {
		t.Fatal(err)
	}
	p.Basebackup(t, filepath.Join(storage, "basebackups_005", "base_000000010000000000000002_00000040"))
	envdir := filepath.Join(workDir(t), "env")
	if err := os.Mkdir(envdir, 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, envdir, "WALE_S3_PREFIX", "file://"+storage+"\n", 0o600)
	walE := filepath.Join(binDir(t), "wal-e")

	cases := []struct {
		name       string
		thresholdM int
		extraWAL   bool
		wantMethod string
	}{
		{name: "recent backup: the replica comes from WAL-E", thresholdM: 10240, wantMethod: "wal_e"},
		{name: "too much WAL to replay: basebackup instead", thresholdM: 1, extraWAL: true, wantMethod: "basebackup"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.extraWAL {
				p.Exec(t, "INSERT INTO t SELECT g FROM generate_series(1, 200000) g")
			}
			n := replicaOf(t, p, "replica", fmt.Sprintf(`
method "wal_e" {
  tool_path                        = %q
  envdir                           = %q
  threshold_megabytes              = %d
  threshold_backup_size_percentage = 100
}
method "basebackup" { checkpoint = "fast" }`, walE, envdir, tc.thresholdM))
			withMethods(t, n, "wal_e", "basebackup")
			c := cloneFrom(t, n, p)
			if c.Method != tc.wantMethod || !c.Running {
				t.Fatalf("clone made by %q (running %v), want %q; attempts %+v", c.Method, c.Running, tc.wantMethod, c.Attempts)
			}
			if tc.wantMethod == "basebackup" {
				if len(c.Attempts) != 2 || c.Attempts[0].Method != "wal_e" || c.Attempts[0].OK || !strings.Contains(c.Attempts[0].Error, "threshold_megabytes") {
					t.Errorf("the refused WAL-E attempt is not in the history: %+v", c.Attempts)
				}
			}
			conn := connectTCP(t, n.port, p.Superuser, p.SuperPass, "postgres")
			eventually(t, 2*time.Minute, "the replica streams from the primary", func() bool {
				return queryString(t, conn, "SELECT COALESCE((SELECT status FROM pg_stat_wal_receiver), 'none')") == "streaming"
			})
			want := p.QueryString(t, "SELECT count(*)::text FROM t")
			eventually(t, time.Minute, "the replica has every row", func() bool {
				return queryString(t, conn, "SELECT count(*)::text FROM t") == want
			})
		})
	}
}
