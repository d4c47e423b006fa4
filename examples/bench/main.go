// Command bench measures pgimaged's speed side by side with what it replaces, on this machine,
// with real PostgreSQL:
//
//	go run ./examples/bench clone      pgimaged clone --image-only against bare pg_basebackup,
//	                                   at two sizes of primary
//	go run ./examples/bench bootstrap  pgimaged bootstrap against initdb, pg_ctl start and the
//	                                   replication role made by hand
//	go run ./examples/bench cluster    empty directories to a primary and streaming replicas (3 and
//	                                   5 members): pgimaged on etcd, Patroni on the same etcd, and
//	                                   the bare programs' floor; where the time goes, phase by phase
//	go run ./examples/bench api        the HTTP API's latency for /primary and /replica at a steady
//	                                   rate, and Patroni's REST API where it is installed
//	go run ./examples/bench rejoin     a former primary of 1 GB back as a replica after a failover:
//	                                   rejoin by pg_rewind against a full re-clone by basebackup
//	go run ./examples/bench switchover pgimaged switchover until writes and streaming replicas,
//	                                   against patronictl switchover where Patroni is installed
//	go run ./examples/bench standby    a standby cluster of a remote primary from empty until its
//	                                   standby leader and replica stream, against Patroni's standby
//	                                   cluster; then pgimaged standby promote until a write
//
// The contenders of a benchmark run interleaved, round by round, so that the load others put on
// the machine falls on all of them alike; medians are printed with the spread.
//
// It uses ./bin/pgimaged and ./bin/plugins (`make bench` builds them first). Run as root, it runs
// everything that touches PostgreSQL as the postgres OS user, as the demo does. Everything it
// starts is stopped and every directory it makes is removed, also when it is interrupted.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var err error
	switch args[0] {
	case "clone":
		err = runClone(ctx, args[1:], stdout, stderr)
	case "bootstrap":
		err = runBootstrap(ctx, args[1:], stdout, stderr)
	case "cluster":
		err = runCluster(ctx, args[1:], stdout, stderr)
	case "api":
		err = runAPI(ctx, args[1:], stdout, stderr)
	case "rejoin":
		err = runRejoin(ctx, args[1:], stdout, stderr)
	case "switchover":
		err = runSwitchover(ctx, args[1:], stdout, stderr)
	case "standby":
		err = runStandby(ctx, args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		usage(stdout)
		return 0
	default:
		usage(stderr)
		fmt.Fprintf(stderr, "bench: unknown benchmark %q\n", args[0])
		return 2
	}
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case err != nil:
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 1
	}
	return 0
}

func usage(w io.Writer) {
	fmt.Fprint(w, `Usage: go run ./examples/bench <benchmark> [flags]

Benchmarks (make bench runs them all, in this order):
  clone      primaries of about 0.5 and 2 GB (pgbench -i); pgimaged clone --image-only (basebackup,
             checkpoint=fast) and bare pg_basebackup -X stream --checkpoint=fast, interleaved, 9
             runs each; median, spread, ratio pgimaged/bare and the growth from size to size
  bootstrap  pgimaged bootstrap (initdb, start, roles) and the bare sequence initdb, pg_ctl start -w
             and psql creating the replication role, interleaved; median and ratio
  cluster    3 and 5 members started at once on empty data directories until one primary and
             streaming replicas: pgimaged on etcd, Patroni (default settings) on the same etcd where
             it is installed, and the floor of the bare programs (initdb, pg_ctl start, psql,
             pg_basebackup in parallel, standbys started, streaming), interleaved; medians, ratios,
             and the median start and duration of each phase of pgimaged's critical path
  api        p50/p99 latency of the HTTP API's /primary and /replica at a steady 500 and 3,000
             requests/s for 10 s each on loopback; Patroni's REST API side by side where installed
  rejoin     a 2-member cluster of about 1 GB (pgbench -i): the replica stopped, 1 % of the rows
             (a contiguous range) updated on the primary alone, its host lost, pgimaged failover,
             then the former primary's agent started until it streams again: rejoin by rewind
             against rejoin = "reimage" (a full re-clone by basebackup), interleaved, 3 runs each;
             median and ratio
  switchover pgimaged switchover --yes until the new primary accepts writes and every replica
             streams from it, 3 members on etcd, against patronictl switchover --force on a
             Patroni cluster of the same size where installed, interleaved, 3 runs; medians, ratios
  standby    a standby cluster of 2 members (leader copied from a remote primary, replica cascading
             from it) from empty until the standby leader runs and the replica streams: pgimaged on
             etcd against Patroni's standby cluster (bootstrap.dcs.standby_cluster) of the same
             remote on the same etcd where installed, interleaved, 3 runs; medians and ratio; then
             pgimaged standby promote --yes until the promoted leader accepts a write

Run a benchmark with -h for its flags; -runs 1 gives a quick look at one piece.
`)
}

// common are the flags every benchmark takes.
type common struct {
	bin, plugins, pgBin string
	runs                int
}

func (c *common) register(fs *flag.FlagSet, runs int) {
	fs.StringVar(&c.bin, "bin", "bin/pgimaged", "the pgimaged binary")
	fs.StringVar(&c.plugins, "plugins", "bin/plugins", "the plugin directory")
	fs.StringVar(&c.pgBin, "pgbin", os.Getenv("PGBINDIR"), "PostgreSQL's bin directory (default: the newest /usr/lib/postgresql/*/bin)")
	fs.IntVar(&c.runs, "runs", runs, "measured runs of each contender")
}

// setup checks the flags and finds what the benchmark needs.
func (c *common) setup() (*machine, error) {
	if c.runs < 1 {
		return nil, fmt.Errorf("-runs %d: at least one run is needed", c.runs)
	}
	return newMachine(c.bin, c.plugins, c.pgBin)
}
