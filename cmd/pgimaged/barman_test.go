package main_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgimaged/pgimaged/internal/pgtest"
	"github.com/pgimaged/pgimaged/internal/testenv"
)

// barmanRepo is a real Barman server ("srv") on this host holding a backup (backup_method =
// postgres) of a real primary that archives its WAL into Barman's incoming directory.
type barmanRepo struct {
	primary *pgtest.Primary
	bin     string
	config  string
	user    testenv.PGUser
}

// barmanPlugin is the Python plugin's entry point in this checkout; it needs Debian's python3
// with python3-grpcio and python3-protobuf.
func barmanPlugin(t *testing.T) string {
	t.Helper()
	p := filepath.Join(testenv.RepoRoot(t), "examples", "plugins", "barman", "pgimaged-plugin-barman")
	out, err := exec.Command("/usr/bin/python3", "-c", "import grpc, google.protobuf").CombinedOutput()
	if err != nil {
		testenv.Missing(t, "gRPC for /usr/bin/python3 (python3-grpcio, python3-protobuf): %v\n%s", err, out)
	}
	return p
}

func newBarmanRepo(t *testing.T) *barmanRepo {
	t.Helper()
	testenv.RequirePostgresUser(t)
	bin := testenv.LookPath(t, "barman", "/usr/bin")
	u := testenv.PostgresUser(t)
	base := u.TempDir(t)
	home := filepath.Join(base, "home")
	incoming := filepath.Join(home, "srv", "incoming")
	r := &barmanRepo{bin: bin, config: filepath.Join(base, "barman.conf"), user: u}
	r.primary = pgtest.Initdb(t, pgtest.Options{
		// Barman reaches the primary over its socket, as the superuser and for replication.
		HBA: []string{"local all all trust", "local replication all trust"},
		Parameters: map[string]string{
			"archive_mode":    "on",
			"archive_command": fmt.Sprintf("test ! -f %s/%%f && cp %%p %s/%%f", incoming, incoming),
		},
	})
	for _, d := range []string{incoming, filepath.Join(base, "log")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	p := r.primary
	conf := fmt.Sprintf(`[barman]
barman_user = %s
barman_home = %s
barman_lock_directory = %s
log_file = %s/log/barman.log
log_level = INFO
configuration_files_directory = %s/none

[srv]
description = "pgimaged test primary"
conninfo = host=%s port=%d user=%s dbname=postgres
streaming_conninfo = host=%s port=%d user=%s
backup_method = postgres
archiver = on
path_prefix = %s
`, u.Name, home, home, base, base, p.SocketDir, p.Port, p.Superuser, p.SocketDir, p.Port, p.Superuser, p.BinDir)
	if err := os.WriteFile(r.config, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	u.Chown(t, base)
	p.Start(t)
	p.EnsureRoles(t)
	r.switchWAL(t)
	r.run(t, "backup", "--wait", "--wait-timeout", "60", "srv")
	return r
}

// run runs barman with the repository's configuration as the PostgreSQL OS user.
func (r *barmanRepo) run(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := r.user.AsUser(exec.CommandContext(ctx, r.bin, append([]string{"-c", r.config}, args...)...))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("barman %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// slowConfig is the repository's configuration with recovery throttled to 200 kB/s, so that a
// recovery lasts long enough to be interrupted.
func (r *barmanRepo) slowConfig(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(r.config)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(filepath.Dir(r.config), "barman-slow.conf")
	if err := os.WriteFile(p, append(b, "bandwidth_limit = 200\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	r.user.Chown(t, p)
	return p
}

// switchWAL ends the current WAL segment and waits until Barman has archived it.
func (r *barmanRepo) switchWAL(t *testing.T) {
	t.Helper()
	r.run(t, "switch-wal", "--force", "--archive", "--archive-timeout", "60", "srv")
}

func TestBarmanPlugin(t *testing.T) {
	plugin := barmanPlugin(t)
	repo := newBarmanRepo(t)
	p := repo.primary
	p.Exec(t, "CREATE TABLE t (id int)")
	p.Exec(t, "INSERT INTO t VALUES (1)")
	repo.switchWAL(t)
	block := fmt.Sprintf("plugin \"barman\" { path = %q }\n", plugin)

	t.Run("listed", func(t *testing.T) {
		n := newNode(t, "lister", block, "")
		r := run(t, n.env, "plugins", "-config", n.config)
		if r.code != 0 || !strings.Contains(r.stdout, "barman") || !strings.Contains(r.stdout, "bootstrap,clone") {
			t.Fatalf("pgimaged plugins does not list the barman plugin: %s", r)
		}
	})

	t.Run("passes the conformance checks", func(t *testing.T) {
		r := run(t, nil, "plugins", "check", plugin)
		if r.code != 0 || !strings.Contains(r.stdout, "mutual TLS") || strings.Contains(r.stdout, "FAIL") {
			t.Fatalf("pgimaged plugins check fails the barman plugin: %s", r)
		}
	})

	t.Run("clone a replica that then streams from the primary", func(t *testing.T) {
		n := replicaOf(t, p, "replica1", block+fmt.Sprintf(`
method "barman" {
  server        = "srv"
  barman_config = %q
}`, repo.config))
		withMethods(t, n, "barman")
		c := cloneFrom(t, n, p)
		if c.Method != "barman" || len(c.Attempts) != 1 || !c.Running {
			t.Fatalf("clone result: %+v", c)
		}
		conn := connectTCP(t, n.port, p.Superuser, p.SuperPass, "postgres")
		eventually(t, time.Minute, "the replica streams from the primary", func() bool {
			return p.QueryString(t, "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'") == "1"
		})
		p.Exec(t, "INSERT INTO t VALUES (2)")
		eventually(t, time.Minute, "the row written after the clone arrives", func() bool {
			return queryString(t, conn, "SELECT count(*)::text FROM t") == "2"
		})
	})

	t.Run("a cancelled clone leaves no process behind", func(t *testing.T) {
		slow := repo.slowConfig(t)
		n := replicaOf(t, p, "cancelled", block+fmt.Sprintf(`
method "barman" {
  server        = "srv"
  barman_config = %q
}`, slow))
		withMethods(t, n, "barman")
		cmd := exec.Command(pgimagedBin(t), "clone", "-config", n.config, "--connstring", p.ConnURL())
		cmd.Env = append(os.Environ(), n.env...)
		var out syncBuffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		eventually(t, time.Minute, "barman recover copies into the data directory", func() bool {
			return dirSize(n.dataDir) > 1<<20
		})
		if len(processesOf(slow)) == 0 {
			t.Fatalf("no barman process runs with %s while the clone copies:\n%s", slow, out.String())
		}
		if err := cmd.Process.Signal(os.Interrupt); err != nil {
			t.Fatal(err)
		}
		var err error
		select {
		case err = <-exited:
		case <-time.After(time.Minute):
			_ = cmd.Process.Kill()
			t.Fatalf("pgimaged clone did not end after SIGINT:\n%s", out.String())
		}
		if err == nil {
			t.Errorf("the interrupted clone succeeded:\n%s", out.String())
		}
		// Signals already sent take a moment to arrive.
		left := processesOf(slow, n.dataDir, plugin)
		for end := time.Now().Add(5 * time.Second); len(left) > 0 && time.Now().Before(end); {
			time.Sleep(100 * time.Millisecond)
			left = processesOf(slow, n.dataDir, plugin)
		}
		if len(left) > 0 {
			t.Errorf("still running after the interrupted clone: %v", left)
		}
	})

	t.Run("point-in-time bootstrap of a new cluster", func(t *testing.T) {
		target := pitrTarget(t, p)
		repo.switchWAL(t)
		n := newNodeWith(t, "restored", block+fmt.Sprintf(`
bootstrap { method = "pitr" }
method "pitr" {
  plugin        = "barman"
  server        = "srv"
  barman_config = %q
  target_time   = %q
}`, repo.config, target), "", "new-Superuser-pw", "new-Repl-pw")
		checkBootstrappedToTarget(t, n)
	})
}
