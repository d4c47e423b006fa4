package main_test

import (
	"context"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pgimaged/pgimaged/core/pg"
	"github.com/pgimaged/pgimaged/internal/pgtest"
	"github.com/pgimaged/pgimaged/internal/testenv"
)

// stopCommand is the command line a one-shot bootstrap or clone says stops the PostgreSQL it
// left running, after checking that it names the port and the data directory.
func stopCommand(t *testing.T, r result, port int, dataDir string) string {
	t.Helper()
	if !strings.Contains(r.stderr, "left running on port "+strconv.Itoa(port)) || !strings.Contains(r.stderr, dataDir) {
		t.Fatalf("the command does not say PostgreSQL is left running on port %d in %s: %s", port, dataDir, r)
	}
	_, after, ok := strings.Cut(r.stderr, "stop it with:\n")
	if !ok {
		t.Fatalf("no stop command: %s", r)
	}
	line, _, _ := strings.Cut(after, "\n")
	return strings.TrimSpace(line)
}

// runStopCommand runs the command line as a person would paste it into a shell, and checks
// PostgreSQL is gone.
func runStopCommand(t *testing.T, line, dataDir string) {
	t.Helper()
	if !strings.HasPrefix(line, testenv.PGBinDir(t)+"/pg_ctl ") {
		t.Errorf("the stop command %q does not use the configured bin_dir %s", line, testenv.PGBinDir(t))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "sh", "-c", line).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", line, err, out)
	}
	s := &pg.Server{BinDir: testenv.PGBinDir(t), DataDir: dataDir}
	if _, running := s.Running(); running {
		t.Errorf("PostgreSQL still runs after %s", line)
	}
}

func TestOneShotSaysPostgresIsLeftRunning(t *testing.T) {
	n := newNode(t, "node1", "bootstrap { initdb = [{ locale = \"C\" }] }", "")
	r := run(t, n.env, "bootstrap", "-config", n.config)
	if r.code != 0 {
		t.Fatalf("bootstrap failed: %s", r)
	}
	runStopCommand(t, stopCommand(t, r, n.port, n.dataDir), n.dataDir)

	p := pgtest.StartPrimary(t, pgtest.Options{})
	c := replicaOf(t, p, "replica1", `method "basebackup" { checkpoint = "fast" }`)
	r = run(t, c.env, "clone", "-config", c.config, "--connstring", p.ConnURL())
	if r.code != 0 {
		t.Fatalf("clone failed: %s", r)
	}
	runStopCommand(t, stopCommand(t, r, c.port, c.dataDir), c.dataDir)
}

func TestOneShotStopLeavesPostgresStopped(t *testing.T) {
	n := newNode(t, "node1", "bootstrap { initdb = [{ locale = \"C\" }] }", "")
	r := run(t, n.env, "bootstrap", "-config", n.config, "--stop")
	if r.code != 0 {
		t.Fatalf("bootstrap --stop failed: %s", r)
	}
	checkStopped(t, r, n.dataDir)

	p := pgtest.StartPrimary(t, pgtest.Options{})
	c := replicaOf(t, p, "replica1", `method "basebackup" { checkpoint = "fast" }`)
	r = run(t, c.env, "clone", "-config", c.config, "-json", "--stop", "--connstring", p.ConnURL())
	if r.code != 0 {
		t.Fatalf("clone --stop failed: %s", r)
	}
	checkStopped(t, r, c.dataDir)
	if res := parseClone(t, r); res.Running {
		t.Errorf("clone --stop reports PostgreSQL running: %+v", res)
	}
}

func checkStopped(t *testing.T, r result, dataDir string) {
	t.Helper()
	s := &pg.Server{BinDir: testenv.PGBinDir(t), DataDir: dataDir}
	if _, running := s.Running(); running {
		t.Errorf("--stop left PostgreSQL running")
	}
	if !pg.HasCluster(dataDir) {
		t.Errorf("no cluster in %s", dataDir)
	}
	if !strings.Contains(r.stderr, "PostgreSQL stopped") || strings.Contains(r.stderr, "left running") {
		t.Errorf("the command does not say it stopped PostgreSQL: %s", r)
	}
}
