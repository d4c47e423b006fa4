package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

// runSwitchover measures a planned change of primary as a user makes it: from `pgimaged
// switchover --yes` to the new primary accepting writes (SELECT txid_current() succeeds on it)
// and to every replica streaming from it again, against Patroni 3's `patronictl switchover
// --force` on a Patroni cluster of the same size on the same etcd, interleaved. Each contender
// keeps one cluster up for all its runs; the primary moves every run.
func runSwitchover(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c common
	fs := flag.NewFlagSet("switchover", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c.register(fs, 3)
	n := fs.Int("members", 3, "members in each cluster (one primary, the others replicas)")
	patroniFlag := registerPatroni(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *n < 2 || *n > 9 {
		return fmt.Errorf("-members %d: a cluster size from 2 to 9", *n)
	}
	m, err := c.setup()
	if err != nil {
		return err
	}
	var clean cleanups
	defer clean.run()

	patroni := lookPatroni(*patroniFlag)
	patronictl := ""
	if patroni != "" {
		patronictl, _ = exec.LookPath("patronictl")
	}
	if patroni == "" || patronictl == "" {
		fmt.Fprintln(stdout, "switchover: patroni or patronictl is not installed (Debian: apt-get install patroni): pgimaged is measured alone")
		patroni = ""
	}
	dcs, backend, etcd, err := benchDCS(ctx, m, &clean, stdout, "switchover")
	if err != nil {
		return err
	}
	if etcd == "" {
		patroni = ""
	}

	// pgimaged: its own cluster, default loop_wait and ttl.
	cl, err := newAgentCluster(m, &clean, "pgimaged-bench-switchover-", "bench-switchover", dcs, "", *n)
	if err != nil {
		return err
	}
	if _, err := cl.up(ctx); err != nil {
		return err
	}
	ports := map[string]int{}
	for _, mb := range cl.members {
		ports[mb.name] = mb.port
	}
	targets := []switchTarget{{
		name:     "pgimaged " + backend,
		ports:    ports,
		passfile: cl.passfile,
		leader: func(ctx context.Context) (string, error) {
			st, ok, err := cl.status(ctx, cl.members[0])
			if !ok || err != nil {
				return "", err
			}
			return st.Leader, nil
		},
		command: func(ctx context.Context, leader string) error {
			_, err := m.run(ctx, cl.env, "", m.bin, "switchover", "-config", cl.member(leader).config, "--yes")
			return err
		},
	}}
	if patroni != "" {
		t, err := patroniTarget(ctx, m, &clean, patroni, patronictl, etcd, *n, cl.passfile, cl.superPass)
		if err != nil {
			return err
		}
		targets = append(targets, t)
	}

	writes := map[string][]time.Duration{}
	var cs []contender
	for _, t := range targets {
		cs = append(cs, contender{t.name, func(int) (time.Duration, error) {
			w, s, err := t.measure(ctx, m, *n)
			writes[t.name] = append(writes[t.name], w)
			return s, err
		}})
	}
	streams, err := interleave(ctx, stdout, "switchover", c.runs, cs)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, `
switchover: %d members, one cluster per contender on the same %s, each one's default loop_wait
and ttl; from the command (pgimaged switchover --yes, patronictl switchover --force) to the new
primary accepting writes, and to every replica streaming from it again; %d interleaved runs,
median, spread, seconds per run in order.
`, *n, backend, c.runs)
	rows := [][]string{{"contender", "until", "median", "min–max", "pgimaged/patroni", "seconds per run"}}
	pname := "patroni etcd"
	for _, t := range targets {
		for _, k := range []struct {
			what  string
			times map[string][]time.Duration
		}{{"writes", writes}, {"replicas streaming", streams}} {
			ts := k.times[t.name]
			toPatroni := ""
			if t.name != pname && len(k.times[pname]) > 0 {
				toPatroni = ratio(median(ts), median(k.times[pname])) + " (goal ≤ 0.5: " + verdict(median(ts), median(k.times[pname]), 0.5) + ")"
			}
			rows = append(rows, []string{t.name, k.what, seconds(median(ts)), spread(ts), toPatroni, runsOf(ts)})
		}
	}
	table(stdout, rows)
	return nil
}

// switchTarget is a cluster a switchover is measured on.
type switchTarget struct {
	name     string
	ports    map[string]int // PostgreSQL's port by member name, on 127.0.0.1
	passfile string         // the superuser's password for every member
	leader   func(ctx context.Context) (string, error)
	command  func(ctx context.Context, leader string) error
}

// measure makes one switchover: the time until another member accepts writes and until every
// replica streams from it. It returns once the command has returned too.
func (t switchTarget) measure(ctx context.Context, m *machine, n int) (writes, streaming time.Duration, err error) {
	old, err := t.leader(ctx)
	if err != nil || old == "" {
		return 0, 0, fmt.Errorf("%s has no leader before the switchover (%v)", t.name, err)
	}
	env := []string{"PGPASSFILE=" + t.passfile, "PGCONNECT_TIMEOUT=2"}
	psql := func(port int, sql string) (string, error) {
		return m.run(ctx, env, "", m.pg("psql"), "-X", "-At", "-h", "127.0.0.1", "-p", strconv.Itoa(port), "-U", "postgres", "-d", "postgres", "-c", sql)
	}
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- t.command(ctx, old) }()
	var cmdErr error
	returned := false
	poll := func(what string, cond func() bool) error {
		for !cond() {
			if !returned {
				select {
				case cmdErr = <-done:
					returned = true
					if cmdErr != nil {
						return cmdErr
					}
				default:
				}
			}
			if time.Since(start) > clusterDeadline {
				return fmt.Errorf("%s: no %s after %s", t.name, what, clusterDeadline)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
		}
		return nil
	}
	var primary string
	err = poll("new primary accepting writes", func() bool {
		for name, port := range t.ports {
			if name == old {
				continue
			}
			if _, err := psql(port, "SELECT txid_current()"); err == nil {
				primary = name
				return true
			}
		}
		return false
	})
	writes = time.Since(start)
	if err == nil {
		err = poll("replicas streaming from "+primary, func() bool {
			return streamingStandbys(ctx, m, env, "-h", "127.0.0.1", "-p", strconv.Itoa(t.ports[primary])) == n-1
		})
	}
	streaming = time.Since(start)
	if !returned {
		cmdErr = <-done
	}
	if err == nil {
		err = cmdErr
	}
	return writes, streaming, err
}

// patroniTarget starts a Patroni cluster of n members on etcd, with its superuser's password
// superPass (in passfile), kept up until the benchmark ends.
func patroniTarget(ctx context.Context, m *machine, clean *cleanups, patroni, patronictl, etcd string, n int, passfile, superPass string) (switchTarget, error) {
	t := switchTarget{name: "patroni etcd", ports: map[string]int{}, passfile: passfile}
	scope := fmt.Sprintf("bench-patroni-%d-%d", n, 1)
	ready, stop, exited := make(chan []int, 1), make(chan struct{}), make(chan error, 1)
	go func() {
		_, err := patroniCluster(ctx, m, patroni, clusterOptions{members: n, etcd: etcd, run: 1, superPass: superPass, whileUp: func(restPorts []int) error {
			ready <- restPorts
			<-stop
			return nil
		}})
		exited <- err
	}()
	clean.add(func() { close(stop); <-exited })
	var restPorts []int
	select {
	case restPorts = <-ready:
	case err := <-exited:
		exited <- err
		return t, err
	}
	client := http.Client{Timeout: 2 * time.Second}
	var cl struct {
		Members []struct {
			Name string `json:"name"`
			Role string `json:"role"`
			Port int    `json:"port"`
		} `json:"members"`
	}
	clusterURL := fmt.Sprintf("http://127.0.0.1:%d/cluster", restPorts[0])
	if !getJSON(&client, clusterURL, &cl) {
		return t, fmt.Errorf("patroni's GET /cluster does not answer")
	}
	for _, mb := range cl.Members {
		t.ports[mb.Name] = mb.Port
	}
	dir, err := m.workDir("pgimaged-bench-patronictl-")
	if err != nil {
		return t, err
	}
	clean.add(func() { _ = os.RemoveAll(dir) })
	ctlConfig := filepath.Join(dir, "patronictl.yml")
	if err := m.writeFile(ctlConfig, fmt.Sprintf("scope: %s\nnamespace: /service/\netcd3:\n  hosts: %s\n", yamlString(scope), yamlString(etcd))); err != nil {
		return t, err
	}
	t.leader = func(context.Context) (string, error) {
		if !getJSON(&client, clusterURL, &cl) {
			return "", nil
		}
		for _, mb := range cl.Members {
			if mb.Role == "leader" {
				return mb.Name, nil
			}
		}
		return "", nil
	}
	t.command = func(ctx context.Context, leader string) error {
		_, err := m.run(ctx, nil, "", patronictl, "-c", ctlConfig, "switchover", scope, "--leader", leader, "--force")
		return err
	}
	return t, nil
}
