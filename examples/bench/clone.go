package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// runClone compares `pgimaged clone --image-only` (the basebackup method) with bare
// pg_basebackup on the same primary.
func runClone(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c common
	fs := flag.NewFlagSet("clone", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c.register(fs, 9)
	scale := fs.Int("scale", 70, "pgbench scale of the primary (70 is about 1 GB; use a small one to try the benchmark out)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *scale < 1 {
		return fmt.Errorf("-scale %d: at least 1", *scale)
	}
	m, err := c.setup()
	if err != nil {
		return err
	}
	var clean cleanups
	defer clean.run()

	work, err := m.workDir("pgimaged-bench-clone-")
	if err != nil {
		return err
	}
	clean.add(func() { _ = os.RemoveAll(work) })

	fmt.Fprintf(stdout, "clone: preparing a primary with pgbench -i -s %d (PostgreSQL in %s)...\n", *scale, m.pgBin)
	p, err := startPrimary(ctx, m, work, &clean)
	if err != nil {
		return err
	}
	prepStart := time.Now()
	if _, err := m.run(ctx, nil, "", m.pg("pgbench"), "-i", "-q", "-s", fmt.Sprint(*scale), "-h", p.socketDir, "-p", fmt.Sprint(p.port), "-U", "postgres", "postgres"); err != nil {
		return err
	}
	if _, err := m.run(ctx, nil, "", m.pg("psql"), "-X", "-q", "-h", p.socketDir, "-p", fmt.Sprint(p.port), "-U", "postgres", "-d", "postgres", "-c", "CHECKPOINT"); err != nil {
		return err
	}
	size, err := m.run(ctx, nil, "", m.pg("psql"), "-X", "-At", "-h", p.socketDir, "-p", fmt.Sprint(p.port), "-U", "postgres", "-d", "postgres",
		"-c", "SELECT pg_size_pretty(sum(pg_database_size(datname))) FROM pg_database")
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "clone: primary of %s ready in %s\n", strings.TrimSpace(size), time.Since(prepStart).Round(time.Second))

	// Both contenders log in as the replication role with the same password, from a pgpass file.
	conn := fmt.Sprintf("host=127.0.0.1 port=%d user=replicator dbname=postgres", p.port)
	passfile := filepath.Join(work, "bench.pgpass")
	if err := m.writeFile(passfile, fmt.Sprintf("127.0.0.1:%d:*:replicator:%s\n", p.port, p.replPass)); err != nil {
		return err
	}
	for _, d := range []string{"pgimaged", "bare"} {
		if err := m.mkdir(filepath.Join(work, d)); err != nil {
			return err
		}
	}
	pgimagedDir := filepath.Join(work, "pgimaged", "data")
	bareDir := filepath.Join(work, "bare", "data")
	cfg := filepath.Join(work, "clone.hcl")
	if err := m.writeFile(cfg, fmt.Sprintf(`scope      = "bench"
name       = "clone"
data_dir   = %q
plugin_dir = %q

postgresql {
  bin_dir = %q
  authentication {
    superuser {
      username = "postgres"
      password = env("BENCH_SUPERUSER_PASSWORD")
    }
    replication {
      username = "replicator"
      password = env("BENCH_REPLICATION_PASSWORD")
    }
  }
}

method "basebackup" {
  checkpoint = "fast"
}
`, pgimagedDir, m.plugins, m.pgBin)); err != nil {
		return err
	}
	pgimagedEnv := []string{"BENCH_SUPERUSER_PASSWORD=" + p.superPass, "BENCH_REPLICATION_PASSWORD=" + p.replPass}
	bareEnv := []string{"PGPASSFILE=" + passfile}
	contenders := map[string]func() (time.Duration, error){
		"pgimaged": func() (time.Duration, error) {
			defer os.RemoveAll(pgimagedDir)
			return m.timed(ctx, pgimagedEnv, m.bin, "clone", "--image-only", "-config", cfg, "--connstring", conn)
		},
		"bare": func() (time.Duration, error) {
			defer os.RemoveAll(bareDir)
			return m.timed(ctx, bareEnv, m.pg("pg_basebackup"), "-X", "stream", "--checkpoint=fast", "-D", bareDir, "-d", conn)
		},
	}

	// One unmeasured run of each first, so that every measured run finds the primary's files
	// and the programs in a warm page cache.
	fmt.Fprintln(stdout, "clone: warm-up, one run of each (not measured)...")
	for _, name := range []string{"bare", "pgimaged"} {
		if _, err := contenders[name](); err != nil {
			return fmt.Errorf("warm-up run of %s: %w", name, err)
		}
	}
	times := map[string][]time.Duration{}
	for i := range c.runs {
		order := []string{"pgimaged", "bare"}
		if i%2 == 1 {
			order = []string{"bare", "pgimaged"}
		}
		for _, name := range order {
			if err := ctx.Err(); err != nil {
				return err
			}
			// The previous copy's dirty pages are written out now, not during this run.
			syscall.Sync()
			d, err := contenders[name]()
			if err != nil {
				return fmt.Errorf("run %d of %s: %w", i+1, name, err)
			}
			times[name] = append(times[name], d)
			fmt.Fprintf(stdout, "clone: run %d/%d %-8s %s\n", i+1, c.runs, name, seconds(d))
		}
	}
	runs := map[string]string{"pgimaged": runsOf(times["pgimaged"]), "bare": runsOf(times["bare"])}
	mp, mb := median(times["pgimaged"]), median(times["bare"])
	ratio := mp.Seconds() / mb.Seconds()
	verdict := "within the 1.02 target"
	if ratio > 1.02 {
		verdict = "ABOVE the 1.02 target"
	}
	fmt.Fprintf(stdout, "\nclone of a %s primary, median of %d runs each (seconds per run in order)\n", strings.TrimSpace(size), c.runs)
	table(stdout, [][]string{
		{"contender", "median", "runs"},
		{"pgimaged clone --image-only", seconds(mp), runs["pgimaged"]},
		{"pg_basebackup -X stream", seconds(mb), runs["bare"]},
		{"ratio pgimaged/bare", fmt.Sprintf("%.3f", ratio), verdict},
	})
	return nil
}

// primary is the server both contenders copy.
type primary struct {
	dataDir, socketDir  string
	port                int
	superPass, replPass string
}

// startPrimary makes and starts a primary in work; clean stops it.
func startPrimary(ctx context.Context, m *machine, work string, clean *cleanups) (*primary, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	p := &primary{dataDir: filepath.Join(work, "primary"), socketDir: work, port: port, superPass: password(), replPass: password()}
	if _, err := m.run(ctx, nil, "", m.pg("initdb"), "-D", p.dataDir, "-U", "postgres", "--auth-local=trust", "--auth-host=scram-sha-256",
		"-E", "UTF8", "--locale=C", "--no-sync"); err != nil {
		return nil, err
	}
	conf := fmt.Sprintf(`
port = %d
listen_addresses = '127.0.0.1'
unix_socket_directories = '%s'
shared_buffers = '128MB'
max_wal_size = '4GB'
max_wal_senders = 10
fsync = off
`, p.port, p.socketDir)
	f, err := os.OpenFile(filepath.Join(p.dataDir, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return nil, err
	}
	if _, err := f.WriteString(conf); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	if _, err := m.run(ctx, nil, "", m.pg("pg_ctl"), "start", "-D", p.dataDir, "-l", filepath.Join(work, "primary.log"), "-w", "-t", "120"); err != nil {
		return nil, err
	}
	clean.add(func() { m.stopServer(p.dataDir) })
	// Passwords go through standard input, never on a command line.
	sql := fmt.Sprintf("ALTER ROLE postgres PASSWORD '%s';\nCREATE ROLE replicator REPLICATION LOGIN PASSWORD '%s';\n", p.superPass, p.replPass)
	if _, err := m.run(ctx, nil, sql, m.pg("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", p.socketDir, "-p", fmt.Sprint(p.port), "-U", "postgres", "-d", "postgres", "-f", "-"); err != nil {
		return nil, err
	}
	return p, nil
}
