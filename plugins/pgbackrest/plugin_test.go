package main

import (
	"bufio"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/pgimaged/pgimaged/internal/testenv"
	"github.com/pgimaged/pgimaged/sdk"
	"github.com/pgimaged/pgimaged/sdk/plugintest"
)

// TestMain runs the tests as the PostgreSQL OS user: pgBackRest and PostgreSQL refuse root.
func TestMain(m *testing.M) { os.Exit(testenv.RunAsPostgres(m)) }

func TestValidate(t *testing.T) {
	clone := func(o sdk.Options) sdk.ValidateRequest {
		return sdk.ValidateRequest{Method: "pgbackrest", Path: sdk.PathClone, Options: o}
	}
	boot := func(o sdk.Options) sdk.ValidateRequest {
		return sdk.ValidateRequest{Method: "pitr", Path: sdk.PathBootstrap, Options: o}
	}
	plugintest.Conformance(t, New(), plugintest.Suite{
		InvalidOptions: []plugintest.InvalidCase{
			{Name: "pg1-path", Request: clone(plugintest.Options("pg1-path=/var/lib/pg")), Option: "pg1-path"},
			{Name: "pg-path", Request: clone(plugintest.Options("pg-path=/var/lib/pg")), Option: "pg-path"},
			{Name: "pg2-path", Request: clone(plugintest.Options("pg2-path=/var/lib/pg")), Option: "pg2-path"},
			{Name: "old db-path", Request: boot(plugintest.Options("db-path=/var/lib/pg")), Option: "db-path"},
			{Name: "empty stanza", Request: clone(plugintest.Options("stanza=")), Option: "stanza"},
			{Name: "stanza as a flag", Request: clone(plugintest.Options("stanza")), Option: "stanza"},
			{Name: "name with dashes", Request: clone(plugintest.Options("--delta")), Option: "--delta"},
			{Name: "type not a recovery type", Request: boot(plugintest.Options("type=timestamp")), Option: "type"},
			{Name: "process-max not a number", Request: clone(plugintest.Options("process-max=many")), Option: "process-max"},
			{Name: "delta not a boolean", Request: clone(plugintest.Options("delta=maybe")), Option: "delta"},
			{Name: "unterminated command", Request: sdk.ValidateRequest{Path: sdk.PathClone, Command: `"/usr/bin/pgbackrest`}, Option: "command"},
		},
		ValidOptions: []plugintest.ValidCase{
			{Name: "nothing", Request: clone(nil)},
			{Name: "pass-through", Request: clone(plugintest.Options("stanza=main", "process-max=4", "repo1-path=/backup", "config=/etc/pgbackrest.conf", "delta", "log-level-console=info"))},
			{Name: "unknown options pass through", Request: clone(plugintest.Options("no-such-option=1"))},
			{Name: "point in time", Request: boot(plugintest.Options("type=time", "target=2026-01-02 03:04:05+00", "target-action=promote", "set=20260101-000000F"))},
			{Name: "command", Request: sdk.ValidateRequest{Path: sdk.PathClone, Command: "/opt/pgbackrest/bin/pgbackrest"}},
		},
	})
}

func TestValidateWarnings(t *testing.T) {
	tests := []struct {
		name   string
		path   sdk.Path
		opts   sdk.Options
		option string // the warning expected; "" for none
	}{
		{name: "clone with type default", path: sdk.PathClone, opts: plugintest.Options("type=default"), option: "type"},
		{name: "clone with type standby", path: sdk.PathClone, opts: plugintest.Options("type=standby")},
		{name: "bootstrap as standby", path: sdk.PathBootstrap, opts: plugintest.Options("type=standby"), option: "type"},
		{name: "target without target-action", path: sdk.PathBootstrap, opts: plugintest.Options("type=time", "target=2026-01-02 03:04:05"), option: "target"},
		{name: "target with target-action", path: sdk.PathBootstrap, opts: plugintest.Options("type=time", "target=2026-01-02 03:04:05", "target-action=promote")},
	}
	c := plugintest.Connect(t, New())
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := c.Validate(context.Background(), sdk.ValidateRequest{Path: tc.path, Options: tc.opts})
			if err != nil {
				t.Fatal(err)
			}
			var warned []string
			for _, d := range resp.Diagnostics {
				if d.Severity == sdk.SeverityError {
					t.Errorf("unexpected error diagnostic: %+v", d)
				}
				warned = append(warned, d.Option)
			}
			switch {
			case tc.option == "" && len(warned) > 0:
				t.Errorf("warnings %q, want none", warned)
			case tc.option != "" && !reflect.DeepEqual(warned, []string{tc.option}):
				t.Errorf("warnings about %q, want one about %q", warned, tc.option)
			}
		})
	}
}

func TestPlanArgv(t *testing.T) {
	cluster := sdk.Cluster{Scope: "batman", DataDir: "/var/lib/postgresql/15/node2", ServerVersion: 150004}
	tests := []struct {
		name      string
		bootstrap bool
		command   string
		opts      sdk.Options
		cluster   sdk.Cluster
		want      string
	}{
		{
			name: "clone with the defaults",
			want: "pgbackrest --stanza=batman --pg1-path=/var/lib/postgresql/15/node2 --delta --type=standby --log-level-console=detail restore",
		},
		{
			name: "clone with options",
			opts: plugintest.Options("stanza=main", "config=/etc/pgbackrest/pgbackrest.conf", "process-max=4", "archive-mode=off"),
			want: "pgbackrest --stanza=main --pg1-path=/var/lib/postgresql/15/node2 --delta --type=standby --log-level-console=detail " +
				"--config=/etc/pgbackrest/pgbackrest.conf --process-max=4 --archive-mode=off restore",
		},
		{
			name:    "clone of PostgreSQL 11 leaves the type to pgBackRest",
			cluster: sdk.Cluster{Scope: "batman", DataDir: "/var/lib/postgresql/11/node2", ServerVersion: 110022},
			want:    "pgbackrest --stanza=batman --pg1-path=/var/lib/postgresql/11/node2 --delta --log-level-console=detail restore",
		},
		{
			name: "the user's type and delta win",
			opts: plugintest.Options("type=default", "delta=false", "log-level-console=info"),
			want: "pgbackrest --stanza=batman --pg1-path=/var/lib/postgresql/15/node2 --type=default --no-delta --log-level-console=info restore",
		},
		{
			name: "list-form delta is not repeated",
			opts: plugintest.Options("delta", "recovery-option=primary_conninfo=host=10.0.0.1"),
			want: "pgbackrest --stanza=batman --pg1-path=/var/lib/postgresql/15/node2 --type=standby --log-level-console=detail " +
				"--delta --recovery-option=primary_conninfo=host=10.0.0.1 restore",
		},
		{
			name: "repeatable options as a list and a map",
			opts: sdk.Options{{Name: "db-include", List: []string{"app", "audit"}}, {Name: "recovery-option", Map: map[string]string{"recovery_target_timeline": "latest", "primary_slot_name": "node2"}}},
			want: "pgbackrest --stanza=batman --pg1-path=/var/lib/postgresql/15/node2 --delta --type=standby --log-level-console=detail " +
				"--db-include=app --db-include=audit --recovery-option=primary_slot_name=node2 --recovery-option=recovery_target_timeline=latest restore",
		},
		{
			name:    "command replaces the executable",
			command: "sudo -u postgres /opt/pgbackrest/bin/pgbackrest",
			want:    "sudo -u postgres /opt/pgbackrest/bin/pgbackrest --stanza=batman --pg1-path=/var/lib/postgresql/15/node2 --delta --type=standby --log-level-console=detail restore",
		},
		{
			name:      "point-in-time bootstrap",
			bootstrap: true,
			opts:      plugintest.Options("type=time", "target=2026-11-22 01:48:05+00", "target-action=promote"),
			want: "pgbackrest --stanza=batman --pg1-path=/var/lib/postgresql/15/node2 --log-level-console=detail " +
				"--type=time --target=2026-11-22 01:48:05+00 --target-action=promote restore",
		},
	}
	c := plugintest.Connect(t, New())
	ctx := context.Background()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cl := tc.cluster
			if cl.DataDir == "" {
				cl = cluster
			}
			var plan sdk.Plan
			var err error
			if tc.bootstrap {
				plan, err = c.PlanBootstrap(ctx, sdk.BootstrapRequest{Command: tc.command, Options: tc.opts, Cluster: cl})
			} else {
				plan, err = c.PlanClone(ctx, sdk.CloneRequest{Command: tc.command, Options: tc.opts, Cluster: cl})
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(plan.Commands) != 1 {
				t.Fatalf("plan has %d commands, want 1: %+v", len(plan.Commands), plan)
			}
			if got := strings.Join(plan.Commands[0].Argv, " "); got != tc.want {
				t.Errorf("argv\n got %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestPlanRefusesTheDataDirectory(t *testing.T) {
	c := plugintest.Connect(t, New())
	cluster := sdk.Cluster{Scope: "batman", DataDir: "/var/lib/postgresql/15/node2", ServerVersion: 150004}
	tests := []struct {
		name    string
		opts    sdk.Options
		refused bool
	}{
		{name: "pg1-path", opts: plugintest.Options("pg1-path=/elsewhere"), refused: true},
		{name: "tablespaces mapped onto the data directory", opts: plugintest.Options("tablespace-map-all=/var/lib/postgresql/15/node2/"), refused: true},
		{name: "a link map naming a path inside it", opts: plugintest.Options("link-map=pg_wal=/var/lib/postgresql/15/node2/wal")},
		{name: "a tablespace map onto the data directory", opts: sdk.Options{{Name: "tablespace-map", Map: map[string]string{"ts1": "/var/lib/postgresql/15/node2"}}}, refused: true},
		{name: "a list naming the data directory", opts: sdk.Options{{Name: "db-include", List: []string{"app", "/var/lib/postgresql/15/node2"}}}, refused: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.PlanClone(context.Background(), sdk.CloneRequest{Options: tc.opts, Cluster: cluster})
			switch {
			case !tc.refused && err != nil:
				t.Fatalf("PlanClone: %v", err)
			case tc.refused && err == nil:
				t.Fatal("PlanClone accepted an option naming the data directory")
			case tc.refused && !errors.Is(err, sdk.ErrInvalidOptions):
				t.Errorf("error %v is not sdk.ErrInvalidOptions", err)
			case tc.refused && !strings.Contains(err.Error(), "data directory"):
				t.Errorf("error %q does not say why", err)
			}
		})
	}
}

func TestNoStanza(t *testing.T) {
	c := plugintest.Connect(t, New())
	_, err := c.PlanClone(context.Background(), sdk.CloneRequest{Cluster: sdk.Cluster{DataDir: "/d", ServerVersion: 150000}})
	if err == nil || !strings.Contains(err.Error(), "stanza") {
		t.Errorf("PlanClone without scope nor stanza returned %v, want an error about the stanza", err)
	}
}

// TestOutputProgress feeds pgBackRest 2.45's real console output at log level detail (recorded in
// testdata) through the output watcher.
func TestOutputProgress(t *testing.T) {
	tests := []struct {
		file    string
		set     string
		logged  int // lines that reach the log (the per-file lines do not)
		lastPct int64
	}{
		{file: "restore-detail.log", set: "20261122-014805F", logged: 7, lastPct: 100},
		{file: "restore-delta.log", set: "20261122-014805F", logged: 5, lastPct: 100},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			rec := &plugintest.Recorder{}
			w := &outputWatcher{rep: rec, quietDetail: true}
			logged := 0
			for _, line := range readLines(t, filepath.Join("testdata", tc.file)) {
				if w.line("stderr", line) {
					logged++
				}
			}
			if logged != tc.logged {
				t.Errorf("%d lines reach the log, want %d", logged, tc.logged)
			}
			if got := w.backupSet(); got != tc.set {
				t.Errorf("backup set %q, want %q", got, tc.set)
			}
			events := rec.ProgressEvents()
			if len(events) < 3 {
				t.Fatalf("only %d progress events: %+v", len(events), events)
			}
			var prev int64
			for _, p := range events {
				if p.Phase != phaseRestore || p.Total != 100 || p.Done <= prev || p.Done > 100 {
					t.Errorf("progress event %+v after %d: want phase %q, total 100, done rising", p, prev, phaseRestore)
				}
				prev = p.Done
			}
			if prev != tc.lastPct {
				t.Errorf("last progress %d%%, want %d%%", prev, tc.lastPct)
			}
		})
	}
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}
