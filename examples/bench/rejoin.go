package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// rejoinSettings make a lost primary's leader key expire soon, so that a round does not wait
// 30 s for it; they are the same for both contenders.
const rejoinSettings = "loop_wait = \"1s\"\nttl       = \"10s\""

// runRejoin measures how a former primary comes back, as a user meets it: in a 2-member cluster
// on the file DCS the replica is stopped, -changed percent of the primary's pgbench_accounts
// rows (a contiguous range of aid, so contiguous pages) are updated on the primary alone, the
// primary's host goes down, `pgimaged failover` makes the replica the primary, and the former
// primary's agent is started again: the time from that start until it streams from the new
// primary. Contenders: rejoin_methods = ["rewind"] (the default) against rejoin_methods = []
// with rejoin = "reimage", a full re-clone by basebackup. The roles swap every round.
func runRejoin(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c common
	fs := flag.NewFlagSet("rejoin", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c.register(fs, 3)
	sizeFlag := fs.Float64("size", 1, "the cluster's size in GB (pgbench -i, about 15 MB per scale unit)")
	changed := fs.Float64("changed", 1, "percent of pgbench_accounts' rows updated on the former primary alone")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *sizeFlag <= 0 || *sizeFlag > 100 {
		return fmt.Errorf("-size %g: a size in GB between 0 and 100", *sizeFlag)
	}
	if *changed <= 0 || *changed > 50 {
		return fmt.Errorf("-changed %g: a percentage between 0 and 50", *changed)
	}
	scale := max(1, int(math.Round(*sizeFlag*1024/15)))
	m, err := c.setup()
	if err != nil {
		return err
	}
	var clean cleanups
	defer clean.run()
	cl, err := newAgentCluster(m, &clean, "pgimaged-bench-rejoin-", "bench-rejoin", "", rejoinSettings, 2)
	if err != nil {
		return err
	}
	primary, err := cl.up(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "rejoin: 2 members up; pgbench -i -s %d on %s...\n", scale, primary.name)
	prep := time.Now()
	if _, err := m.run(ctx, []string{"PGPASSFILE=" + cl.passfile}, "", m.pg("pgbench"), "-i", "-q", "-s", strconv.Itoa(scale),
		"-h", "127.0.0.1", "-p", strconv.Itoa(primary.port), "-U", "postgres", "postgres"); err != nil {
		return err
	}
	if _, err := cl.psql(ctx, primary.port, "CHECKPOINT"); err != nil {
		return err
	}
	size, err := cl.psql(ctx, primary.port, "SELECT pg_size_pretty(sum(pg_database_size(datname))) FROM pg_database")
	if err != nil {
		return err
	}
	rows := scale * 100000
	span := max(1, int(float64(rows)**changed/100))
	fmt.Fprintf(stdout, "rejoin: cluster of %s (pg_database_size, all databases) ready in %s; each round updates %d of %d rows (%.2g %%) on the former primary\n",
		size, time.Since(prep).Round(time.Second), span, rows, *changed)

	round := 0
	rejoin := func(extra string) func(int) (time.Duration, error) {
		return func(int) (time.Duration, error) {
			round++
			from, to := cl.members[0], cl.members[1]
			if primary == to {
				from, to = to, from
			}
			d, err := rejoinRound(ctx, cl, from, to, extra, span, (round-1)*span%(rows-span+1)+1)
			primary = to
			return d, err
		}
	}
	cs := []contender{
		{"rewind", rejoin("")},
		{"basebackup", rejoin("  rejoin_methods = []\n  rejoin         = \"reimage\"")},
	}
	times, err := interleave(ctx, stdout, "rejoin "+size, c.runs, cs)
	if err != nil {
		return err
	}
	mr, mb := median(times["rewind"]), median(times["basebackup"])
	fmt.Fprintf(stdout, `
rejoin: a former primary of %s, %.2g %% of pgbench_accounts' rows (a contiguous range) updated on
it alone before its host went down and `+"`pgimaged failover`"+` promoted the replica; time from its
agent's start until it streams from the new primary and is published as a running replica. %d
interleaved runs each, 2 members on the file DCS, loop_wait 1s, ttl 10s; median, spread, seconds
per run in order.
`, size, *changed, c.runs)
	table(stdout, [][]string{
		{"contender", "runs", "median", "min–max", "ratio rewind/basebackup", "seconds per run"},
		{"rewind (rejoin_methods default)", fmt.Sprint(len(times["rewind"])), seconds(mr), spread(times["rewind"]),
			ratio(mr, mb) + " (goal ≤ 0.2: " + verdict(mr, mb, 0.2) + ")", runsOf(times["rewind"])},
		{"basebackup (rejoin = reimage)", fmt.Sprint(len(times["basebackup"])), seconds(mb), spread(times["basebackup"]), "", runsOf(times["basebackup"])},
	})
	return nil
}

// rejoinRound is one measured rejoin: from is the primary and to its streaming replica. to is
// stopped, span rows from first on are updated on from alone, from's host goes down, to is
// started and made the primary by `pgimaged failover`, then from's agent is started with
// extra in its postgresql block: the time until it streams from to.
func rejoinRound(ctx context.Context, cl *agentCluster, from, to *agentMember, extra string, span, first int) (time.Duration, error) {
	cl.stop(to, false)
	if _, err := cl.psql(ctx, from.port, fmt.Sprintf("UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid BETWEEN %d AND %d", first, first+span-1)); err != nil {
		return 0, err
	}
	cl.stop(from, true)
	if err := cl.start(to); err != nil {
		return 0, err
	}
	if err := cl.wait(ctx, "the lost primary's leader key to expire", 2*time.Minute, func() (bool, error) {
		st, ok, err := cl.status(ctx, to)
		return ok && st.Leader == "", err
	}); err != nil {
		return 0, err
	}
	// The candidate is refused while its agent still starts PostgreSQL: asked again until
	// it is accepted.
	var refused error
	if err := cl.wait(ctx, "pgimaged failover to "+to.name+" accepted", 2*time.Minute, func() (bool, error) {
		_, refused = cl.m.run(ctx, cl.env, "", cl.m.bin, "failover", "-config", to.config, "--candidate", to.name, "--force", "--yes")
		return refused == nil, nil
	}); err != nil {
		return 0, fmt.Errorf("%w\nlast refusal: %v", err, refused)
	}
	if err := cl.wait(ctx, to.name+" leading", 2*time.Minute, func() (bool, error) {
		st, ok, err := cl.status(ctx, to)
		return ok && st.Leader == to.name && st.state(to.name) == memberState{Role: "primary", State: "running"}, err
	}); err != nil {
		return 0, err
	}
	from.extra = extra
	// Observed on a connection to the new primary kept open and asked every 10 ms: a psql and a
	// status run per look would add tens of milliseconds to each measurement, and take the CPU
	// the rejoin runs on.
	conn, err := pgx.Connect(ctx, fmt.Sprintf("host=127.0.0.1 port=%d user=postgres dbname=postgres password=%s", to.port, cl.superPass))
	if err != nil {
		return 0, fmt.Errorf("while connecting to the new primary %s: %w", to.name, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	start := time.Now()
	if err := cl.start(from); err != nil {
		return 0, err
	}
	// Done when it streams from the new primary and its agent published it as a running replica
	// (the rejoin finished: stopped before that, the directory stays marked as needing reinit).
	took, err := waitRejoined(ctx, cl, conn, from, to, start)
	return took, err
}

// waitRejoined waits until from streams from to (asked on conn every 10 ms) and `pgimaged
// status` shows it as a running replica: the time since start at which both were seen.
func waitRejoined(ctx context.Context, cl *agentCluster, conn *pgx.Conn, from, to *agentMember, start time.Time) (time.Duration, error) {
	failed := func() error {
		if st, ok, _ := cl.status(ctx, to); ok && st.state(from.name).State == "needs reinit" {
			log, _ := os.ReadFile(from.log)
			return fmt.Errorf("%s did not rejoin: it needs a reinit\n%s", from.name, tail(string(log), 25))
		}
		return cl.exited()
	}
	lastCheck := start
	for {
		var n int
		err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming' AND application_name = $1", from.name).Scan(&n)
		if err != nil {
			return 0, fmt.Errorf("while asking %s which standbys stream: %w", to.name, err)
		}
		if n == 1 {
			if st, ok, err := cl.status(ctx, to); err != nil {
				return 0, err
			} else if ok && st.state(from.name) == (memberState{Role: "replica", State: "running"}) {
				return time.Since(start), nil
			}
		}
		if time.Since(lastCheck) > time.Second {
			lastCheck = time.Now()
			if err := failed(); err != nil {
				return 0, err
			}
		}
		if time.Since(start) > clusterDeadline {
			log, _ := os.ReadFile(from.log)
			return 0, fmt.Errorf("%s streaming from %s and published running: not after %s\n%s", from.name, to.name, clusterDeadline, tail(string(log), 25))
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}
