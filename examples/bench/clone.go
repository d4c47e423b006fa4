package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// runClone compares `pgimaged clone --image-only` (the basebackup method) with bare
// pg_basebackup on the same primary, at each size of -sizes, so that the growth of both with the
// size can be read off.
func runClone(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c common
	fs := flag.NewFlagSet("clone", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c.register(fs, 9)
	sizesFlag := fs.String("sizes", "0.5,2", "sizes of the primary in GB, comma-separated (pgbench -i, about 15 MB per scale unit); a small one such as 0.2 tries the benchmark out")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var scales []int
	for _, f := range strings.Split(*sizesFlag, ",") {
		gb, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || gb <= 0 || gb > 100 {
			return fmt.Errorf("-sizes: %q is not a size in GB between 0 and 100", f)
		}
		scales = append(scales, max(1, int(math.Round(gb*1024/15))))
	}
	m, err := c.setup()
	if err != nil {
		return err
	}
	var results []cloneResult
	for _, scale := range scales {
		r, err := cloneAtScale(ctx, m, scale, c.runs, stdout)
		if err != nil {
			return err
		}
		results = append(results, r)
	}

	fmt.Fprintf(stdout, "\nclone: pgimaged clone --image-only (method basebackup, checkpoint fast) against pg_basebackup -X stream\n--checkpoint=fast from the same primary, %d interleaved runs each after one warm-up run (seconds per run in order)\n", c.runs)
	rows := [][]string{{"primary", "pgbench scale", "contender", "median", "min–max", "ratio pgimaged/bare", "seconds per run"}}
	for _, r := range results {
		mp, mb := median(r.pgimaged), median(r.bare)
		goal := "(goal ≤ 1.02 from 1 GB)"
		if r.bytes >= 1<<30 {
			goal = "(goal ≤ 1.02: " + verdict(mp, mb, 1.02) + ")"
		}
		rows = append(rows,
			[]string{r.size, fmt.Sprint(r.scale), "pgimaged", seconds(mp), spread(r.pgimaged), ratio(mp, mb) + " " + goal, runsOf(r.pgimaged)},
			[]string{"", "", "pg_basebackup", seconds(mb), spread(r.bare), "", runsOf(r.bare)})
	}
	table(stdout, rows)
	if len(results) > 1 {
		fmt.Fprintln(stdout, "\ngrowth: median time at each size over the median time at the first size")
		rows := [][]string{{"from", "to", "data ×", "pgimaged ×", "pg_basebackup ×"}}
		first := results[0]
		for _, r := range results[1:] {
			rows = append(rows, []string{first.size, r.size,
				fmt.Sprintf("%.2f", float64(r.bytes)/float64(first.bytes)),
				ratio(median(r.pgimaged), median(first.pgimaged)),
				ratio(median(r.bare), median(first.bare))})
		}
		table(stdout, rows)
	}
	return nil
}

// cloneResult is one size's measurements.
type cloneResult struct {
	scale    int
	size     string // pg_size_pretty of the primary's databases
	bytes    int64
	pgimaged []time.Duration
	bare     []time.Duration
}

// cloneAtScale makes a primary of pgbench scale, copies it runs times with each contender,
// interleaved, and removes it.
func cloneAtScale(ctx context.Context, m *machine, scale, runs int, stdout io.Writer) (cloneResult, error) {
	r := cloneResult{scale: scale}
	var clean cleanups
	defer clean.run()

	work, err := m.workDir("pgimaged-bench-clone-")
	if err != nil {
		return r, err
	}
	clean.add(func() { _ = os.RemoveAll(work) })

	fmt.Fprintf(stdout, "clone: preparing a primary with pgbench -i -s %d (PostgreSQL in %s)...\n", scale, m.pgBin)
	p, err := startPrimary(ctx, m, work, &clean)
	if err != nil {
		return r, err
	}
	prepStart := time.Now()
	if _, err := m.run(ctx, nil, "", m.pg("pgbench"), "-i", "-q", "-s", fmt.Sprint(scale), "-h", p.socketDir, "-p", fmt.Sprint(p.port), "-U", "postgres", "postgres"); err != nil {
		return r, err
	}
	if _, err := m.run(ctx, nil, "", m.pg("psql"), "-X", "-q", "-h", p.socketDir, "-p", fmt.Sprint(p.port), "-U", "postgres", "-d", "postgres", "-c", "CHECKPOINT"); err != nil {
		return r, err
	}
	out, err := m.run(ctx, nil, "", m.pg("psql"), "-X", "-At", "-F", " ", "-h", p.socketDir, "-p", fmt.Sprint(p.port), "-U", "postgres", "-d", "postgres",
		"-c", "SELECT sum(pg_database_size(datname)), pg_size_pretty(sum(pg_database_size(datname))) FROM pg_database")
	if err != nil {
		return r, err
	}
	bytes, pretty, _ := strings.Cut(strings.TrimSpace(out), " ")
	if r.bytes, err = strconv.ParseInt(bytes, 10, 64); err != nil {
		return r, fmt.Errorf("while reading the primary's size from %q: %w", out, err)
	}
	r.size = pretty
	fmt.Fprintf(stdout, "clone: primary of %s (pg_database_size, all databases) ready in %s\n", r.size, time.Since(prepStart).Round(time.Second))
	// Both contenders log in as the replication role with the same password, from a pgpass file.
	conn := fmt.Sprintf("host=127.0.0.1 port=%d user=replicator dbname=postgres", p.port)
	passfile := filepath.Join(work, "bench.pgpass")
	if err := m.writeFile(passfile, fmt.Sprintf("127.0.0.1:%d:*:replicator:%s\n", p.port, p.replPass)); err != nil {
		return r, err
	}
	for _, d := range []string{"pgimaged", "bare"} {
		if err := m.mkdir(filepath.Join(work, d)); err != nil {
			return r, err
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
		return r, err
	}
	pgimagedEnv := []string{"BENCH_SUPERUSER_PASSWORD=" + p.superPass, "BENCH_REPLICATION_PASSWORD=" + p.replPass}
	bareEnv := []string{"PGPASSFILE=" + passfile}
	// Before each run the previous copy's dirty pages are written out, so that they are not
	// written during this one.
	cs := []contender{
		{"pgimaged", func(int) (time.Duration, error) {
			defer os.RemoveAll(pgimagedDir)
			syscall.Sync()
			return m.timed(ctx, pgimagedEnv, m.bin, "clone", "--image-only", "-config", cfg, "--connstring", conn)
		}},
		{"pg_basebackup", func(int) (time.Duration, error) {
			defer os.RemoveAll(bareDir)
			syscall.Sync()
			return m.timed(ctx, bareEnv, m.pg("pg_basebackup"), "-X", "stream", "--checkpoint=fast", "-D", bareDir, "-d", conn)
		}},
	}

	// One unmeasured run of each first, so that every measured run finds the primary's files
	// and the programs in a warm page cache.
	fmt.Fprintln(stdout, "clone: warm-up, one run of each (not measured)...")
	for _, c := range cs {
		if _, err := c.measure(0); err != nil {
			return r, fmt.Errorf("warm-up run of %s: %w", c.name, err)
		}
	}
	times, err := interleave(ctx, stdout, "clone "+r.size, runs, cs)
	if err != nil {
		return r, err
	}
	r.pgimaged, r.bare = times["pgimaged"], times["pg_basebackup"]
	return r, nil
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
	if err := createRoles(ctx, m, p.socketDir, p.port, p.superPass, p.replPass); err != nil {
		return nil, err
	}
	return p, nil
}
