package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/status"

	"github.com/pgimaged/pgimaged/sdk"
	"github.com/pgimaged/pgimaged/sdk/plugintest"
)

// reserved are the keys pgimaged reads itself; they must never reach a command line.
var reserved = []string{"command", "plugin", "no_params", "no_master", "no_leader", "keep_data", "attempts",
	"retry_wait", "timeout", "recovery_conf", "keep_existing_recovery_conf"}

// install copies testdata/<fixture> into dir as an executable called name and returns its path.
func install(t *testing.T, dir, fixture, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", fixture))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// recording is what testdata/record.sh saw.
type recording struct {
	argv0 string
	args  []string
	env   map[string]string
}

func readRecording(t *testing.T, dir string) recording {
	t.Helper()
	var r recording
	b, err := os.ReadFile(filepath.Join(dir, "argv0"))
	if err != nil {
		t.Fatalf("the script did not run: %v", err)
	}
	r.argv0 = string(b)
	b, err = os.ReadFile(filepath.Join(dir, "argv"))
	if err != nil {
		t.Fatal(err)
	}
	r.args = splitNUL(b)
	b, err = os.ReadFile(filepath.Join(dir, "env"))
	if err != nil {
		t.Fatal(err)
	}
	r.env = map[string]string{}
	for _, kv := range splitNUL(b) {
		k, v, _ := strings.Cut(kv, "=")
		r.env[k] = v
	}
	return r
}

func splitNUL(b []byte) []string {
	out := []string{}
	for _, f := range bytes.Split(b, []byte{0}) {
		out = append(out, string(f))
	}
	return out[:len(out)-1] // every argument ends with NUL
}

// fixture is a directory holding the recording script as "restore" and another "bin" directory
// on PATH holding it as patroni_wale_restore.
type fixture struct {
	dir, record, bin, dataDir string
	env                       map[string]string
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	f := fixture{dir: t.TempDir(), bin: t.TempDir(), dataDir: t.TempDir()}
	f.record = install(t, f.dir, "record.sh", "restore")
	install(t, f.bin, "record.sh", "patroni_wale_restore")
	f.env = map[string]string{
		"RECORD_DIR": f.dir,
		"PGPASSFILE": filepath.Join(f.dir, "pgpass"),
		"PATH":       f.bin + string(filepath.ListSeparator) + os.Getenv("PATH"),
	}
	return f
}

// ran returns what the recording script saw, and fails the test unless its arguments were want,
// where "=D" stands for "=" and the data directory.
func (f fixture) ran(t *testing.T, want []string) recording {
	t.Helper()
	got := readRecording(t, f.dir)
	args := make([]string, len(want))
	for i, a := range want {
		args[i] = strings.ReplaceAll(a, "=D", "="+f.dataDir)
	}
	if !reflect.DeepEqual(got.args, args) {
		t.Errorf("arguments\n got %q\nwant %q", got.args, args)
	}
	return got
}

func TestCloneArgv(t *testing.T) {
	const conn = "host=10.0.0.1 port=5432 user=replicator dbname=postgres"
	tests := []struct {
		name     string
		command  string // "%s" stands for the recording script's path
		noParams bool
		conn     string
		options  sdk.Options
		want     []string // arguments after the program; "D" stands for the data directory
		program  string   // the program expected, when not the recording script
	}{
		{
			name:    "map form",
			command: "%s",
			conn:    conn,
			options: sdk.Options{{Name: "max-rate", Value: "100M"}, {Name: "checkpoint", Value: "fast"}},
			want: []string{"--max-rate=100M", "--checkpoint=fast",
				"--scope=batman", "--role=replica", "--datadir=D", "--connstring=" + conn},
		},
		{
			name:    "list form with flags",
			command: "%s",
			conn:    conn,
			options: sdk.Options{{Name: "verbose", Flag: true}, {Name: "max-rate", Value: "100M"}, {Name: "fast", Flag: true}},
			want: []string{"--verbose", "--max-rate=100M", "--fast",
				"--scope=batman", "--role=replica", "--datadir=D", "--connstring=" + conn},
		},
		{
			name:    "command words come first",
			command: `%s --from "s3://bucket/my backups" 'it''s'`,
			conn:    conn,
			options: sdk.Options{{Name: "envdir", Value: "/etc/wal-e.d/env"}},
			want: []string{"--from", "s3://bucket/my backups", "its", "--envdir=/etc/wal-e.d/env",
				"--scope=batman", "--role=replica", "--datadir=D", "--connstring=" + conn},
		},
		{
			name:    "no source gives an empty connstring",
			command: "%s",
			want:    []string{"--scope=batman", "--role=replica", "--datadir=D", "--connstring="},
		},
		{
			name:    "pgimaged's parameters win over the user's",
			command: "%s",
			conn:    conn,
			options: sdk.Options{{Name: "scope", Value: "other"}, {Name: "datadir", Value: "/elsewhere"},
				{Name: "role", Value: "master"}, {Name: "connstring", Value: "host=evil"}, {Name: "keep", Value: "1"}},
			want: []string{"--keep=1", "--scope=batman", "--role=replica", "--datadir=D", "--connstring=" + conn},
		},
		{
			name:     "no_params passes only the user's options",
			command:  "%s",
			noParams: true,
			conn:     conn,
			options:  sdk.Options{{Name: "scope", Value: "mine"}, {Name: "verbose", Flag: true}},
			want:     []string{"--scope=mine", "--verbose"},
		},
		{
			name:     "no_params and no options",
			command:  "%s",
			noParams: true,
			conn:     conn,
			want:     []string{},
		},
		{
			name:    "values keep spaces, quotes and newlines",
			command: "%s",
			conn:    conn,
			options: sdk.Options{{Name: "label", Value: "it's a \"test\"\nline two"}, {Name: "empty", Value: ""}},
			want: []string{"--label=it's a \"test\"\nline two", "--empty=",
				"--scope=batman", "--role=replica", "--datadir=D", "--connstring=" + conn},
		},
		{
			name:    "a list passes one option per element, a map one per entry",
			command: "%s",
			conn:    conn,
			options: sdk.Options{{Name: "include", List: []string{"db1", "db 2"}}, {Name: "none", List: []string{}},
				{Name: "env", Map: map[string]string{"N": "2", "AWS_REGION": "eu-west-1"}}, {Name: "nomap", Map: map[string]string{}},
				{Name: "verbose", Flag: true}},
			want: []string{"--include=db1", "--include=db 2", "--env=AWS_REGION=eu-west-1", "--env=N=2", "--verbose",
				"--scope=batman", "--role=replica", "--datadir=D", "--connstring=" + conn},
		},
		{
			name:    "Patroni's wal_e example",
			command: "patroni_wale_restore",
			conn:    conn,
			options: sdk.Options{{Name: "envdir", Value: "/etc/wal-e.d/env"}, {Name: "use_iam", Value: "1"}},
			want: []string{"--envdir=/etc/wal-e.d/env", "--use_iam=1",
				"--scope=batman", "--role=replica", "--datadir=D", "--connstring=" + conn},
			program: "patroni_wale_restore",
		},
	}
	c := plugintest.Connect(t, New())
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			req := sdk.CloneRequest{
				Method:     "custom",
				Command:    strings.ReplaceAll(tc.command, "%s", f.record),
				NoParams:   tc.noParams,
				Options:    tc.options,
				Cluster:    sdk.Cluster{Scope: "batman", Name: "node2", DataDir: f.dataDir},
				ConnString: tc.conn,
				Env:        f.env,
			}
			plan, err := c.PlanClone(context.Background(), req)
			if err != nil {
				t.Fatalf("PlanClone: %v", err)
			}
			res, _ := plugintest.AssertClone(t, c, req)
			if res.Summary == "" {
				t.Errorf("the result has no summary")
			}
			got := f.ran(t, tc.want)
			wantProgram := f.record
			if tc.program != "" {
				wantProgram = filepath.Join(f.bin, tc.program)
			}
			if got.argv0 != wantProgram {
				t.Errorf("ran %q, want %q", got.argv0, wantProgram)
			}
			if len(plan.Commands) != 1 {
				t.Fatalf("plan has %d commands, want 1: %+v", len(plan.Commands), plan)
			}
			if pa := plan.Commands[0].Argv; pa[0] != wantProgram || !reflect.DeepEqual(pa[1:], got.args) {
				t.Errorf("the plan's argv differs from what ran\nplan %q\n ran %q %q", pa, got.argv0, got.args)
			}
			for _, a := range got.args {
				for _, r := range reserved {
					if strings.HasPrefix(a, "--"+r+"=") || a == "--"+r {
						t.Errorf("reserved key %q reached the command line: %q", r, a)
					}
				}
			}
			wantEnv := map[string]string{
				"PGIMAGED_SCOPE": "batman", "PGIMAGED_DATADIR": f.dataDir, "PGIMAGED_ROLE": "replica",
				"PGIMAGED_CONNSTRING": tc.conn, "PGPASSFILE": f.env["PGPASSFILE"],
			}
			for k, v := range wantEnv {
				if got.env[k] != v {
					t.Errorf("environment %s=%q, want %q", k, got.env[k], v)
				}
			}
		})
	}
}

func TestBootstrapArgv(t *testing.T) {
	tests := []struct {
		name     string
		command  string
		noParams bool
		options  sdk.Options
		want     []string
	}{
		{
			name:    "defaults then the user's options",
			command: "%s --fast",
			options: sdk.Options{{Name: "target-time", Value: "2026-01-01 00:00:00+00"}, {Name: "verify", Flag: true}},
			want:    []string{"--fast", "--scope=batman", "--datadir=D", "--target-time=2026-01-01 00:00:00+00", "--verify"},
		},
		{
			name:    "no options",
			command: "%s",
			want:    []string{"--scope=batman", "--datadir=D"},
		},
		{
			name:     "no_params",
			command:  "%s",
			noParams: true,
			options:  sdk.Options{{Name: "stanza", Value: "main"}},
			want:     []string{"--stanza=main"},
		},
		{
			name:    "user scope and datadir are never passed",
			command: "%s",
			options: sdk.Options{{Name: "datadir", Value: "/elsewhere"}, {Name: "scope", Value: "x"}, {Name: "a", Value: "b"}},
			want:    []string{"--scope=batman", "--datadir=D", "--a=b"},
		},
		{
			name:     "user scope and datadir are never passed, even with no_params",
			command:  "%s",
			noParams: true,
			options:  sdk.Options{{Name: "datadir", Value: "/elsewhere"}, {Name: "a", Value: "b"}},
			want:     []string{"--a=b"},
		},
	}
	c := plugintest.Connect(t, New())
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			req := sdk.BootstrapRequest{
				Method:    "from_backup",
				Command:   strings.ReplaceAll(tc.command, "%s", f.record),
				NoParams:  tc.noParams,
				Options:   tc.options,
				Cluster:   sdk.Cluster{Scope: "batman", Name: "node1", DataDir: f.dataDir},
				Superuser: sdk.Credentials{Username: "postgres", Password: "s3cr3t-superuser"},
				Env:       f.env,
			}
			plan, err := c.PlanBootstrap(context.Background(), req)
			if err != nil {
				t.Fatalf("PlanBootstrap: %v", err)
			}
			res, rec := plugintest.AssertBootstrap(t, c, req)
			if res.RecoverySettings != nil || res.Standby || res.KeepExistingRecovery {
				t.Errorf("a script bootstrap reports no recovery of its own, got %+v", res)
			}
			got := f.ran(t, tc.want)
			if pa := plan.Commands[0].Argv; pa[0] != f.record || !reflect.DeepEqual(pa[1:], got.args) {
				t.Errorf("the plan's argv differs from what ran\nplan %q\n ran %q", pa, got.args)
			}
			if got.env["PGIMAGED_ROLE"] != "primary" || got.env["PGIMAGED_DATADIR"] != f.dataDir || got.env["PGIMAGED_SCOPE"] != "batman" {
				t.Errorf("environment PGIMAGED_*: %q %q %q", got.env["PGIMAGED_SCOPE"], got.env["PGIMAGED_DATADIR"], got.env["PGIMAGED_ROLE"])
			}
			for k, v := range got.env {
				if strings.Contains(v, req.Superuser.Password) {
					t.Errorf("the superuser password reached the command's environment in %s", k)
				}
			}
			var sawOutput bool
			for _, l := range rec.Logs() {
				sawOutput = sawOutput || strings.Contains(l.Message, "restoring into "+f.dataDir)
			}
			if !sawOutput {
				t.Errorf("the command's output was not streamed as log lines: %+v", rec.Logs())
			}
		})
	}
}

func TestFailures(t *testing.T) {
	c := plugintest.Connect(t, New())
	dir := t.TempDir()
	fail := install(t, dir, "fail.sh", "restore-or-fail")
	record := install(t, dir, "record.sh", "record")
	tests := []struct {
		name     string
		command  string
		env      map[string]string
		wantIs   error
		wantText string
	}{
		{
			name:     "non-zero exit carries the last output line",
			command:  fail,
			wantIs:   sdk.ErrMethodFailed,
			wantText: "fatal: no backup found in s3://bucket/batman",
		},
		{
			name:     "exit code",
			command:  record,
			env:      map[string]string{"RECORD_DIR": dir, "EXIT_CODE": "7"},
			wantIs:   sdk.ErrMethodFailed,
			wantText: "exited with code 7",
		},
		{
			name:     "program not in PATH",
			command:  "no-such-restore-program --fast",
			env:      map[string]string{"PATH": dir},
			wantIs:   sdk.ErrMethodFailed,
			wantText: "no-such-restore-program",
		},
		{
			name:     "program path does not exist",
			command:  filepath.Join(dir, "missing"),
			wantIs:   sdk.ErrMethodFailed,
			wantText: filepath.Join(dir, "missing"),
		},
		{
			name:     "no command",
			command:  "  ",
			wantIs:   sdk.ErrInvalidOptions,
			wantText: "command is missing",
		},
		{
			name:     "unterminated quote",
			command:  `restore --label "half`,
			wantIs:   sdk.ErrInvalidOptions,
			wantText: "unterminated",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := sdk.CloneRequest{Method: "custom", Command: tc.command, Env: tc.env,
				Cluster: sdk.Cluster{Scope: "batman", DataDir: t.TempDir()}, ConnString: "host=10.0.0.1"}
			_, err := c.Clone(context.Background(), req, &plugintest.Recorder{})
			if err == nil {
				t.Fatal("Clone succeeded, want an error")
			}
			if _, ok := status.FromError(err); !ok {
				t.Errorf("error %T did not come back through gRPC with its status", err)
			}
			if !errors.Is(err, tc.wantIs) {
				t.Errorf("error %q is not %v", err, tc.wantIs)
			}
			if !strings.Contains(err.Error(), tc.wantText) {
				t.Errorf("error %q does not say %q", err, tc.wantText)
			}
		})
	}
}

// groupAlive reports whether any process of group pgid is still alive. A zombie is dead: where
// orphans are not reaped (some containers' init), kill(-pgid, 0) still finds them.
func groupAlive(t *testing.T, pgid int) bool {
	t.Helper()
	if err := syscall.Kill(-pgid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...; comm may hold spaces, so split after the last ')'.
		s := string(b)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(fields) >= 3 && fields[2] == strconv.Itoa(pgid) && fields[0] != "Z" && fields[0] != "X" {
			return true
		}
	}
	return false
}

func TestCancelKillsTheProcessGroup(t *testing.T) {
	c := plugintest.Connect(t, New())
	dir := t.TempDir()
	sleeper := install(t, dir, "sleep.sh", "slow-restore")
	pidfile := filepath.Join(dir, "pid")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	errc := make(chan error, 1)
	go func() {
		_, err := c.Clone(ctx, sdk.CloneRequest{Method: "slow", Command: sleeper, Env: map[string]string{"PIDFILE": pidfile},
			Cluster: sdk.Cluster{Scope: "batman", DataDir: t.TempDir()}, ConnString: "host=10.0.0.1"}, nil)
		errc <- err
	}()

	var pgid int
	for pgid == 0 {
		select {
		case err := <-errc:
			t.Fatalf("Clone ended before it was cancelled: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
		if b, err := os.ReadFile(pidfile); err == nil {
			pgid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		}
	}
	if !groupAlive(t, pgid) {
		t.Fatalf("process group %d is not running before the cancel", pgid)
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled Clone returned %v, want context.Canceled", err)
	}
	// The plugin kills the group on its side of the connection; wait for that to be done.
	deadline := time.Now().Add(30 * time.Second)
	for groupAlive(t, pgid) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			t.Fatalf("process group %d of the cancelled script is still alive", pgid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestValidateWarnsAboutOverriddenParameters(t *testing.T) {
	c := plugintest.Connect(t, New())
	tests := []struct {
		name     string
		path     sdk.Path
		noParams bool
		options  sdk.Options
		warned   []string
	}{
		{"clone", sdk.PathClone, false, sdk.Options{{Name: "scope", Value: "x"}, {Name: "connstring", Value: "y"}, {Name: "a", Value: "b"}}, []string{"scope", "connstring"}},
		{"clone with no_params", sdk.PathClone, true, sdk.Options{{Name: "scope", Value: "x"}}, nil},
		{"bootstrap", sdk.PathBootstrap, false, sdk.Options{{Name: "role", Value: "x"}, {Name: "datadir", Value: "y"}}, []string{"datadir"}},
		{"bootstrap with no_params", sdk.PathBootstrap, true, sdk.Options{{Name: "datadir", Value: "y"}}, []string{"datadir"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := c.Validate(context.Background(), sdk.ValidateRequest{Method: "m", Path: tc.path, Command: "/bin/true",
				NoParams: tc.noParams, Options: tc.options})
			if err != nil {
				t.Fatal(err)
			}
			var warned []string
			for _, d := range resp.Diagnostics {
				if d.Severity != sdk.SeverityWarning {
					t.Errorf("unexpected error diagnostic %+v", d)
					continue
				}
				warned = append(warned, d.Option)
			}
			if !reflect.DeepEqual(warned, tc.warned) {
				t.Errorf("warnings about %q, want %q", warned, tc.warned)
			}
		})
	}
}

func TestConformance(t *testing.T) {
	bin := t.TempDir()
	record := install(t, bin, "record.sh", "restore")
	cloneRec, bootRec := t.TempDir(), t.TempDir()
	valid := func(name string, path sdk.Path, command string, noParams bool, opts sdk.Options) plugintest.ValidCase {
		return plugintest.ValidCase{Name: name, Request: sdk.ValidateRequest{Method: "m", Path: path, Command: command, NoParams: noParams, Options: opts}}
	}
	invalid := func(name, option string, command string, opts sdk.Options) plugintest.InvalidCase {
		return plugintest.InvalidCase{Name: name, Option: option, Request: sdk.ValidateRequest{Method: "m", Path: sdk.PathClone, Command: command, Options: opts}}
	}
	plugintest.Conformance(t, New(), plugintest.Suite{
		Clone: func(t *testing.T) sdk.CloneRequest {
			return sdk.CloneRequest{Method: "custom", Command: record, Env: map[string]string{"RECORD_DIR": cloneRec},
				Cluster: sdk.Cluster{Scope: "batman", DataDir: t.TempDir()}, ConnString: "host=10.0.0.1"}
		},
		Bootstrap: func(t *testing.T) sdk.BootstrapRequest {
			return sdk.BootstrapRequest{Method: "custom", Command: record, Env: map[string]string{"RECORD_DIR": bootRec},
				Cluster: sdk.Cluster{Scope: "batman", DataDir: t.TempDir()}, Superuser: sdk.Credentials{Username: "postgres", Password: "pw-never-shown"}}
		},
		ValidOptions: []plugintest.ValidCase{
			valid("map form", sdk.PathClone, "patroni_wale_restore", false, sdk.Options{{Name: "envdir", Value: "/etc/wal-e.d/env"}, {Name: "use_iam", Value: "1"}}),
			valid("list form", sdk.PathClone, "/usr/local/bin/restore --fast", false, sdk.Options{{Name: "verbose", Flag: true}, {Name: "max-rate", Value: "100M"}}),
			valid("quoted command", sdk.PathBootstrap, `/usr/local/bin/restore_cluster --label 'nightly backup'`, false, nil),
			valid("relative command", sdk.PathBootstrap, "./scripts/restore", true, nil),
			valid("no options", sdk.PathClone, "restore", true, nil),
		},
		InvalidOptions: []plugintest.InvalidCase{
			invalid("missing command", "command", "", nil),
			invalid("blank command", "command", " \t ", nil),
			invalid("unterminated single quote", "command", "restore 'oops", nil),
			invalid("unterminated double quote", "command", `restore "oops`, nil),
			invalid("trailing backslash", "command", `restore \`, nil),
			invalid("option with dashes", "--verbose", "restore", sdk.Options{{Name: "--verbose", Flag: true}}),
			invalid("option with equals", "a=b", "restore", sdk.Options{{Name: "a=b", Value: "c"}}),
			invalid("option with space", "max rate", "restore", sdk.Options{{Name: "max rate", Value: "1"}}),
			invalid("empty option name", "", "restore", sdk.Options{{Name: "", Value: "1"}}),
			invalid("value with NUL", "label", "restore", sdk.Options{{Name: "label", Value: "a\x00b"}}),
		},
	})
}
