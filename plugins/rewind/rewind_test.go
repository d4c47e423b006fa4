package main

import (
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pgimaged/pgimaged/core/pg"
	"github.com/pgimaged/pgimaged/internal/pgtest"
	"github.com/pgimaged/pgimaged/internal/testenv"
	"github.com/pgimaged/pgimaged/sdk"
	"github.com/pgimaged/pgimaged/sdk/libpq"
	"github.com/pgimaged/pgimaged/sdk/plugintest"
)

// TestMain runs the tests as the PostgreSQL OS user, as pgimaged runs: the plugin is served
// inside the test process, so pg_rewind changes the data directory with the test process's
// identity.
func TestMain(m *testing.M) { os.Exit(testenv.RunAsPostgres(m)) }

// hints is what a cluster needs to be rewound without data checksums.
var hints = map[string]string{"wal_log_hints": "on"}

func TestArgv(t *testing.T) {
	const (
		bin  = "/usr/lib/postgresql/15/bin"
		conn = "host=10.0.0.1 port=5432 user=postgres dbname=postgres"
	)
	head := []string{bin + "/pg_rewind", "--target-pgdata=D", "--source-server=" + conn}
	tests := []struct {
		name    string
		conn    string
		options sdk.Options
		want    []string // after head, unless wantAll is set
		wantAll []string
	}{
		{name: "no options", want: []string{"--progress"}},
		{
			name:    "map form",
			options: sdk.Options{{Name: "restore-target-wal", Value: "true"}, {Name: "config-file", Value: "/etc/postgresql/15/main/postgresql.conf"}},
			want:    []string{"--restore-target-wal", "--config-file=/etc/postgresql/15/main/postgresql.conf", "--progress"},
		},
		{
			name:    "list form, flags off dropped, progress given once",
			options: sdk.Options{{Name: "debug", Flag: true}, {Name: "no-sync", Value: "off"}, {Name: "progress", Flag: true}},
			want:    []string{"--debug", "--progress"},
		},
		{
			name: "a password in the connection string is masked",
			conn: "host=10.0.0.1 user=postgres password='s3cret pw'",
			wantAll: []string{bin + "/pg_rewind", "--target-pgdata=D",
				"--source-server=host=10.0.0.1 user=postgres password='" + sdk.Mask + "'", "--progress"},
		},
	}
	c := plugintest.Connect(t, New())
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := sdk.CloneRequest{Method: "rewind", Options: tc.options, ConnString: conn,
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
			if len(plan.Commands) != 1 {
				t.Fatalf("plan has %d commands, want 1", len(plan.Commands))
			}
			if got := plan.Commands[0].Argv; !reflect.DeepEqual(got, want) {
				t.Errorf("argv\n got %q\nwant %q", got, want)
			}
		})
	}
}

// TestProgress feeds pg_rewind's --progress lines (PostgreSQL 15's format) through the meter.
func TestProgress(t *testing.T) {
	lines := []string{
		"pg_rewind: servers diverged at WAL location 0/3000060 on timeline 1",
		"pg_rewind: rewinding from last common checkpoint at 0/2000060 on timeline 1",
		"pg_rewind: reading source file list",
		"    0/36125 kB (0%) copied",
		"18000/36125 kB (49%) copied",
		"36125/36125 kB (100%) copied",
		"pg_rewind: Done!",
	}
	rec := &plugintest.Recorder{}
	m := &progressMeter{rep: rec}
	var logged []string
	for _, l := range lines {
		if m.line("stderr", l) {
			logged = append(logged, l)
		}
	}
	want := []sdk.Progress{
		{Phase: "rewind", Done: 0, Total: 36125 * 1024},
		{Phase: "rewind", Done: 18000 * 1024, Total: 36125 * 1024},
		{Phase: "rewind", Done: 36125 * 1024, Total: 36125 * 1024},
	}
	if got := rec.ProgressEvents(); !reflect.DeepEqual(got, want) {
		t.Errorf("progress events\n got %+v\nwant %+v", got, want)
	}
	if wantLogged := []string{lines[0], lines[1], lines[2], lines[5], lines[6]}; !reflect.DeepEqual(logged, wantLogged) {
		t.Errorf("lines let into the log\n got %q\nwant %q", logged, wantLogged)
	}
	if m.noRewind() {
		t.Error("a rewind that copied files was taken for one with nothing to do")
	}
	m.line("stderr", "pg_rewind: no rewind required")
	if !m.noRewind() {
		t.Error(`"no rewind required" was not noticed`)
	}
}

// TestRewindable: what pg_controldata says decides whether pg_rewind can work on the target.
func TestRewindable(t *testing.T) {
	const clean, crashed = "shut down", "in production"
	tests := []struct {
		name          string
		ctl           control
		serverVersion int
		wantErr       string // "" for none
		noHintLog     bool
	}{
		{name: "wal_log_hints", ctl: control{"wal_log_hints setting": "on", "Data page checksum version": "0", "Database cluster state": clean}, serverVersion: 150000},
		{name: "data checksums", ctl: control{"wal_log_hints setting": "off", "Data page checksum version": "1", "Database cluster state": clean}, serverVersion: 150000},
		{name: "neither", ctl: control{"wal_log_hints setting": "off", "Data page checksum version": "0", "Database cluster state": clean}, serverVersion: 150000,
			wantErr: "rewind needs wal_log_hints = on or data checksums", noHintLog: true},
		{name: "crashed, pg_rewind finishes its recovery", ctl: control{"wal_log_hints setting": "on", "Data page checksum version": "0", "Database cluster state": crashed}, serverVersion: 150000},
		{name: "crashed, before 13", ctl: control{"wal_log_hints setting": "on", "Data page checksum version": "0", "Database cluster state": crashed}, serverVersion: 120000,
			wantErr: "not shut down cleanly (in production)"},
		{name: "a standby shut down", ctl: control{"wal_log_hints setting": "on", "Data page checksum version": "0", "Database cluster state": "shut down in recovery"}, serverVersion: 120000},
		{name: "unreadable output", ctl: control{"Database cluster state": clean}, serverVersion: 150000, wantErr: "does not say"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.ctl.rewindable(tc.serverVersion)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("got %v, want an error saying %q", err, tc.wantErr)
			case errors.Is(err, ErrNoHintLog) != tc.noHintLog:
				t.Errorf("errors.Is(%v, ErrNoHintLog) = %v, want %v", err, !tc.noHintLog, tc.noHintLog)
			}
		})
	}
}

func TestConformance(t *testing.T) {
	invalid := func(name string, o sdk.Option) plugintest.InvalidCase {
		return plugintest.InvalidCase{Name: name, Option: o.Name, Request: sdk.ValidateRequest{
			Method: "rewind", Path: sdk.PathClone, Options: sdk.Options{{Name: "debug", Flag: true}, o}}}
	}
	valid := func(name string, opts ...sdk.Option) plugintest.ValidCase {
		return plugintest.ValidCase{Name: name, Request: sdk.ValidateRequest{Method: "rewind", Path: sdk.PathClone, Options: opts}}
	}
	testenv.RequirePostgresUser(t)
	plugintest.Conformance(t, New(), plugintest.Suite{
		// A rewind cancelled midway fails; one left to run succeeds.
		Clone: func(t *testing.T) sdk.CloneRequest { return diverge(t, "fast", false, 0).request() },
		CheckDataDir: func(t *testing.T, dir string) {
			if _, err := os.Stat(filepath.Join(dir, "backup_label")); err != nil {
				t.Errorf("the rewound directory has no backup_label (it must start in recovery from the last common checkpoint): %v", err)
			}
		},
		ValidOptions: []plugintest.ValidCase{
			valid("no options"),
			valid("map form", sdk.Option{Name: "restore-target-wal", Value: "true"}, sdk.Option{Name: "config-file", Value: "/etc/postgresql.conf"}),
			valid("list form", sdk.Option{Name: "debug", Flag: true}, sdk.Option{Name: "no-ensure-shutdown", Flag: true}),
			valid("progress given", sdk.Option{Name: "progress", Flag: true}),
		},
		InvalidOptions: []plugintest.InvalidCase{
			invalid("target-pgdata", sdk.Option{Name: "target-pgdata", Value: "/elsewhere"}),
			invalid("source-server", sdk.Option{Name: "source-server", Value: "host=elsewhere"}),
			invalid("source-pgdata", sdk.Option{Name: "source-pgdata", Value: "/elsewhere"}),
			invalid("dry-run", sdk.Option{Name: "dry-run", Flag: true}),
			invalid("write-recovery-conf", sdk.Option{Name: "write-recovery-conf", Flag: true}),
			invalid("version", sdk.Option{Name: "version", Flag: true}),
			invalid("help", sdk.Option{Name: "help", Flag: true}),
			invalid("short D", sdk.Option{Name: "D", Value: "/elsewhere"}),
			invalid("short n", sdk.Option{Name: "n", Flag: true}),
			invalid("not a boolean", sdk.Option{Name: "debug", Value: "maybe"}),
			{Name: "bootstrap path", Request: sdk.ValidateRequest{Method: "rewind", Path: sdk.PathBootstrap}},
		},
	})
}

// diverged is a former primary, stopped, whose replica was promoted and written to while the
// former primary went on taking writes of its own.
type diverged struct {
	old     *pgtest.Primary
	promote *pg.Server // the promoted replica, on timeline 2
	source  pg.Conn    // the superuser's connection to it, without the password
	pgpass  string     // a pgpass file for it
}

// diverge makes a primary (with wal_log_hints) and a streaming replica with a row "before",
// promotes the replica and writes "after promotion" on it, writes "divergent" on the former
// primary and stops it in mode (fast: cleanly; immediate: as in a crash). The replica keeps its
// unix socket outside its data directory unless socketInDataDir. With segments > 0 the former
// primary keeps no WAL for replicas (wal_keep_size = 0) and, before it stops, writes on into
// that many further WAL segments with no checkpoint in between: its last checkpoint and the
// point where the timelines diverged are then in segments that the next checkpoint removes.
func diverge(t *testing.T, mode string, socketInDataDir bool, segments int) diverged {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	params := maps.Clone(hints)
	if segments > 0 {
		params["wal_keep_size"] = "0"
	}
	p := pgtest.StartPrimary(t, pgtest.Options{Parameters: params})
	p.Exec(t, "CREATE TABLE t (v text PRIMARY KEY)")
	p.Exec(t, "INSERT INTO t VALUES ('before')")

	replica := p.OSUser.DataDir(t)
	p.Basebackup(t, replica)
	conninfo := p.ReplConn()
	conninfo.Params = map[string]string{"passfile": p.WritePgpass(t)}
	if err := pg.WriteRecovery(replica, 15, pg.Recovery{Settings: map[string]string{"primary_conninfo": conninfo.DSN()}, Standby: true}); err != nil {
		t.Fatal(err)
	}
	socketDir := replica
	if !socketInDataDir {
		socketDir = p.OSUser.TempDir(t)
	}
	s := p.StartCopyWithSocket(t, replica, socketDir)
	if err := s.WaitStreaming(ctx); err != nil {
		t.Fatal(err)
	}
	pgtest.WaitFor(t, s, "SELECT count(*) FROM t", "1")

	conn, err := s.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "SELECT pg_promote()"); err != nil {
		t.Fatal(err)
	}
	if err := s.WaitPromoted(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "INSERT INTO t VALUES ('after promotion')"); err != nil {
		t.Fatal(err)
	}
	// The control file names the new timeline only after a checkpoint; pg_rewind reads it.
	if err := s.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}

	p.Exec(t, "INSERT INTO t VALUES ('divergent')")
	p.Exec(t, "CREATE TABLE only_on_the_old (id int)")
	for i := range segments {
		p.Exec(t, "INSERT INTO only_on_the_old VALUES ($1)", i)
		p.Exec(t, "SELECT pg_switch_wal()")
	}
	if err := p.Server.Stop(ctx, mode); err != nil {
		t.Fatal(err)
	}

	d := diverged{old: p, promote: s, source: pg.Conn{Host: "127.0.0.1", Port: s.Port, User: p.Superuser, Database: "postgres"}}
	d.pgpass = filepath.Join(p.OSUser.TempDir(t), "pgpass")
	err = pg.WritePgpass(d.pgpass, pg.PassEntry{Host: "127.0.0.1", Port: strconv.Itoa(s.Port), User: p.Superuser, Password: p.SuperPass})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// request is the plugin's request to rewind the former primary toward the promoted replica.
func (d diverged) request() sdk.CloneRequest {
	return sdk.CloneRequest{
		Method:     "rewind",
		Cluster:    sdk.Cluster{Scope: "batman", Name: "node1", DataDir: d.old.DataDir, BinDir: d.old.BinDir, ServerVersion: 150000},
		ConnString: d.source.DSN(),
		Env:        map[string]string{"PGPASSFILE": d.pgpass},
	}
}

// TestRewind rewinds a former primary toward the promoted replica through the plugin, then
// starts it as a standby as the daemon does: it streams the new timeline, has the new
// primary's rows and not its own divergent ones. A former primary that crashed after writing
// several WAL segments past the divergence is rewound too: the crash recovery before the
// rewind keeps the WAL the rewind reads.
func TestRewind(t *testing.T) {
	testenv.RequirePostgresUser(t)
	tests := []struct {
		name     string
		mode     string
		segments int
		standby  bool // started again as a standby (standby.signal) of nothing, then crashed
	}{
		{name: "stopped fast", mode: "fast"},
		{name: "stopped immediate", mode: "immediate"},
		{name: "crashed several WAL segments after the divergence", mode: "immediate", segments: 4},
		{name: "crashed as a standby", mode: "fast", standby: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := diverge(t, tc.mode, false, tc.segments)
			if tc.standby {
				if err := pg.WriteRecovery(d.old.DataDir, 15, pg.Recovery{Standby: true}); err != nil {
					t.Fatal(err)
				}
				if err := d.old.Server.Start(context.Background()); err != nil {
					t.Fatal(err)
				}
				if err := d.old.Server.Stop(context.Background(), "immediate"); err != nil {
					t.Fatal(err)
				}
			}
			res, rec := plugintest.AssertClone(t, plugintest.Connect(t, New()), d.request())
			plugintest.AssertNoSecret(t, rec, d.old.SuperPass)
			if res.Summary != "data directory rewound with pg_rewind" {
				t.Errorf("summary %q", res.Summary)
			}
			if ev := rec.ProgressEvents(); len(ev) == 0 || ev[len(ev)-1].Done != ev[len(ev)-1].Total || ev[0].Phase != "rewind" {
				t.Errorf("progress events %+v, want them to end complete", ev)
			}
			recovered := false
			for _, l := range rec.Logs() {
				recovered = recovered || strings.Contains(l.Message, "crash recovery of the data directory in single-user mode")
			}
			if want := tc.mode == "immediate" || tc.standby; recovered != want {
				t.Errorf("crash recovery before pg_rewind logged: %v, want %v (logs %+v)", recovered, want, rec.Logs())
			}
			if aside, _ := filepath.Glob(filepath.Join(d.old.DataDir, "*.pgimaged-rewind")); len(aside) > 0 {
				t.Errorf("signal files left set aside: %q", aside)
			}
			if ready, _ := filepath.Glob(filepath.Join(d.old.DataDir, "pg_wal", "archive_status", "*.ready")); len(ready) > 0 {
				t.Errorf("the rewound directory has WAL marked for an archiving it never had: %q", ready)
			}

			// What the daemon does next: standby settings toward the new primary, start.
			conninfo := d.source
			conninfo.Params = map[string]string{"passfile": d.pgpass}
			if err := pg.WriteRecovery(d.old.DataDir, 15, pg.Recovery{Settings: map[string]string{"primary_conninfo": conninfo.DSN()}, Standby: true}); err != nil {
				t.Fatal(err)
			}
			s := d.old.StartCopy(t, d.old.DataDir)
			pgtest.WaitFor(t, s, "SELECT status || ' ' || received_tli FROM pg_stat_wal_receiver", "streaming 2")
			pgtest.WaitFor(t, s, "SELECT string_agg(v, ',' ORDER BY v) FROM t", "after promotion,before")
			pgtest.WaitFor(t, s, "SELECT count(*) FROM pg_class WHERE relname = 'only_on_the_old'", "0")
		})
	}
}

// TestRewindRefuses: targets pg_rewind must not or cannot work on fail the method before it
// changes anything, with the reason; a refused password fails it with libpq's.
func TestRewindRefuses(t *testing.T) {
	testenv.RequirePostgresUser(t)
	source := pgtest.StartPrimary(t, pgtest.Options{Parameters: hints})
	pgpass := source.WritePgpass(t)
	u := testenv.PostgresUser(t)
	tests := []struct {
		name   string
		target func(t *testing.T) string
		pgpass func(t *testing.T) string // default: the source's
		want   string
	}{
		{name: "an empty directory", target: func(t *testing.T) string { return u.DataDir(t) }, want: "holds no cluster (no PG_VERSION)"},
		{name: "neither wal_log_hints nor data checksums", target: func(t *testing.T) string {
			return pgtest.Initdb(t, pgtest.Options{}).DataDir
		}, want: "rewind needs wal_log_hints = on or data checksums"},
		{name: "its server running", target: func(t *testing.T) string {
			return pgtest.StartPrimary(t, pgtest.Options{Parameters: hints}).DataDir
		}, want: "its server is running"},
		{name: "a wrong password", target: func(t *testing.T) string {
			p := pgtest.Initdb(t, pgtest.Options{DataChecksums: true})
			return p.DataDir
		}, pgpass: func(t *testing.T) string {
			path := filepath.Join(u.TempDir(t), "pgpass")
			if err := pg.WritePgpass(path, pg.PassEntry{Host: "127.0.0.1", Port: strconv.Itoa(source.Port), User: source.Superuser, Password: "not-the-password"}); err != nil {
				t.Fatal(err)
			}
			return path
		}, want: `password authentication failed for user "postgres"`},
	}
	c := plugintest.Connect(t, New())
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pf := pgpass
			if tc.pgpass != nil {
				pf = tc.pgpass(t)
			}
			req := sdk.CloneRequest{
				Method:     "rewind",
				Cluster:    sdk.Cluster{Scope: "batman", DataDir: tc.target(t), BinDir: source.BinDir, ServerVersion: 150000},
				ConnString: source.Conn().DSN(),
				Env:        map[string]string{"PGPASSFILE": pf},
			}
			_, err := c.Clone(context.Background(), req, &plugintest.Recorder{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Clone: %v, want a failure saying %q", err, tc.want)
			}
			t.Logf("refused: %v", err)
			if !errors.Is(err, sdk.ErrMethodFailed) {
				t.Errorf("Clone: %v, want sdk.ErrMethodFailed, so that a chain goes on", err)
			}
		})
	}
}

// TestRewindSourceSocketInDataDir: pg_rewind copies the source's whole data directory and
// cannot read a unix socket there; the failure says what to change.
func TestRewindSourceSocketInDataDir(t *testing.T) {
	testenv.RequirePostgresUser(t)
	_, err := plugintest.Connect(t, New()).Clone(context.Background(), diverge(t, "fast", true, 0).request(), &plugintest.Recorder{})
	if err == nil || !strings.Contains(err.Error(), "set the source's unix_socket_directories to a directory outside its data directory") {
		t.Fatalf("Clone: %v, want a failure naming unix_socket_directories", err)
	}
	if !errors.Is(err, sdk.ErrMethodFailed) {
		t.Errorf("Clone: %v, want sdk.ErrMethodFailed", err)
	}
}

// TestRewindListsTheSourceWithoutJIT: pg_rewind's listing of the source's files runs with JIT
// off. The source logs every statement's plan (auto_explain); with JIT on, the listing's
// estimated cost has the server compile it, and its plan ends with a JIT section.
func TestRewindListsTheSourceWithoutJIT(t *testing.T) {
	testenv.RequirePostgresUser(t)
	d := diverge(t, "fast", false, 0)
	ctx := context.Background()
	conn, err := d.promote.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"LOAD 'auto_explain'",
		"ALTER SYSTEM SET session_preload_libraries = 'auto_explain'",
		"ALTER SYSTEM SET auto_explain.log_min_duration = 0",
		"SELECT pg_reload_conf()",
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	conn.Close(ctx)
	logFile := d.promote.LogFile
	if logFile == "" {
		logFile = filepath.Join(d.promote.DataDir, pg.DefaultLogFile)
	}
	from := pg.LogSize(logFile)

	plugintest.AssertClone(t, plugintest.Connect(t, New()), d.request())

	b, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	// Each logged plan starts with a line saying "plan:"; the listing's is the one naming pg_ls_dir.
	var listing string
	for _, plan := range strings.Split(string(b[from:]), "plan:") {
		if strings.Contains(plan, "pg_ls_dir(") {
			listing = plan
		}
	}
	if listing == "" {
		t.Fatalf("the source logged no plan of pg_rewind's file listing:\n%s", b[from:])
	}
	if strings.Contains(listing, "JIT:") {
		t.Errorf("pg_rewind's file listing was compiled by the source's JIT:%s", listing)
	}
}

// TestSourceSession: jit = off reaches pg_rewind's session through PGOPTIONS, or through the
// connection string when that sets options (libpq then ignores PGOPTIONS), ahead of the
// options given, so that the user's own jit setting wins; nothing is added for a server
// without the jit setting.
func TestSourceSession(t *testing.T) {
	const conn = "host=10.0.0.1 port=5432 user=postgres"
	tests := []struct {
		name      string
		conn      string
		env       map[string]string
		version   int
		wantConn  string
		wantOpts  string // PGOPTIONS
		noOptions bool   // PGOPTIONS unset
	}{
		{name: "no options", conn: conn, version: 150000, wantConn: conn, wantOpts: "-c jit=off"},
		{name: "PGOPTIONS in the request", conn: conn, env: map[string]string{"PGOPTIONS": "-c jit=on"}, version: 150000,
			wantConn: conn, wantOpts: "-c jit=off -c jit=on"},
		{name: "options in the connection string", conn: conn + " options='-c work_mem=64MB'", version: 150000,
			wantConn: conn + " options='-c work_mem=64MB' options='-c jit=off -c work_mem=64MB'", noOptions: true},
		{name: "options in a URL", conn: "postgres://postgres@10.0.0.1:5432/postgres?options=-c%20work_mem%3D64MB", version: 150000,
			wantConn: "postgres://postgres@10.0.0.1:5432/postgres?options=-c%20work_mem%3D64MB&options=-c+jit%3Doff+-c+work_mem%3D64MB", noOptions: true},
		{name: "PostgreSQL 10", conn: conn, version: 100000, wantConn: conn, noOptions: true},
		{name: "version unknown", conn: conn, version: 0, wantConn: conn, noOptions: true},
	}
	t.Setenv("PGOPTIONS", "")
	os.Unsetenv("PGOPTIONS")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := sdk.CloneRequest{ConnString: tc.conn, Env: tc.env, Cluster: sdk.Cluster{ServerVersion: tc.version}}
			gotConn, env := sourceSession(req)
			if gotConn != tc.wantConn {
				t.Errorf("connection string\n got %q\nwant %q", gotConn, tc.wantConn)
			}
			opts, ok := env["PGOPTIONS"]
			if tc.noOptions && ok {
				t.Errorf("PGOPTIONS %q, want it unset", opts)
			}
			if !tc.noOptions && opts != tc.wantOpts {
				t.Errorf("PGOPTIONS %q, want %q", opts, tc.wantOpts)
			}
			if settings, _, err := libpq.Parse(gotConn); err != nil {
				t.Errorf("the connection string no longer reads: %v", err)
			} else if o, ok := settings["options"]; tc.noOptions && tc.version >= 110000 && !strings.HasPrefix(o, "-c jit=off") {
				t.Errorf("options read back %q (present %v), want them to start with -c jit=off", o, ok)
			}
		})
	}
}
