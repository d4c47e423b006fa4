package main_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pgimaged/pgimaged/core/pg"
	"github.com/pgimaged/pgimaged/internal/pgtest"
	"github.com/pgimaged/pgimaged/internal/testenv"
)

// node is the files of one test member.
type node struct {
	name                 string // the member's name
	dir, dataDir, config string
	port                 int
	superPass, replPass  string
	env                  []string
}

// nodeConfig writes a configuration for one member. extra is appended inside the file (bootstrap,
// method blocks...); params are postgresql parameters (HCL object body).
func newNode(t *testing.T, name, extra, params string) *node {
	t.Helper()
	return newNodeWith(t, name, extra, params, "Sup3r-"+strconv.FormatInt(time.Now().UnixNano(), 36), "R3pl-"+strconv.FormatInt(time.Now().UnixNano()%99991, 36)+"x9")
}

// newNodeWith is newNode with given passwords (a replica must use its primary's).
func newNodeWith(t *testing.T, name, extra, params, superPass, replPass string) *node {
	t.Helper()
	return writeNode(t, nodeSpec{scope: "e2e", name: name, params: params, extra: extra, superPass: superPass, replPass: replPass})
}

// nodeSpec is what differs between the members the tests configure.
type nodeSpec struct {
	scope, name         string
	nameInPath          bool   // data directory <dir>/<name>/data instead of <dir>/data
	under               string // with nameInPath: data directory <dir>/<under>/<name>/data
	top                 string // top-level settings: dcs block, loop_wait, tags
	params              string // more postgresql parameters, each as ", name = value"
	extra               string // blocks after postgresql: bootstrap, methods
	postgresql          string // more settings inside the postgresql block
	superPass, replPass string
}

// memberHCL is one member's configuration file as the tests write it: the superuser's
// password through env(), the replication password through file() beside the configuration,
// password logins and replication from 127.0.0.1.
type memberHCL struct {
	scope, name, dataDir string
	pluginDir            string // default: the built plugins
	top                  string // top-level settings: dcs block, loop_wait, tags
	listen, connect      string // host:port each; connect "" for no connect_address
	params               string // more postgresql parameters, each as ", name = value"
	super, superEnv      string // the superuser (default postgres) and the variable holding its password
	repl, replFile       string // the replication role and the file holding its password
	methods              string // create_replica_methods, as an HCL list; "" for the default
	postgresql           string // more settings inside the postgresql block
	extra                string // blocks after postgresql: bootstrap, methods
}

// write writes the replication password into replFile and the configuration into <name>.hcl,
// both in dir, and returns the configuration's path.
func (h memberHCL) write(t testing.TB, dir, replPass string) string {
	t.Helper()
	writeFile(t, dir, h.replFile, replPass+"\n", 0o600)
	if h.pluginDir == "" {
		h.pluginDir = pluginDir(t)
	}
	if h.super == "" {
		h.super = "postgres"
	}
	if h.connect != "" {
		h.connect = fmt.Sprintf("connect_address = %q", h.connect)
	}
	if h.methods != "" {
		h.methods = "create_replica_methods = " + h.methods
	}
	h.methods += "\n  " + h.postgresql
	cfg := fmt.Sprintf(`scope      = %q
name       = %q
data_dir   = %q
plugin_dir = %q
%s

postgresql {
  bin_dir    = %q
  listen     = %q
  %s
  parameters = { shared_buffers = "16MB", fsync = "off", max_connections = 30 %s }
  pg_hba = [
    "host all all 127.0.0.1/32 scram-sha-256",
    "host replication %s 127.0.0.1/32 scram-sha-256",
  ]
  authentication {
    superuser {
      username = %q
      password = env(%q)
    }
    replication {
      username = %q
      password = file(%q)
    }
  }
  %s
}
%s
`, h.scope, h.name, h.dataDir, h.pluginDir, h.top, testenv.PGBinDir(t), h.listen, h.connect, h.params,
		h.repl, h.super, h.superEnv, h.repl, h.replFile, h.methods, h.extra)
	return writeFile(t, dir, h.name+".hcl", cfg, 0o600)
}

// writeNode writes one member's configuration into a fresh directory: its own port, the
// passwords through env() and file(), password logins and replication from 127.0.0.1.
func writeNode(t *testing.T, s nodeSpec) *node {
	t.Helper()
	n := &node{name: s.name, dir: workDir(t), port: pgtest.FreePort(t), superPass: s.superPass, replPass: s.replPass}
	n.dataDir = filepath.Join(n.dir, "data")
	if s.nameInPath {
		if err := os.MkdirAll(filepath.Join(n.dir, s.under, s.name), 0o700); err != nil {
			t.Fatal(err)
		}
		n.dataDir = filepath.Join(n.dir, s.under, s.name, "data")
	}
	n.env = []string{"E2E_SUPERUSER_PASSWORD=" + n.superPass}
	n.config = memberHCL{scope: s.scope, name: s.name, dataDir: n.dataDir, top: s.top, listen: fmt.Sprintf("127.0.0.1:%d", n.port),
		params: s.params, superEnv: "E2E_SUPERUSER_PASSWORD", repl: "replicator", replFile: "repl.pw", extra: s.extra,
		postgresql: s.postgresql,
	}.write(t, n.dir, n.replPass)
	stopServerAtCleanup(t, n.dataDir)
	return n
}

func (n *node) secrets() []string { return []string{n.superPass, n.replPass} }

// serverLog is what PostgreSQL wrote into the member's log, beside its data directory.
func (n *node) serverLog() string {
	b, _ := os.ReadFile(n.dataDir + ".pglog/postgresql.log")
	return string(b)
}

func TestBootstrapInitdb(t *testing.T) {
	work := workDir(t)
	marker := filepath.Join(work, "post_bootstrap.out")
	post := writeFile(t, work, "post.sh", fmt.Sprintf(`#!/bin/sh
set -e
echo "dsn: $1" > %[1]q
echo "pgpassfile set: ${PGPASSFILE:+yes}" >> %[1]q
echo "pgpassfile=$PGPASSFILE" >> %[1]q
psql "$1" -Atc "SELECT 'user=' || current_user" >> %[1]q
`, marker), 0o755)
	n := newNode(t, "node1", fmt.Sprintf(`
bootstrap {
  initdb         = ["data-checksums", { encoding = "UTF8" }, { locale = "C" }]
  post_bootstrap = %q
}`, post), "")
	w := watchArgv(n.secrets()...)
	r := run(t, n.env, "bootstrap", "-config", n.config, "-log-level", "debug")
	leaked, seen := w.Stop()
	if r.code != 0 {
		t.Fatalf("bootstrap failed: %s\nserver log:\n%s", r, n.serverLog())
	}
	checkLoggedPath(t, r.stderr, "bootstrap", "plugin_launch[initdb]", "method[initdb]", "postgres_start", "accepting_connections", "roles")
	sysid, err := pg.SystemIdentifier(n.dataDir)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(r.stdout); got != strconv.FormatUint(sysid, 10) {
		t.Errorf("printed system identifier %q, pg_control has %d", got, sysid)
	}
	conn := connectTCP(t, n.port, "postgres", n.superPass, "postgres")
	if v := queryString(t, conn, "SHOW data_checksums"); v != "on" {
		t.Errorf("data_checksums = %s", v)
	}
	if v := queryString(t, conn, "SHOW server_encoding"); v != "UTF8" {
		t.Errorf("server_encoding = %s", v)
	}
	if v := queryString(t, conn, "SELECT rolreplication::text FROM pg_roles WHERE rolname = 'replicator'"); v != "true" {
		t.Errorf("replication role: rolreplication = %s", v)
	}
	// The replication role logs in with its password for replication.
	if v := queryString(t, conn, "SELECT (rolpassword IS NOT NULL)::text FROM pg_authid WHERE rolname = 'replicator'"); v != "true" {
		t.Errorf("the replication role has no password")
	}
	out, err := os.ReadFile(marker)
	if err != nil {
		t.Fatalf("post_bootstrap did not run: %v", err)
	}
	if !strings.Contains(string(out), "user=postgres") || !strings.Contains(string(out), "pgpassfile set: yes") {
		t.Errorf("post_bootstrap output:\n%s", out)
	}
	for _, s := range n.secrets() {
		if strings.Contains(string(out), s) || strings.Contains(r.stderr, s) || strings.Contains(r.stdout, s) || strings.Contains(n.serverLog(), s) {
			t.Errorf("a password appears in a log or in post_bootstrap's arguments")
		}
	}
	if len(leaked) > 0 {
		t.Errorf("a password appeared on a command line: %q", leaked)
	}
	if seen == 0 || !w.sawArgvContaining("initdb") {
		t.Errorf("the argv watcher never saw initdb run (%d command lines seen)", seen)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(n.dataDir), ".data.pgimaged-incomplete")); !os.IsNotExist(err) {
		t.Errorf("the incomplete marker is still there after success")
	}
	// post_bootstrap's pgpass lives beside the data directory, where a restart after a crash
	// finds it, never in the temporary directory; it is gone afterwards.
	for _, line := range strings.Split(string(out), "\n") {
		if pf, ok := strings.CutPrefix(line, "pgpassfile="); ok {
			if filepath.Dir(pf) != filepath.Dir(n.dataDir) {
				t.Errorf("post_bootstrap's PGPASSFILE %s is not beside the data directory %s", pf, n.dataDir)
			}
			if _, err := os.Stat(pf); !os.IsNotExist(err) {
				t.Errorf("post_bootstrap's pgpass file %s is still there (%v)", pf, err)
			}
		}
	}
}

// backupOf makes a primary with a WAL archive and a plain base backup of it. It returns the
// primary, the backup directory and the archive directory.
func backupOf(t *testing.T) (*pgtest.Primary, string, string) {
	t.Helper()
	u := testenv.PostgresUser(t)
	archive := filepath.Join(u.TempDir(t), "archive")
	if err := os.Mkdir(archive, 0o700); err != nil {
		t.Fatal(err)
	}
	p := pgtest.StartPrimary(t, pgtest.Options{Parameters: map[string]string{
		"archive_mode": "on", "archive_command": "test ! -f " + archive + "/%f && cp %p " + archive + "/%f",
	}})
	backup := filepath.Join(u.TempDir(t), "base")
	p.Basebackup(t, backup)
	return p, backup, archive
}

func TestBootstrapPointInTimeFromBackup(t *testing.T) {
	p, backup, archive := backupOf(t)
	p.Exec(t, "CREATE TABLE events (id int, note text)")
	p.Exec(t, "INSERT INTO events VALUES (1, 'before the target')")
	p.Exec(t, "SELECT pg_create_restore_point('before_cleanup')")
	p.Exec(t, "INSERT INTO events VALUES (2, 'after the target')")
	p.SwitchAndArchive(t)

	script, _ := filepath.Abs("../../examples/pitr/restore_from_basebackup.sh")
	n := newNode(t, "restored", fmt.Sprintf(`
bootstrap {
  method           = "from_backup"
  recovery_timeout = "5m"
}
method "from_backup" {
  command = "%s --backup=%s"
  recovery_conf = {
    restore_command        = "cp %s/%%f %%p"
    recovery_target_name   = "before_cleanup"
    recovery_target_action = "promote"
  }
}`, script, backup, archive), "")
	r := run(t, n.env, "bootstrap", "-config", n.config)
	if r.code != 0 {
		t.Fatalf("bootstrap from backup failed: %s\nserver log:\n%s", r, n.serverLog())
	}
	conn := connectTCP(t, n.port, "postgres", n.superPass, "postgres")
	if v := queryString(t, conn, "SELECT pg_is_in_recovery()::text"); v != "false" {
		t.Errorf("the restored cluster is still in recovery")
	}
	if v := queryString(t, conn, "SELECT string_agg(note, ',' ORDER BY id) FROM events"); v != "before the target" {
		t.Errorf("rows after recovery: %q, want only the row before the target", v)
	}
	if want := p.SystemIdentifier(t); strings.TrimSpace(r.stdout) != strconv.FormatUint(want, 10) {
		t.Errorf("system identifier %q, the backup's cluster is %d", strings.TrimSpace(r.stdout), want)
	}
	if _, err := os.Stat(filepath.Join(n.dataDir, "recovery.signal")); !os.IsNotExist(err) {
		t.Errorf("recovery.signal is still there after promotion")
	}
}

func TestBootstrapFailuresCleanUp(t *testing.T) {
	_, backup, _ := backupOf(t)
	script, _ := filepath.Abs("../../examples/pitr/restore_from_basebackup.sh")
	work := workDir(t)
	failing := writeFile(t, work, "fail.sh", "#!/bin/sh\necho \"restore: cannot reach the backup repository\" >&2\nexit 3\n", 0o755)
	postFail := writeFile(t, work, "post_fail.sh", "#!/bin/sh\necho 'post_bootstrap: cannot create extension' >&2\nexit 1\n", 0o755)
	cases := []struct {
		name, extra, params string
		preexisting         bool // the data directory exists (empty) before
		wantStep            string
		wantTail            string
	}{
		{
			name:     "method exits non-zero",
			extra:    fmt.Sprintf("bootstrap { method = \"restore\" }\nmethod \"restore\" { command = %q }", failing),
			wantStep: "method restore", wantTail: "cannot reach the backup repository",
		},
		{
			name:     "server does not start",
			extra:    "bootstrap { initdb = [{ locale = \"C\" }] }",
			params:   `, shared_buffers_bogus_setting = "1"`,
			wantStep: "start PostgreSQL", wantTail: "shared_buffers_bogus_setting",
		},
		{
			name: "recovery never ends",
			extra: fmt.Sprintf(`bootstrap {
  method = "from_backup"
  recovery_timeout = "3s"
}
method "from_backup" {
  command = "%s --backup=%s"
  recovery_conf = { restore_command = "false", recovery_target = "immediate", recovery_target_action = "pause" }
}`, script, backup),
			wantStep: "wait for recovery to end", preexisting: true,
		},
		{
			name:     "post_bootstrap fails",
			extra:    fmt.Sprintf("bootstrap {\n  initdb = [{ locale = \"C\" }]\n  post_bootstrap = %q\n}", postFail),
			wantStep: "post_bootstrap", wantTail: "cannot create extension",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := newNode(t, "failing", tc.extra, tc.params)
			if tc.preexisting {
				if err := os.Mkdir(n.dataDir, 0o700); err != nil {
					t.Fatal(err)
				}
			}
			r := run(t, n.env, "bootstrap", "-config", n.config)
			if r.code == 0 {
				t.Fatalf("bootstrap succeeded: %s", r)
			}
			if !strings.Contains(r.stderr, tc.wantStep+":") {
				t.Errorf("the reason does not name step %q:\n%s", tc.wantStep, r.stderr)
			}
			if tc.wantTail != "" && !strings.Contains(r.stderr, tc.wantTail) {
				t.Errorf("the reason does not carry the log line %q:\n%s", tc.wantTail, r.stderr)
			}
			if procs := pgProcessesIn(n.dataDir); len(procs) > 0 {
				t.Errorf("processes left running in the data directory: %v", procs)
			}
			if tc.preexisting {
				ents, err := os.ReadDir(n.dataDir)
				if err != nil {
					t.Fatalf("the data directory that existed before is gone: %v", err)
				}
				if len(ents) != 0 {
					t.Errorf("the data directory still holds %d entries", len(ents))
				}
			} else if _, err := os.Stat(n.dataDir); !os.IsNotExist(err) {
				t.Errorf("the data directory this attempt created is still there (%v)", err)
			}
			if _, err := os.Stat(filepath.Join(n.dir, ".data.pgimaged-incomplete")); !os.IsNotExist(err) {
				t.Errorf("the incomplete marker is left behind")
			}
		})
	}
}

func TestBootstrapRefusesForeignDataDirectory(t *testing.T) {
	n := newNode(t, "node1", "", "")
	if err := os.Mkdir(n.dataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	keep := writeFile(t, n.dataDir, "precious.txt", "not pgimaged's", 0o600)
	r := run(t, n.env, "bootstrap", "-config", n.config)
	if r.code == 0 {
		t.Fatalf("bootstrap into a non-empty directory succeeded: %s", r)
	}
	if b, err := os.ReadFile(keep); err != nil || string(b) != "not pgimaged's" {
		t.Fatalf("a file pgimaged did not create was touched: %v", err)
	}
	if !strings.Contains(r.stderr, "not empty") {
		t.Errorf("unclear refusal:\n%s", r.stderr)
	}
}

func TestBootstrapImageOnlyLeavesServerStopped(t *testing.T) {
	n := newNode(t, "node1", "bootstrap { initdb = [{ locale = \"C\" }] }", "")
	r := run(t, n.env, "bootstrap", "-config", n.config, "--image-only")
	if r.code != 0 {
		t.Fatalf("bootstrap --image-only failed: %s", r)
	}
	if !pg.HasCluster(n.dataDir) {
		t.Fatal("no cluster in the data directory")
	}
	s := &pg.Server{BinDir: testenv.PGBinDir(t), DataDir: n.dataDir}
	if _, running := s.Running(); running {
		t.Error("--image-only started PostgreSQL")
	}
}
