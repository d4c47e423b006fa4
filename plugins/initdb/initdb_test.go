package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/pgimaged/pgimaged/internal/testenv"
	"github.com/pgimaged/pgimaged/sdk"
	"github.com/pgimaged/pgimaged/sdk/plugintest"
	"github.com/pgimaged/pgimaged/sdk/syncfs"
)

// TestMain runs the tests as the PostgreSQL OS user: the plugin is served inside the test
// process, so initdb runs with the test process's identity, and initdb refuses root.
func TestMain(m *testing.M) { os.Exit(testenv.RunAsPostgres(m)) }

const password = "Sup3r-s3cret-pw"

// privateTempDir makes the plugin create its password file in a directory of the test's own, so
// that the test can tell that it was removed.
func privateTempDir(t *testing.T) string {
	t.Helper()
	d := t.TempDir()
	t.Setenv("TMPDIR", d)
	return d
}

// newRequest asks initdb for a cluster with superuser and options in a new, empty data directory
// of the PostgreSQL user, with the PostgreSQL binaries installed here.
func newRequest(t *testing.T, superuser sdk.Credentials, options ...sdk.Option) sdk.BootstrapRequest {
	t.Helper()
	bin := testenv.PGBinDir(t)
	testenv.RequirePostgresUser(t)
	return sdk.BootstrapRequest{
		Method:    "initdb",
		Options:   options,
		Cluster:   sdk.Cluster{Scope: "batman", DataDir: testenv.PostgresUser(t).DataDir(t), BinDir: bin},
		Superuser: superuser,
	}
}

// assertPasswordKeptSecret fails if the password reached a log line, if initdb did not read it
// through the inherited descriptor /dev/fd/3 (the file's name was removed before initdb
// started, so nothing is left on disk even if the plugin is killed), or if a password file is
// left in dir.
func assertPasswordKeptSecret(t *testing.T, rec *plugintest.Recorder, dir string) {
	t.Helper()
	plugintest.AssertNoSecret(t, rec, password)
	if pwfile := pwfileOf(t, rec.Logs()); pwfile != "/dev/fd/3" {
		t.Errorf("initdb read its password from %s, want the inherited descriptor /dev/fd/3", pwfile)
	}
	left, err := filepath.Glob(filepath.Join(dir, "pgimaged-initdb-pw-*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range left {
		t.Errorf("password file left behind: %s", f)
	}
}

// pwfileOf returns the --pwfile argument of the logged initdb command line.
func pwfileOf(t *testing.T, logs []plugintest.LogLine) string {
	t.Helper()
	for _, l := range logs {
		if !strings.HasPrefix(l.Message, "running ") {
			continue
		}
		for _, a := range strings.Fields(l.Message) {
			if v, ok := strings.CutPrefix(a, "--pwfile="); ok {
				return v
			}
		}
	}
	t.Fatalf("no log line shows initdb running with --pwfile: %+v", logs)
	return ""
}

func controlData(t *testing.T, bin, dir string) string {
	t.Helper()
	out, err := exec.Command(filepath.Join(bin, "pg_controldata"), dir).CombinedOutput()
	if err != nil {
		t.Fatalf("pg_controldata %s: %v\n%s", dir, err, out)
	}
	return string(out)
}

func TestArgv(t *testing.T) {
	const bin = "/usr/lib/postgresql/15/bin"
	tests := []struct {
		name    string
		options sdk.Options
		user    sdk.Credentials
		version int
		want    []string
	}{
		{
			name:    "Patroni's list form, password",
			options: sdk.Options{{Name: "data-checksums", Flag: true}, {Name: "encoding", Value: "UTF8"}},
			user:    sdk.Credentials{Username: "postgres", Password: password},
			want: []string{bin + "/initdb", "--pgdata=D", "--data-checksums", "--encoding=UTF8", "--username=postgres",
				"--pwfile=" + pwfilePlaceholder, "--auth-local=scram-sha-256", "--auth-host=scram-sha-256"},
		},
		{
			name:    "map form with a flag set to true",
			options: sdk.Options{{Name: "data-checksums", Value: "true"}, {Name: "locale", Value: "en_US.UTF-8"}},
			user:    sdk.Credentials{Username: "admin", Password: password},
			want: []string{bin + "/initdb", "--pgdata=D", "--data-checksums", "--locale=en_US.UTF-8", "--username=admin",
				"--pwfile=" + pwfilePlaceholder, "--auth-local=scram-sha-256", "--auth-host=scram-sha-256"},
		},
		{
			name: "no password: trust the socket, reject TCP",
			user: sdk.Credentials{Username: "postgres"},
			want: []string{bin + "/initdb", "--pgdata=D", "--username=postgres", "--auth-local=trust", "--auth-host=reject"},
		},
		{
			name:    "the user's --auth wins",
			options: sdk.Options{{Name: "auth", Value: "md5"}},
			user:    sdk.Credentials{Username: "postgres", Password: password},
			want:    []string{bin + "/initdb", "--pgdata=D", "--auth=md5", "--username=postgres", "--pwfile=" + pwfilePlaceholder},
		},
		{
			name:    "the user's --auth-local wins, host keeps the default",
			options: sdk.Options{{Name: "auth-local", Value: "peer"}},
			user:    sdk.Credentials{Username: "postgres", Password: password},
			want: []string{bin + "/initdb", "--pgdata=D", "--auth-local=peer", "--username=postgres",
				"--pwfile=" + pwfilePlaceholder, "--auth-host=scram-sha-256"},
		},
		{
			name:    "md5 before PostgreSQL 10",
			user:    sdk.Credentials{Username: "postgres", Password: password},
			version: 90624,
			want: []string{bin + "/initdb", "--pgdata=D", "--username=postgres",
				"--pwfile=" + pwfilePlaceholder, "--auth-local=md5", "--auth-host=md5"},
		},
	}
	c := plugintest.Connect(t, New())
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := sdk.BootstrapRequest{Method: "initdb", Options: tc.options, Superuser: tc.user,
				Cluster: sdk.Cluster{Scope: "batman", DataDir: "D", BinDir: bin, ServerVersion: tc.version}}
			plan, err := c.PlanBootstrap(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			if len(plan.Commands) != 1 {
				t.Fatalf("plan has %d commands, want 1", len(plan.Commands))
			}
			if syncfs.Supported() {
				tc.want = withNoSync(tc.want)
			}
			if got := plan.Commands[0].Argv; !reflect.DeepEqual(got, tc.want) {
				t.Errorf("argv\n got %q\nwant %q", got, tc.want)
			}
			for _, a := range plan.Commands[0].Argv {
				if strings.Contains(a, password) {
					t.Errorf("the password is on the command line: %q", a)
				}
			}
		})
	}
}

// withNoSync is want with --no-sync after the superuser's options, where the plugin puts it when
// it syncs the cluster itself.
func withNoSync(want []string) []string {
	at := 0
	for i, a := range want {
		if strings.HasPrefix(a, "--username=") || strings.HasPrefix(a, "--pwfile=") {
			at = i + 1
		}
	}
	return slices.Insert(slices.Clone(want), at, "--no-sync")
}

func TestConformance(t *testing.T) {
	bin := testenv.PGBinDir(t)
	testenv.RequirePostgresUser(t)
	invalid := func(name string, o sdk.Option) plugintest.InvalidCase {
		return plugintest.InvalidCase{Name: name, Option: o.Name,
			Request: sdk.ValidateRequest{Method: "initdb", Path: sdk.PathBootstrap, Options: sdk.Options{{Name: "encoding", Value: "UTF8"}, o}}}
	}
	valid := func(name string, opts ...sdk.Option) plugintest.ValidCase {
		return plugintest.ValidCase{Name: name, Request: sdk.ValidateRequest{Method: "initdb", Path: sdk.PathBootstrap, Options: opts}}
	}
	plugintest.Conformance(t, New(), plugintest.Suite{
		Bootstrap: func(t *testing.T) sdk.BootstrapRequest {
			return newRequest(t, sdk.Credentials{Username: "postgres", Password: password},
				sdk.Option{Name: "data-checksums", Flag: true}, sdk.Option{Name: "encoding", Value: "UTF8"})
		},
		CheckDataDir: func(t *testing.T, dir string) {
			if b, err := os.ReadFile(filepath.Join(dir, "PG_VERSION")); err != nil || strings.TrimSpace(string(b)) == "" {
				t.Errorf("PG_VERSION: %q, %v", b, err)
			}
			if cd := controlData(t, bin, dir); !strings.Contains(cd, "Data page checksum version:           1") {
				t.Errorf("data checksums are not on:\n%s", cd)
			}
		},
		ValidOptions: []plugintest.ValidCase{
			valid("no options"),
			valid("list form", sdk.Option{Name: "data-checksums", Flag: true}, sdk.Option{Name: "encoding", Value: "UTF8"}),
			valid("flag written as true", sdk.Option{Name: "data-checksums", Value: "true"}),
			valid("flag written as off", sdk.Option{Name: "data-checksums", Value: "off"}),
			valid("old spelling of no-clean", sdk.Option{Name: "noclean", Flag: true}),
			valid("locale and wal", sdk.Option{Name: "locale", Value: "C.UTF-8"}, sdk.Option{Name: "wal-segsize", Value: "64"}),
			valid("authentication", sdk.Option{Name: "auth-host", Value: "scram-sha-256"}, sdk.Option{Name: "auth-local", Value: "peer"}),
		},
		InvalidOptions: []plugintest.InvalidCase{
			invalid("pgdata", sdk.Option{Name: "pgdata", Value: "/elsewhere"}),
			invalid("nosync", sdk.Option{Name: "nosync", Flag: true}),
			invalid("no-sync", sdk.Option{Name: "no-sync", Flag: true}),
			invalid("pwfile", sdk.Option{Name: "pwfile", Value: "/tmp/pw"}),
			invalid("pwprompt", sdk.Option{Name: "pwprompt", Flag: true}),
			invalid("sync-only", sdk.Option{Name: "sync-only", Flag: true}),
			invalid("version", sdk.Option{Name: "version", Flag: true}),
			invalid("show", sdk.Option{Name: "show", Flag: true}),
			invalid("help", sdk.Option{Name: "help", Flag: true}),
			invalid("username", sdk.Option{Name: "username", Value: "admin"}),
			invalid("short D", sdk.Option{Name: "D", Value: "/elsewhere"}),
			invalid("short U", sdk.Option{Name: "U", Value: "admin"}),
			invalid("short k", sdk.Option{Name: "k", Flag: true}),
			invalid("abbreviated pgdata", sdk.Option{Name: "pgdat", Value: "/elsewhere"}),
			invalid("abbreviated username", sdk.Option{Name: "user", Value: "admin"}),
			invalid("leading dashes", sdk.Option{Name: "--data-checksums", Flag: true}),
			invalid("equals in name", sdk.Option{Name: "encoding=UTF8", Flag: true}),
			invalid("not a boolean", sdk.Option{Name: "data-checksums", Value: "maybe"}),
			invalid("a value given as a flag", sdk.Option{Name: "encoding", Flag: true}),
			invalid("wal-segsize not a power of 2", sdk.Option{Name: "wal-segsize", Value: "48"}),
			invalid("wal-segsize not a number", sdk.Option{Name: "wal-segsize", Value: "64MB"}),
			{Name: "clone path", Request: sdk.ValidateRequest{Method: "initdb", Path: sdk.PathClone}},
		},
	})
}

func TestPasswordStaysSecret(t *testing.T) {
	tmp := privateTempDir(t)
	req := newRequest(t, sdk.Credentials{Username: "admin", Password: password})
	bin, dir := req.Cluster.BinDir, req.Cluster.DataDir
	c := plugintest.Connect(t, New())
	plan, err := c.PlanBootstrap(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range plan.Commands[0].Argv {
		if strings.Contains(a, password) {
			t.Errorf("the plan's argv reveals the password: %q", a)
		}
	}
	_, rec := plugintest.AssertBootstrap(t, c, req)
	assertPasswordKeptSecret(t, rec, tmp)

	hba, err := os.ReadFile(filepath.Join(dir, "pg_hba.conf"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(hba), "\n") {
		if f := strings.Fields(line); len(f) > 0 && (f[0] == "local" || f[0] == "host") && f[len(f)-1] != "scram-sha-256" {
			t.Errorf("pg_hba.conf line without password authentication: %q", line)
		}
	}
	if !strings.Contains(controlData(t, bin, dir), "Data page checksum version:           0") {
		t.Errorf("data checksums are on although not asked for")
	}
}

func TestPasswordFileRemovedOnFailure(t *testing.T) {
	tmp := privateTempDir(t)
	req := newRequest(t, sdk.Credentials{Username: "postgres", Password: password})
	c := plugintest.Connect(t, New())
	if err := os.WriteFile(filepath.Join(req.Cluster.DataDir, "leftover"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	rec := &plugintest.Recorder{}
	_, err := c.Bootstrap(context.Background(), req, rec)
	if !errors.Is(err, sdk.ErrMethodFailed) {
		t.Fatalf("initdb into a non-empty directory returned %v, want sdk.ErrMethodFailed", err)
	}
	if !strings.Contains(err.Error(), "initdb") {
		t.Errorf("error %q does not say what failed", err)
	}
	assertPasswordKeptSecret(t, rec, tmp)
}

// cancelOnStart cancels the call as soon as initdb is started.
type cancelOnStart struct {
	plugintest.Recorder
	cancel context.CancelFunc
}

func (r *cancelOnStart) Log(level sdk.Level, msg string, kv ...any) {
	r.Recorder.Log(level, msg, kv...)
	if strings.HasPrefix(msg, "running ") {
		r.cancel()
	}
}

func TestPasswordFileRemovedOnCancel(t *testing.T) {
	tmp := privateTempDir(t)
	req := newRequest(t, sdk.Credentials{Username: "postgres", Password: password})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rec := &cancelOnStart{cancel: cancel}
	// Called directly rather than over gRPC: the call returns only after the plugin cleaned up.
	_, err := New().Bootstrap(ctx, req, rec)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Bootstrap returned %v, want context.Canceled", err)
	}
	assertPasswordKeptSecret(t, &rec.Recorder, tmp)
}

func TestBootstrapWithoutPassword(t *testing.T) {
	req := newRequest(t, sdk.Credentials{Username: "postgres"})
	_, rec := plugintest.AssertBootstrap(t, plugintest.Connect(t, New()), req)
	var warned bool
	for _, l := range rec.Logs() {
		warned = warned || (l.Level == sdk.LevelWarn && strings.Contains(l.Message, "no password"))
	}
	if !warned {
		t.Errorf("no warning about the missing password was logged")
	}
	hba, err := os.ReadFile(filepath.Join(req.Cluster.DataDir, "pg_hba.conf"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(hba), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		want := map[string]string{"local": "trust", "host": "reject"}[f[0]]
		if f[len(f)-1] != want {
			t.Errorf("pg_hba.conf line %q, want method %s", line, want)
		}
	}
}

// Where syncfs(2) reports writeback errors, initdb runs with --no-sync and the plugin syncs the
// data directory's file system once initdb is done: the cluster is complete, cleanly shut
// down, and starts.
func TestBootstrapSyncsTheFileSystem(t *testing.T) {
	req := newRequest(t, sdk.Credentials{Username: "postgres", Password: password}, sdk.Option{Name: "locale", Value: "C"})
	bin, dir := req.Cluster.BinDir, req.Cluster.DataDir
	_, rec := plugintest.AssertBootstrap(t, plugintest.Connect(t, New()), req)
	var ran string
	synced := false
	for _, l := range rec.Logs() {
		if strings.HasPrefix(l.Message, "running "+filepath.Join(bin, "initdb")) {
			ran = l.Message
		}
		synced = synced || strings.Contains(l.Message, "synced the new cluster to disk")
		if strings.Contains(l.Message, "Sync to disk skipped") {
			t.Errorf("initdb's notice about the skipped sync reached the log: %q", l.Message)
		}
	}
	if want := syncfs.Supported(); strings.Contains(ran, " --no-sync") != want || synced != want {
		t.Errorf("syncfs supported: %v; initdb ran as %q; the plugin said it synced: %v", want, ran, synced)
	}
	if cd := controlData(t, bin, dir); !strings.Contains(cd, "Database cluster state:               shut down\n") {
		t.Fatalf("the new cluster is not cleanly shut down:\n%s", cd)
	}
	log := filepath.Join(filepath.Dir(dir), "server.log")
	start := exec.Command(filepath.Join(bin, "pg_ctl"), "start", "-w", "-D", dir, "-l", log,
		"-o", "-c listen_addresses='' -c unix_socket_directories="+filepath.Dir(dir))
	if out, err := start.CombinedOutput(); err != nil {
		t.Fatalf("the new cluster does not start: %v\n%s", err, out)
	}
	if out, err := exec.Command(filepath.Join(bin, "pg_ctl"), "stop", "-w", "-D", dir, "-m", "fast").CombinedOutput(); err != nil {
		t.Fatalf("pg_ctl stop: %v\n%s", err, out)
	}
}

// A user who says how initdb syncs (sync-method, no-sync-data-files) keeps initdb's own sync.
func TestExplicitSyncMethodKeepsInitdbSync(t *testing.T) {
	c := plugintest.Connect(t, New())
	for _, o := range []sdk.Option{{Name: "sync-method", Value: "fsync"}, {Name: "no-sync-data-files", Flag: true}} {
		plan, err := c.PlanBootstrap(context.Background(), sdk.BootstrapRequest{Method: "initdb", Options: sdk.Options{o},
			Superuser: sdk.Credentials{Username: "postgres"},
			Cluster:   sdk.Cluster{Scope: "batman", DataDir: "D", BinDir: "/usr/lib/postgresql/17/bin"}})
		if err != nil {
			t.Fatal(err)
		}
		if slices.Contains(plan.Commands[0].Argv, "--no-sync") {
			t.Errorf("with %s initdb runs with --no-sync: %q", o.Name, plan.Commands[0].Argv)
		}
	}
}
