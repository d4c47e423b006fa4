package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgimaged/pgimaged/core/pg"
	"github.com/pgimaged/pgimaged/internal/pgtest"
	"github.com/pgimaged/pgimaged/sdk"
	"github.com/pgimaged/pgimaged/sdk/plugintest"
)

// repository is a real pgBackRest repository holding a full backup of a real primary whose WAL
// is archived into it (see pgtest.BackRest).
type repository struct{ *pgtest.BackRest }

func newRepository(t *testing.T) *repository { return &repository{pgtest.NewBackRest(t)} }

func (r *repository) cluster(dir string) sdk.Cluster {
	return sdk.Cluster{Scope: r.Stanza, Name: "node2", DataDir: dir, BinDir: r.Primary.BinDir}
}

// start starts a restored data directory on a free port, with archiving off, and stops it when
// the test ends.
func (r *repository) start(t *testing.T, dir string) *pg.Server { return r.Primary.StartCopy(t, dir) }

func TestWithRepository(t *testing.T) {
	r := newRepository(t)
	c := plugintest.Connect(t, New())
	ctx := context.Background()
	config := sdk.Option{Name: "config", Value: r.Config}

	t.Run("clone restores a standby", func(t *testing.T) {
		dir := r.User.DataDir(t)
		res, rec := plugintest.AssertClone(t, c, sdk.CloneRequest{
			Method: "pgbackrest", Options: sdk.Options{config}, Cluster: r.cluster(dir),
		})
		if !res.Standby || !res.KeepExistingRecovery || len(res.RecoverySettings) != 0 {
			t.Errorf("result %+v: want Standby and KeepExistingRecovery, no recovery settings", res)
		}
		if !strings.Contains(res.Summary, "backup set") {
			t.Errorf("summary %q does not name the backup set", res.Summary)
		}
		for _, f := range []string{"PG_VERSION", "global/pg_control", "standby.signal"} {
			if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
				t.Errorf("the restored data directory lacks %s: %v", f, err)
			}
		}
		auto, err := os.ReadFile(filepath.Join(dir, "postgresql.auto.conf"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(auto), "restore_command = '"+r.Bin+" ") && !strings.Contains(string(auto), "restore_command = 'pgbackrest ") {
			t.Errorf("postgresql.auto.conf has no pgBackRest restore_command:\n%s", auto)
		}
		if !strings.Contains(string(auto), "--stanza="+r.Stanza) || !strings.Contains(string(auto), "--pg1-path="+dir) {
			t.Errorf("restore_command does not name the stanza and the new data directory:\n%s", auto)
		}
		assertProgress(t, rec)

		t.Run("again over the kept directory, as keep_data does", func(t *testing.T) {
			_, rec := plugintest.AssertClone(t, c, sdk.CloneRequest{
				Method: "pgbackrest", Options: sdk.Options{config}, Cluster: r.cluster(dir),
			})
			assertProgress(t, rec)
		})

		t.Run("the standby starts and replays the archive", func(t *testing.T) {
			r.Primary.Exec(t, "CREATE TABLE after_backup AS SELECT 42 AS answer")
			r.SwitchAndArchive(t)
			s := r.start(t, dir)
			pgtest.WaitFor(t, s, "SELECT count(*) FROM pg_class WHERE relname = 'after_backup' AND pg_is_in_recovery()", "1")
		})
	})

	t.Run("bootstrap restores to a point in time", func(t *testing.T) {
		r.Primary.Exec(t, "CREATE TABLE pitr (id int, note text)")
		r.Primary.Exec(t, "INSERT INTO pitr VALUES (1, 'before the target')")
		target := r.Primary.QueryString(t, "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'")
		r.Primary.Exec(t, "SELECT pg_sleep(0.01)") // no commit can share the target's microsecond
		r.Primary.Exec(t, "INSERT INTO pitr VALUES (2, 'after the target')")
		r.SwitchAndArchive(t)

		dir := r.User.DataDir(t)
		res, rec := plugintest.AssertBootstrap(t, c, sdk.BootstrapRequest{
			Method: "pitr", Cluster: r.cluster(dir),
			Options: sdk.Options{config, {Name: "type", Value: "time"}, {Name: "target", Value: target}, {Name: "target-action", Value: "promote"}},
		})
		if res.Standby || !res.KeepExistingRecovery {
			t.Errorf("result %+v: want KeepExistingRecovery and not Standby", res)
		}
		if _, err := os.Stat(filepath.Join(dir, "recovery.signal")); err != nil {
			t.Errorf("pgBackRest wrote no recovery.signal: %v", err)
		}
		assertProgress(t, rec)

		s := r.start(t, dir)
		wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		if err := s.WaitPromoted(wctx); err != nil {
			t.Fatal(err)
		}
		conn, err := s.Connect(wctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		var ids []int
		rows, err := conn.Query(wctx, "SELECT id FROM pitr ORDER BY id")
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var id int
			if err := rows.Scan(&id); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(ids) != "[1]" {
			t.Errorf("rows after the point-in-time restore: %v, want only the row committed before the target, [1]", ids)
		}
	})

	t.Run("failures", func(t *testing.T) {
		tests := []struct {
			name    string
			command string
			opts    sdk.Options
			scope   string
			expect  []string // in the error message
		}{
			{name: "unknown stanza", scope: "robin", opts: sdk.Options{config},
				expect: []string{`stanza "robin"`, "has stanza-create been run", "no backup set found to restore"}},
			{name: "stanza without a backup", opts: sdk.Options{config, {Name: "stanza", Value: "empty"}},
				expect: []string{`stanza "empty"`, "no backup set found to restore"}},
			{name: "option pgBackRest does not know", opts: sdk.Options{config, {Name: "no-such-option", Value: "1"}},
				expect: []string{"invalid option '--no-such-option=1'"}},
			{name: "backup set that does not exist", opts: sdk.Options{config, {Name: "set", Value: "20000101-000000F"}},
				expect: []string{"20000101-000000F"}},
			{name: "pgBackRest missing", command: "/nonexistent/pgbackrest", opts: sdk.Options{config},
				expect: []string{"/nonexistent/pgbackrest"}},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				cl := r.cluster(r.User.DataDir(t))
				if tc.scope != "" {
					cl.Scope = tc.scope
				}
				_, err := c.Clone(ctx, sdk.CloneRequest{Method: "pgbackrest", Command: tc.command, Options: tc.opts, Cluster: cl}, &plugintest.Recorder{})
				if !errors.Is(err, sdk.ErrMethodFailed) {
					t.Fatalf("Clone returned %v, want an error that is sdk.ErrMethodFailed", err)
				}
				for _, want := range tc.expect {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not mention %q", err, want)
					}
				}
			})
		}
	})
}

func assertProgress(t *testing.T, rec *plugintest.Recorder) {
	t.Helper()
	events := rec.ProgressEvents()
	if len(events) < 3 {
		t.Fatalf("only %d progress events, want a start, per-file progress and an end: %+v", len(events), events)
	}
	last := events[len(events)-1]
	if events[0] != (sdk.Progress{Phase: phaseRestore, Total: 100, Unit: sdk.UnitPercent}) || last != (sdk.Progress{Phase: phaseRestore, Done: 100, Total: 100, Unit: sdk.UnitPercent}) {
		t.Errorf("progress runs from %+v to %+v, want 0 to 100 percent in phase %q", events[0], last, phaseRestore)
	}
	for _, l := range rec.Logs() {
		if strings.Contains(l.Message, "DETAIL: restore file") {
			t.Errorf("a per-file line reached the log: %q", l.Message)
			break
		}
	}
}
