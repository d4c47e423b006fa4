package main

import (
	"bufio"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/pgimaged/pgimaged/internal/pgtest"
	"github.com/pgimaged/pgimaged/internal/testenv"
	"github.com/pgimaged/pgimaged/sdk"
	"github.com/pgimaged/pgimaged/sdk/plugintest"
	"github.com/pgimaged/pgimaged/sdk/syncfs"
)

// TestMain runs the tests as the PostgreSQL OS user, as pgimaged runs: the plugin is served
// inside the test process, so pg_basebackup writes the replica with the test process's identity.
func TestMain(m *testing.M) { os.Exit(testenv.RunAsPostgres(m)) }

func TestArgv(t *testing.T) {
	const (
		bin  = "/usr/lib/postgresql/15/bin"
		conn = "host=10.0.0.1 port=5432 user=replicator dbname=postgres"
	)
	head := []string{bin + "/pg_basebackup", "--pgdata=D", "-X", "stream", "--dbname=" + conn}
	tests := []struct {
		name    string
		conn    string
		options sdk.Options
		want    []string // after head, unless wantAll is set
		wantAll []string
	}{
		{name: "no options", want: []string{"--progress"}},
		{
			name:    "Patroni's map form",
			options: sdk.Options{{Name: "max-rate", Value: "100M"}, {Name: "checkpoint", Value: "fast"}},
			want:    []string{"--max-rate=102400", "--checkpoint=fast", "--progress"},
		},
		{
			name:    "Patroni's list form",
			options: sdk.Options{{Name: "verbose", Flag: true}, {Name: "max-rate", Value: "100M"}},
			want:    []string{"--verbose", "--max-rate=102400", "--progress"},
		},
		{
			name:    "flags written as true",
			options: sdk.Options{{Name: "verbose", Value: "true"}, {Name: "no-slot", Value: "true"}},
			want:    []string{"--verbose", "--no-slot", "--progress"},
		},
		{
			name:    "progress given once",
			options: sdk.Options{{Name: "progress", Flag: true}, {Name: "label", Value: "pgimaged clone"}},
			want:    []string{"--label=pgimaged clone", "--progress"},
		},
		{
			name:    "max-rate in the units users write, passed in kB",
			options: sdk.Options{{Name: "max-rate", Value: "1GB"}, {Name: "progress", Value: "off"}, {Name: "verbose", Value: "off"}},
			want:    []string{"--max-rate=1048576", "--progress"},
		},
		{
			name:    "server-side compression",
			options: sdk.Options{{Name: "compress", Value: "server-gzip:level=5"}},
			want:    []string{"--compress=server-gzip:level=5", "--progress"},
		},
		{
			name:    "one -T per tablespace mapping",
			options: sdk.Options{{Name: "tablespace-mapping", List: []string{"/srv/ts1=/data/ts1", "/srv/t\\=2=/data/ts2"}}, {Name: "checkpoint", Value: "fast"}},
			want:    []string{"-T", "/srv/ts1=/data/ts1", "-T", "/srv/t\\=2=/data/ts2", "--checkpoint=fast", "--progress"},
		},
		{
			name: "a password in the connection string is masked",
			conn: "host=10.0.0.1 user=replicator password='s3cret pw'",
			wantAll: []string{bin + "/pg_basebackup", "--pgdata=D", "-X", "stream",
				"--dbname=host=10.0.0.1 user=replicator password='" + sdk.Mask + "'", "--progress"},
		},
	}
	c := plugintest.Connect(t, New())
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := sdk.CloneRequest{Method: "basebackup", Options: tc.options, ConnString: conn,
				Cluster: sdk.Cluster{Scope: "batman", DataDir: "D", BinDir: bin}}
			if tc.conn != "" {
				req.ConnString = tc.conn
			}
			plan, err := c.PlanClone(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			want := tc.wantAll
			if want == nil {
				want = append(append([]string{}, head...), tc.want...)
			}
			if syncfs.Supported() && !tc.options.Has("no-sync") {
				// The plugin syncs the copy itself: pg_basebackup does not (before --progress).
				want = slices.Insert(slices.Clone(want), len(want)-1, "--no-sync")
			}
			if len(plan.Commands) != 1 {
				t.Fatalf("plan has %d commands, want 1", len(plan.Commands))
			}
			if got := plan.Commands[0].Argv; !reflect.DeepEqual(got, want) {
				t.Errorf("argv\n got %q\nwant %q", got, want)
			}
		})
	}
}

// TestProgress feeds pg_basebackup's real --progress output (testdata/*.txt, captured from
// PostgreSQL 15 with --max-rate=8M so that there are several lines) through the meter.
func TestProgress(t *testing.T) {
	tests := []struct {
		file       string
		wantEvents int
		wantLogged int // progress lines let into the log
		wantLast   sdk.Progress
	}{
		{"progress.txt", 7, 6, sdk.Progress{Phase: "copy", Done: 34835 * 1024, Total: 34835 * 1024}},
		{"progress-verbose.txt", 6, 5, sdk.Progress{Phase: "copy", Done: 34835 * 1024, Total: 34835 * 1024}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			f, err := os.Open(filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			rec := &plugintest.Recorder{}
			m := newProgressMeter(rec)
			var logged, others int
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				isProgress := progressLine.MatchString(sc.Text())
				if m.line("stderr", sc.Text()) {
					if isProgress {
						logged++
					} else {
						others++
					}
				} else if !isProgress {
					t.Errorf("a line that is not progress was kept out of the log: %q", sc.Text())
				}
			}
			m.finish()
			events := rec.ProgressEvents()
			if len(events) != tc.wantEvents {
				t.Errorf("%d progress events, want %d", len(events), tc.wantEvents)
			}
			if logged != tc.wantLogged {
				t.Errorf("%d progress lines logged, want %d", logged, tc.wantLogged)
			}
			for i, e := range events {
				if e.Done > e.Total || (i > 0 && e.Done < events[i-1].Done) {
					t.Errorf("event %d: %+v after %+v", i, e, events[max(i-1, 0)])
				}
			}
			if last := events[len(events)-1]; last != tc.wantLast {
				t.Errorf("last event %+v, want %+v", last, tc.wantLast)
			}
		})
	}
}

func TestFinishCompletesTheEstimate(t *testing.T) {
	rec := &plugintest.Recorder{}
	m := newProgressMeter(rec)
	m.line("stderr", "30000/31483 kB (95%), 0/1 tablespace")
	m.finish()
	want := []sdk.Progress{
		{Phase: "copy", Done: 30000 * 1024, Total: 31483 * 1024},
		{Phase: "copy", Done: 30000 * 1024, Total: 30000 * 1024},
	}
	if got := rec.ProgressEvents(); !reflect.DeepEqual(got, want) {
		t.Errorf("events %+v, want %+v", got, want)
	}
}

func TestConformance(t *testing.T) {
	testenv.RequirePostgresUser(t)
	p := pgtest.StartPrimary(t, pgtest.Options{})
	pgpass := p.WritePgpass(t)
	invalid := func(name string, o sdk.Option) plugintest.InvalidCase {
		return plugintest.InvalidCase{Name: name, Option: o.Name, Request: sdk.ValidateRequest{
			Method: "basebackup", Path: sdk.PathClone, Options: sdk.Options{{Name: "checkpoint", Value: "fast"}, o}}}
	}
	valid := func(name string, opts ...sdk.Option) plugintest.ValidCase {
		return plugintest.ValidCase{Name: name, Request: sdk.ValidateRequest{Method: "basebackup", Path: sdk.PathClone, Options: opts}}
	}
	plugintest.Conformance(t, New(), plugintest.Suite{
		Clone: func(t *testing.T) sdk.CloneRequest {
			return sdk.CloneRequest{
				Method:     "basebackup",
				Options:    sdk.Options{{Name: "checkpoint", Value: "fast"}},
				Cluster:    sdk.Cluster{Scope: "batman", Name: "node2", DataDir: testenv.PostgresUser(t).DataDir(t), BinDir: p.BinDir},
				ConnString: p.ReplConn().DSN(),
				Env:        map[string]string{"PGPASSFILE": pgpass},
			}
		},
		CheckDataDir: func(t *testing.T, dir string) {
			for _, f := range []string{"PG_VERSION", "global/pg_control", "backup_label", "backup_manifest"} {
				if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
					t.Errorf("the replica lacks %s: %v", f, err)
				}
			}
		},
		ValidOptions: []plugintest.ValidCase{
			valid("no options"),
			valid("map form", sdk.Option{Name: "max-rate", Value: "100M"}, sdk.Option{Name: "checkpoint", Value: "fast"}),
			valid("list form", sdk.Option{Name: "verbose", Flag: true}, sdk.Option{Name: "max-rate", Value: "100M"}),
			valid("server-side compression", sdk.Option{Name: "compress", Value: "server-gzip"}),
			valid("no compression", sdk.Option{Name: "compress", Value: "none"}),
			valid("slot and label", sdk.Option{Name: "slot", Value: "node2"}, sdk.Option{Name: "label", Value: "clone"}),
			valid("progress given", sdk.Option{Name: "progress", Flag: true}),
			valid("tablespace mappings", sdk.Option{Name: "tablespace-mapping", List: []string{"/srv/ts1=/data/ts1", "/srv/ts2=/data/ts2"}}),
		},
		InvalidOptions: []plugintest.InvalidCase{
			invalid("pgdata", sdk.Option{Name: "pgdata", Value: "/elsewhere"}),
			invalid("tablespace mapping as one string", sdk.Option{Name: "tablespace-mapping", Value: "/srv/ts1=/data/ts1"}),
			invalid("tablespace mapping without NEWDIR", sdk.Option{Name: "tablespace-mapping", List: []string{"/srv/ts1=/data/ts1", "/srv/ts2"}}),
			invalid("relative tablespace mapping", sdk.Option{Name: "tablespace-mapping", List: []string{"ts1=/data/ts1"}}),
			invalid("tablespace mapping as a map", sdk.Option{Name: "tablespace-mapping", Map: map[string]string{"/srv/ts1": "/data/ts1"}}),
			invalid("format", sdk.Option{Name: "format", Value: "tar"}),
			invalid("wal-method", sdk.Option{Name: "wal-method", Value: "fetch"}),
			invalid("xlog-method", sdk.Option{Name: "xlog-method", Value: "stream"}),
			invalid("gzip", sdk.Option{Name: "gzip", Flag: true}),
			invalid("version", sdk.Option{Name: "version", Flag: true}),
			invalid("help", sdk.Option{Name: "help", Flag: true}),
			invalid("dbname", sdk.Option{Name: "dbname", Value: "host=elsewhere"}),
			invalid("host", sdk.Option{Name: "host", Value: "10.0.0.9"}),
			invalid("port", sdk.Option{Name: "port", Value: "5433"}),
			invalid("username", sdk.Option{Name: "username", Value: "postgres"}),
			invalid("password", sdk.Option{Name: "password", Flag: true}),
			invalid("target", sdk.Option{Name: "target", Value: "server:/backups"}),
			invalid("client compress", sdk.Option{Name: "compress", Value: "gzip"}),
			invalid("client compress explicit", sdk.Option{Name: "compress", Value: "client-lz4"}),
			invalid("compress level", sdk.Option{Name: "compress", Value: "9"}),
			invalid("compress flag", sdk.Option{Name: "compress", Flag: true}),
			invalid("abbreviated compress", sdk.Option{Name: "comp", Value: "server-gzip"}),
			invalid("abbreviated pgdata", sdk.Option{Name: "pgd", Value: "/elsewhere"}),
			invalid("abbreviated wal-method", sdk.Option{Name: "wal-m", Value: "none"}),
			invalid("short D", sdk.Option{Name: "D", Value: "/elsewhere"}),
			invalid("short F", sdk.Option{Name: "F", Value: "t"}),
			invalid("short X", sdk.Option{Name: "X", Value: "fetch"}),
			invalid("short d", sdk.Option{Name: "d", Value: "host=x"}),
			invalid("short h", sdk.Option{Name: "h", Value: "x"}),
			invalid("short p", sdk.Option{Name: "p", Value: "1"}),
			invalid("short U", sdk.Option{Name: "U", Value: "x"}),
			invalid("short W", sdk.Option{Name: "W", Flag: true}),
			invalid("short z", sdk.Option{Name: "z", Flag: true}),
			invalid("short Z", sdk.Option{Name: "Z", Value: "9"}),
			invalid("leading dashes", sdk.Option{Name: "--max-rate", Value: "1M"}),
			invalid("not a boolean", sdk.Option{Name: "verbose", Value: "maybe"}),
			invalid("checkpoint not in the enum", sdk.Option{Name: "checkpoint", Value: "fastest"}),
			invalid("max_rate spelt with an underscore", sdk.Option{Name: "max_rate", Value: "100M"}),
			invalid("max-rate below 32kB", sdk.Option{Name: "max-rate", Value: "16k"}),
			{Name: "bootstrap path", Request: sdk.ValidateRequest{Method: "basebackup", Path: sdk.PathBootstrap}},
		},
	})
}

func TestClone(t *testing.T) {
	testenv.RequirePostgresUser(t)
	p := pgtest.StartPrimary(t, pgtest.Options{})
	p.Exec(t, "CREATE TABLE filler AS SELECT g, repeat('x', 200) AS pad FROM generate_series(1, 50000) g")
	p.Exec(t, "CHECKPOINT") // so that the spread checkpoint of the "defaults" case has nothing to write
	pgpass := p.WritePgpass(t)
	tests := []struct {
		name    string
		options sdk.Options
	}{
		{"defaults", nil},
		{"Patroni's list form", sdk.Options{{Name: "verbose", Flag: true}, {Name: "max-rate", Value: "100M"}, {Name: "checkpoint", Value: "fast"}}},
		{"server-side compression", sdk.Options{{Name: "compress", Value: "server-gzip"}, {Name: "checkpoint", Value: "fast"}}},
	}
	c := plugintest.Connect(t, New())
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := sdk.CloneRequest{
				Method:     "basebackup",
				Options:    tc.options,
				Cluster:    sdk.Cluster{Scope: "batman", Name: "node2", DataDir: testenv.PostgresUser(t).DataDir(t), BinDir: p.BinDir},
				ConnString: p.ReplConn().DSN(),
				Env:        map[string]string{"PGPASSFILE": pgpass},
			}
			plan, err := c.PlanClone(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			_, rec := plugintest.AssertClone(t, c, req) // also checks no pgpass password is logged
			plugintest.AssertNoSecret(t, rec, p.ReplPass)
			plugintest.AssertNoSecret(t, rec, p.SuperPass)

			var ran string
			for _, l := range rec.Logs() {
				if s, ok := strings.CutPrefix(l.Message, "running "); ok {
					ran = s
				}
			}
			if want := strings.Join(plan.Commands[0].Argv, " "); ran != want {
				t.Errorf("ran %q\nplan %q", ran, want)
			}
			synced := false
			for _, l := range rec.Logs() {
				synced = synced || strings.Contains(l.Message, "synced the copy to disk")
			}
			if want := syncfs.Supported(); synced != want || strings.Contains(ran, " --no-sync") != want {
				t.Errorf("syncfs supported: %v; pg_basebackup ran as %q; the plugin said it synced: %v", want, ran, synced)
			}
			for _, a := range plan.Commands[0].Argv {
				if strings.Contains(a, p.ReplPass) {
					t.Errorf("the replication password is on the command line: %q", a)
				}
			}

			events := rec.ProgressEvents()
			var complete bool
			for _, e := range events {
				if e.Phase != "copy" {
					t.Errorf("progress in phase %q, want copy", e.Phase)
				}
				complete = complete || (e.Total > 0 && e.Done == e.Total)
			}
			if !complete {
				t.Errorf("no progress event reached done == total: %+v", events)
			}

			id, err := pgControlSystemID(filepath.Join(req.Cluster.DataDir, "global", "pg_control"))
			if err != nil {
				t.Fatal(err)
			}
			if want := p.SystemIdentifier(t); id != want {
				t.Errorf("the replica's system identifier is %d, the primary's %d", id, want)
			}
		})
	}
}

func TestCloneFailures(t *testing.T) {
	testenv.RequirePostgresUser(t)
	p := pgtest.StartPrimary(t, pgtest.Options{})
	good := p.WritePgpass(t)
	wrongPass := "wrong-" + p.ReplPass
	bad := filepath.Join(testenv.PostgresUser(t).TempDir(t), "pgpass")
	if err := os.WriteFile(bad, []byte("127.0.0.1:*:*:"+p.ReplUser+":"+wrongPass+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		conn     string
		pgpass   string
		prepare  func(t *testing.T, dir string)
		wantText string
	}{
		{name: "wrong password", conn: p.ReplConn().DSN(), pgpass: bad, wantText: "password authentication failed"},
		{name: "nothing listens", conn: "host=127.0.0.1 port=" + itoa(pgtest.FreePort(t)) + " user=replicator", pgpass: good,
			wantText: "connection"},
		{name: "data directory not empty", conn: p.ReplConn().DSN(), pgpass: good, wantText: "not empty",
			prepare: func(t *testing.T, dir string) {
				if err := os.WriteFile(filepath.Join(dir, "stray"), []byte("x"), 0o600); err != nil {
					t.Fatal(err)
				}
			}},
	}
	c := plugintest.Connect(t, New())
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := testenv.PostgresUser(t).DataDir(t)
			if tc.prepare != nil {
				tc.prepare(t, dir)
			}
			rec := &plugintest.Recorder{}
			_, err := c.Clone(context.Background(), sdk.CloneRequest{Method: "basebackup", ConnString: tc.conn,
				Cluster: sdk.Cluster{Scope: "batman", DataDir: dir, BinDir: p.BinDir},
				Env:     map[string]string{"PGPASSFILE": tc.pgpass}}, rec)
			if !errors.Is(err, sdk.ErrMethodFailed) {
				t.Fatalf("Clone returned %v, want sdk.ErrMethodFailed", err)
			}
			if !strings.Contains(err.Error(), tc.wantText) {
				t.Errorf("error %q does not say %q", err, tc.wantText)
			}
			for _, secret := range []string{p.ReplPass, wrongPass} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("the error reveals a password: %q", err)
				}
				plugintest.AssertNoSecret(t, rec, secret)
			}
		})
	}
}

// A user who sets no-sync keeps pg_basebackup's own choice: the plugin adds nothing and syncs
// nothing.
func TestExplicitNoSyncIsKept(t *testing.T) {
	c := plugintest.Connect(t, New())
	plan, err := c.PlanClone(context.Background(), sdk.CloneRequest{Method: "basebackup",
		Options:    sdk.Options{{Name: "no-sync", Value: "false"}},
		ConnString: "host=10.0.0.1 user=replicator",
		Cluster:    sdk.Cluster{Scope: "batman", DataDir: "D", BinDir: "/usr/lib/postgresql/15/bin"}})
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(plan.Commands[0].Argv, "--no-sync") {
		t.Errorf("no-sync = false runs pg_basebackup with --no-sync: %q", plan.Commands[0].Argv)
	}
}
