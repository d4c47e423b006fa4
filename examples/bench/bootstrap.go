package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// runBootstrap compares a lone `pgimaged bootstrap` (method, start, roles, as a user runs it with
// a configuration file; it returns with PostgreSQL up) with the bare sequence it replaces:
// initdb, pg_ctl start -w, and psql creating the replication role. The server is stopped after
// each run, outside the measured time.
func runBootstrap(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c common
	fs := flag.NewFlagSet("bootstrap", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c.register(fs, 5)
	if err := fs.Parse(args); err != nil {
		return err
	}
	m, err := c.setup()
	if err != nil {
		return err
	}
	var clean cleanups
	defer clean.run()
	work, err := m.workDir("pgimaged-bench-bootstrap-")
	if err != nil {
		return err
	}
	clean.add(func() { _ = os.RemoveAll(work) })
	for _, d := range []string{"pgimaged", "bare"} {
		if err := m.mkdir(filepath.Join(work, d)); err != nil {
			return err
		}
	}
	pgimagedDir := filepath.Join(work, "pgimaged", "data")
	bareDir := filepath.Join(work, "bare", "data")
	// Whatever a run leaves, the next one (and an interrupted benchmark) finds it gone.
	clean.add(func() { m.stopServer(pgimagedDir) })
	clean.add(func() { m.stopServer(bareDir) })

	pgimagedPort, err := freePort()
	if err != nil {
		return err
	}
	barePort, err := freePort()
	if err != nil {
		return err
	}
	superPass, replPass := password(), password()
	cfg := filepath.Join(work, "bootstrap.hcl")
	if err := m.writeFile(cfg, fmt.Sprintf(`scope      = "bench-bootstrap"
name       = "node1"
data_dir   = %q
plugin_dir = %q

%s`, pgimagedDir, m.plugins, memberBlocks(m, pgimagedPort, work, "local all all trust"))); err != nil {
		return err
	}
	pgimagedEnv := []string{"BENCH_SUPERUSER_PASSWORD=" + superPass, "BENCH_REPLICATION_PASSWORD=" + replPass}

	cs := []contender{
		{"pgimaged bootstrap", func(int) (time.Duration, error) {
			defer func() { m.stopServer(pgimagedDir); _ = os.RemoveAll(pgimagedDir) }()
			return m.timed(ctx, pgimagedEnv, m.bin, "bootstrap", "-config", cfg)
		}},
		{"initdb+pg_ctl start+psql", func(int) (time.Duration, error) {
			defer func() { m.stopServer(bareDir); _ = os.RemoveAll(bareDir) }()
			start := time.Now()
			err := bareBootstrap(ctx, m, bareDir, work, barePort, superPass, replPass)
			return time.Since(start), err
		}},
	}
	fmt.Fprintf(stdout, "bootstrap: %d runs of each, interleaved (PostgreSQL in %s)\n", c.runs, m.pgBin)
	times, err := interleave(ctx, stdout, "bootstrap", c.runs, cs)
	if err != nil {
		return err
	}
	mp, mb := median(times[cs[0].name]), median(times[cs[1].name])
	fmt.Fprintf(stdout, "\nbootstrap: empty directory to PostgreSQL up with its roles, median of %d runs each (seconds per run in order)\n", c.runs)
	table(stdout, [][]string{
		{"contender", "runs", "median", "min–max", "seconds per run"},
		{"pgimaged bootstrap -config F", fmt.Sprint(c.runs), seconds(mp), spread(times[cs[0].name]), runsOf(times[cs[0].name])},
		{"initdb + pg_ctl start -w + psql", fmt.Sprint(c.runs), seconds(mb), spread(times[cs[1].name]), runsOf(times[cs[1].name])},
	})
	fmt.Fprintf(stdout, "ratio pgimaged/bare %s (goal ≤ 1.2: %s)\n", ratio(mp, mb), verdict(mp, mb, 1.2))
	return nil
}

// bareBootstrap is the sequence pgimaged bootstrap replaces, with the same settings: initdb (with
// its sync to disk), PostgreSQL started and waited for, and one psql session that gives the
// superuser its password and creates the replication role. It leaves the server running.
func bareBootstrap(ctx context.Context, m *machine, dataDir, socketDir string, port int, superPass, replPass string) error {
	if _, err := m.run(ctx, nil, "", m.pg("initdb"), "-D", dataDir, "-U", "postgres", "-E", "UTF8", "--locale=C",
		"--auth-local=trust", "--auth-host=scram-sha-256"); err != nil {
		return err
	}
	if _, err := m.run(ctx, nil, "", m.pg("pg_ctl"), "start", "-D", dataDir, "-l", filepath.Join(filepath.Dir(dataDir), "postgresql.log"), "-w", "-t", "120",
		"-o", serverOptions(port, socketDir)); err != nil {
		return err
	}
	return createRoles(ctx, m, socketDir, port, superPass, replPass)
}

// serverOptions are the settings the bare contenders give PostgreSQL on pg_ctl's command line,
// the same as pgimaged's and Patroni's configurations and the wal_keep_size both default to:
// without it, parallel pg_basebackups with fast checkpoints can find the WAL they need removed
// before their temporary slot holds it.
func serverOptions(port int, socketDir string) string {
	return fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c shared_buffers=16MB -c max_connections=30 -c wal_keep_size=128MB", port, socketDir)
}

// createRoles gives the superuser its password and creates the replication role, in one psql
// session; the passwords go through standard input, never on a command line.
func createRoles(ctx context.Context, m *machine, socketDir string, port int, superPass, replPass string) error {
	sql := fmt.Sprintf("ALTER ROLE postgres PASSWORD '%s';\nCREATE ROLE replicator REPLICATION LOGIN PASSWORD '%s';\n", superPass, replPass)
	_, err := m.run(ctx, nil, sql, m.pg("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", socketDir, "-p", fmt.Sprint(port), "-U", "postgres", "-d", "postgres", "-f", "-")
	return err
}
