package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"time"
)

// runStandby measures a second site made from empty: a standby cluster of two members, its
// leader copied from a remote primary and its replica cascading from it, until the standby
// leader runs and the replica streams from it; pgimaged against Patroni 3's standby cluster
// (bootstrap.dcs.standby_cluster) of the same remote, both on the same etcd, interleaved. Each
// pgimaged run then ends with `pgimaged standby promote --yes`, timed until the promoted leader
// accepts a write.
func runStandby(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c common
	fs := flag.NewFlagSet("standby", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c.register(fs, 3)
	patroniFlag := registerPatroni(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	m, err := c.setup()
	if err != nil {
		return err
	}
	var clean cleanups
	defer clean.run()

	patroni := lookPatroni(*patroniFlag)
	if patroni == "" {
		fmt.Fprintln(stdout, "standby: patroni is not installed (Debian: apt-get install patroni): pgimaged is measured alone")
	}
	dcs, backend, etcd, err := benchDCS(ctx, m, &clean, stdout, "standby")
	if err != nil {
		return err
	}
	if etcd == "" {
		patroni = ""
	}

	// The remote: a one-member pgimaged cluster on a file DCS of its own, up for the whole
	// benchmark; every standby cluster copies it with its roles.
	remote, err := newAgentCluster(m, &clean, "pgimaged-bench-standby-remote-", "bench-standby-remote", "", "", 1)
	if err != nil {
		return err
	}
	primary, err := remote.up(ctx)
	if err != nil {
		return err
	}
	replPass := ""
	for _, kv := range remote.env {
		if v, ok := strings.CutPrefix(kv, "BENCH_REPLICATION_PASSWORD="); ok {
			replPass = v
		}
	}

	promotions := []time.Duration{}
	cs := []contender{{"pgimaged " + backend, func(run int) (time.Duration, error) {
		up, promoted, err := pgimagedStandby(ctx, m, remote, primary.port, dcs, run)
		promotions = append(promotions, promoted)
		return up, err
	}}}
	if patroni != "" {
		cs = append(cs, contender{"patroni " + backend, func(run int) (time.Duration, error) {
			return patroniCluster(ctx, m, patroni, clusterOptions{members: 2, etcd: etcd, run: 100 + run,
				superPass: remote.superPass, replPass: replPass, standbyOf: primary.port})
		}})
	}
	times, err := interleave(ctx, stdout, "standby", c.runs, cs)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, `
standby: a standby cluster of 2 members made from empty directories, its leader copied from a
remote primary (pg_basebackup, checkpoint fast) and its replica from the leader, until the
standby leader runs and the replica streams from it; one cluster per run on the same %s, each
one's default loop_wait and ttl; %d interleaved runs, median, spread, seconds per run in order.
Then pgimaged standby promote --yes until the promoted leader accepts a write (goal ≤ 1 s).
`, backend, c.runs)
	rows := [][]string{{"contender", "until", "median", "min–max", "pgimaged/patroni", "seconds per run"}}
	pname := "patroni " + backend
	for _, ct := range cs {
		ts := times[ct.name]
		toPatroni := ""
		if ct.name != pname && len(times[pname]) > 0 {
			toPatroni = ratio(median(ts), median(times[pname])) + " (goal ≤ 0.5: " + verdict(median(ts), median(times[pname]), 0.5) + ")"
		}
		rows = append(rows, []string{ct.name, "standby leader and replica streaming", seconds(median(ts)), spread(ts), toPatroni, runsOf(ts)})
	}
	within := "ABOVE 1 s"
	if median(promotions) <= time.Second {
		within = "within 1 s"
	}
	rows = append(rows, []string{"pgimaged " + backend, "promoted leader accepts a write", millis(median(promotions)), spread(promotions), within, runsOf(promotions)})
	table(stdout, rows)
	return nil
}

// pgimagedStandby makes one pgimaged standby cluster of the remote primary at port from empty,
// with the remote's passwords: the time until its standby leader runs and its replica streams
// from it, then the time from `pgimaged standby promote --yes` until the promoted leader accepts
// a write. Everything it started is stopped and removed before it returns.
func pgimagedStandby(ctx context.Context, m *machine, remote *agentCluster, port int, dcs string, run int) (up, promoted time.Duration, err error) {
	var clean cleanups
	defer clean.run()
	block := fmt.Sprintf("standby_cluster {\n  host = \"127.0.0.1\"\n  port = %d\n}\n", port)
	cl, err := newAgentCluster(m, &clean, "pgimaged-bench-standby-", fmt.Sprintf("bench-standby-%d", run), dcs, block, 2)
	if err != nil {
		return 0, 0, err
	}
	cl.env, cl.superPass, cl.passfile = remote.env, remote.superPass, remote.passfile
	start := time.Now()
	for _, mb := range cl.members {
		if err := cl.start(mb); err != nil {
			return 0, 0, err
		}
	}
	var leader *agentMember
	err = cl.wait(ctx, "the standby cluster up", clusterDeadline, func() (bool, error) {
		st, ok, err := cl.status(ctx, cl.members[0])
		if err != nil || !ok {
			return false, err
		}
		var states []memberState
		for _, mb := range st.Members {
			states = append(states, mb.memberState)
		}
		if st.Leader == "" || !clusterReady(states, len(cl.members), "standby_leader", "running") {
			return false, nil
		}
		leader = cl.member(st.Leader)
		return leader != nil && cl.streaming(ctx, leader.port) == len(cl.members)-1, nil
	})
	up = time.Since(start)
	if err != nil {
		return up, 0, err
	}

	start = time.Now()
	done := make(chan error, 1)
	go func() {
		_, err := m.run(ctx, cl.env, "", m.bin, "standby", "promote", "-config", leader.config, "--yes")
		done <- err
	}()
	var cmdErr error
	returned := false
	err = cl.wait(ctx, "the promoted leader accepting a write", clusterDeadline, func() (bool, error) {
		if !returned {
			select {
			case cmdErr = <-done:
				returned = true
				if cmdErr != nil {
					return false, fmt.Errorf("pgimaged standby promote: %w", cmdErr)
				}
			default:
			}
		}
		_, err := cl.psql(ctx, leader.port, "SELECT txid_current()")
		return err == nil, nil
	})
	promoted = time.Since(start)
	if !returned {
		cmdErr = <-done
	}
	if err == nil && cmdErr != nil {
		err = fmt.Errorf("pgimaged standby promote: %w", cmdErr)
	}
	return up, promoted, err
}

// benchDCS starts an etcd for the whole benchmark where one is installed and returns pgimaged's
// dcs block for it, the backend's name and etcd's endpoint; without etcd, it says so (label
// names the benchmark) and pgimaged runs on the file DCS ("" for the block: each cluster's own
// directory), with no endpoint.
func benchDCS(ctx context.Context, m *machine, clean *cleanups, stdout io.Writer, label string) (dcs, backend, etcd string, err error) {
	if _, err := exec.LookPath("etcd"); err != nil {
		fmt.Fprintf(stdout, "%s: etcd is not installed: pgimaged runs on the file DCS, Patroni is not measured\n", label)
		return "", "file", "", nil
	}
	if etcd, err = startEtcd(ctx, m, clean); err != nil {
		return "", "", "", err
	}
	return fmt.Sprintf(`dcs "etcd" { endpoints = [%q] }`, etcd), "etcd", etcd, nil
}

// registerPatroni adds the -patroni flag: the patroni program to measure.
func registerPatroni(fs *flag.FlagSet) *string {
	return fs.String("patroni", "", "the patroni program (default: patroni in PATH; without one, Patroni is not measured)")
}

// lookPatroni is the patroni program the -patroni flag names, else patroni in PATH; "" for none.
func lookPatroni(flagValue string) string {
	if flagValue != "" {
		return flagValue
	}
	p, _ := exec.LookPath("patroni")
	return p
}
