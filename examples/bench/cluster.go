package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// clusterDeadline bounds one run: a cluster that is not up by then is a failure.
const clusterDeadline = 5 * time.Minute

// runCluster measures the time from three members started at once on empty data directories
// until one primary and two streaming replicas, for pgimaged on each DCS backend and for
// Patroni (etcd) where it is installed.
func runCluster(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c common
	fs := flag.NewFlagSet("cluster", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c.register(fs, 5)
	backends := fs.String("backends", "file,etcd", "the DCS backends to measure pgimaged on")
	patroniFlag := fs.String("patroni", "", "the patroni program (default: patroni in PATH; without one, Patroni is not measured)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	m, err := c.setup()
	if err != nil {
		return err
	}
	var clean cleanups
	defer clean.run()

	patroni := *patroniFlag
	if patroni == "" {
		patroni, _ = exec.LookPath("patroni")
	}
	var notes []string
	if patroni == "" {
		notes = append(notes, "patroni is not installed (Debian: apt-get install patroni): only pgimaged is measured")
	}
	var etcdEndpoint string
	needEtcd := strings.Contains(*backends, "etcd") // Patroni is measured on etcd only
	if needEtcd {
		if _, err := exec.LookPath("etcd"); err != nil {
			notes = append(notes, "etcd is not installed (Debian: apt-get install etcd-server): nothing is measured on etcd")
		} else {
			e, err := startEtcd(ctx, m, &clean)
			if err != nil {
				return err
			}
			etcdEndpoint = e
		}
	}
	for _, n := range notes {
		fmt.Fprintf(stdout, "cluster: %s\n", n)
	}

	type result struct {
		backend           string
		pgimaged, patroni []time.Duration
	}
	var results []result
	for _, b := range strings.Split(*backends, ",") {
		b = strings.TrimSpace(b)
		switch b {
		case "file":
		case "etcd":
			if etcdEndpoint == "" {
				continue
			}
		default:
			return fmt.Errorf("-backends: unknown backend %q (file or etcd)", b)
		}
		r := result{backend: b}
		for i := range c.runs {
			d, err := pgimagedCluster(ctx, m, b, etcdEndpoint, i+1, nil)
			if err != nil {
				return fmt.Errorf("pgimaged on %s, run %d: %w", b, i+1, err)
			}
			r.pgimaged = append(r.pgimaged, d)
			fmt.Fprintf(stdout, "cluster: run %d/%d pgimaged %-4s %s\n", i+1, c.runs, b, seconds(d))
		}
		if b == "etcd" && patroni != "" {
			for i := range c.runs {
				d, err := patroniCluster(ctx, m, patroni, etcdEndpoint, i+1, nil)
				if err != nil {
					return fmt.Errorf("patroni on etcd, run %d: %w", i+1, err)
				}
				r.patroni = append(r.patroni, d)
				fmt.Fprintf(stdout, "cluster: run %d/%d patroni  etcd %s\n", i+1, c.runs, seconds(d))
			}
		}
		results = append(results, r)
	}

	fmt.Fprintf(stdout, "\ncluster: three members started at once on empty data directories until one primary and two\nstreaming replicas (loop_wait 1s, ttl 10s), median of %d runs (seconds per run in order)\n", c.runs)
	rows := [][]string{{"DCS", "pgimaged", "patroni", "ratio pgimaged/patroni", "pgimaged runs", "patroni runs"}}
	for _, r := range results {
		mp, mq := median(r.pgimaged), median(r.patroni)
		ratio := "-"
		if mq > 0 {
			ratio = fmt.Sprintf("%.2f", mp.Seconds()/mq.Seconds())
		}
		patroniRuns := runsOf(r.patroni)
		if patroniRuns == "" {
			patroniRuns = "-"
		}
		rows = append(rows, []string{r.backend, seconds(mp), seconds(mq), ratio, runsOf(r.pgimaged), patroniRuns})
	}
	table(stdout, rows)
	if patroni == "" {
		fmt.Fprintln(stdout, "(patroni is not installed: no side-by-side numbers)")
	}
	return nil
}

// pgimagedCluster runs one measurement of pgimaged on backend. With whileUp, each member also
// serves the HTTP API, and whileUp runs with the members' API ports once the cluster is up,
// before it is stopped.
func pgimagedCluster(ctx context.Context, m *machine, backend, etcdEndpoint string, run int, whileUp func(apiPorts []int) error) (time.Duration, error) {
	var clean cleanups
	defer clean.run()
	work, err := m.workDir("pgimaged-bench-cluster-")
	if err != nil {
		return 0, err
	}
	clean.add(func() { _ = os.RemoveAll(work) })
	dcs := fmt.Sprintf(`dcs "file" { path = %q }`, filepath.Join(work, "dcs"))
	if backend == "etcd" {
		dcs = fmt.Sprintf(`dcs "etcd" { endpoints = [%q] }`, etcdEndpoint)
	}
	env := []string{"BENCH_SUPERUSER_PASSWORD=" + password(), "BENCH_REPLICATION_PASSWORD=" + password()}
	var configs []string
	var apiPorts []int
	for i := 1; i <= 3; i++ {
		port, err := freePort()
		if err != nil {
			return 0, err
		}
		api := ""
		if whileUp != nil {
			p, err := freePort()
			if err != nil {
				return 0, err
			}
			apiPorts = append(apiPorts, p)
			api = fmt.Sprintf("api {\n  listen = \"127.0.0.1:%d\"\n}\n", p)
		}
		name := fmt.Sprintf("node%d", i)
		if err := m.mkdir(filepath.Join(work, name)); err != nil {
			return 0, err
		}
		cfg := filepath.Join(work, name+".hcl")
		if err := m.writeFile(cfg, fmt.Sprintf(`scope      = "bench-%d"
name       = %q
data_dir   = %q
plugin_dir = %q
loop_wait  = "1s"
ttl        = "10s"
%s
%s
postgresql {
  bin_dir = %q
  listen  = "127.0.0.1:%d"
  parameters = { shared_buffers = "16MB", fsync = "off", max_connections = 30 }
  pg_hba = [
    "host all all 127.0.0.1/32 scram-sha-256",
    "host replication replicator 127.0.0.1/32 scram-sha-256",
  ]
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

bootstrap {
  initdb = [{ encoding = "UTF8" }, { locale = "C" }]
}

method "basebackup" {
  checkpoint = "fast"
}
`, run, name, filepath.Join(work, name, "data"), m.plugins, dcs, api, m.pgBin, port)); err != nil {
			return 0, err
		}
		configs = append(configs, cfg)
	}

	start := time.Now()
	for i, cfg := range configs {
		dataDir := filepath.Join(work, fmt.Sprintf("node%d", i+1), "data")
		if err := startMember(m, env, filepath.Join(work, fmt.Sprintf("node%d.log", i+1)), &clean, dataDir, m.bin, "run", "-config", cfg); err != nil {
			return 0, err
		}
	}
	err = waitUp(ctx, start, work, func() (bool, error) {
		out, err := m.run(ctx, env, "", m.bin, "status", "-json", "-config", configs[0])
		if err != nil {
			return false, nil // the DCS may not be there yet
		}
		var st struct {
			Members []memberState `json:"members"`
		}
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			return false, fmt.Errorf("pgimaged status -json printed no JSON: %w\n%s", err, out)
		}
		return clusterReady(st.Members, "primary", "running"), nil
	})
	took := time.Since(start)
	if err == nil && whileUp != nil {
		err = whileUp(apiPorts)
	}
	return took, err
}

// memberState is a member as `pgimaged status -json` and Patroni's GET /cluster list it.
type memberState struct {
	Role  string `json:"role"`
	State string `json:"state"`
}

// clusterReady reports whether exactly three members are listed: one with primaryRole in state
// running and two replicas in one of replicaStates.
func clusterReady(members []memberState, primaryRole string, replicaStates ...string) bool {
	if len(members) != 3 {
		return false
	}
	primaries, replicas := 0, 0
	for _, m := range members {
		switch {
		case m.Role == primaryRole && m.State == "running":
			primaries++
		case m.Role == "replica" && slices.Contains(replicaStates, m.State):
			replicas++
		}
	}
	return primaries == 1 && replicas == 2
}

// startMember starts one member process as the PostgreSQL OS user with its output in logFile;
// clean stops it with SIGTERM (SIGKILL after two minutes) and any PostgreSQL it left running.
func startMember(m *machine, env []string, logFile string, clean *cleanups, dataDir string, argv ...string) error {
	log, err := os.Create(logFile)
	if err != nil {
		return err
	}
	cmd := m.command(context.Background(), env, argv...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("while starting %s: %w", strings.Join(argv, " "), err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); log.Close(); close(done) }()
	clean.add(func() {
		m.stopServer(dataDir)
	})
	clean.add(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(2 * time.Minute):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	})
	return nil
}

// waitUp polls up until it says the cluster is up. On failure the error carries the members'
// last log lines.
func waitUp(ctx context.Context, start time.Time, work string, up func() (bool, error)) error {
	for {
		ok, err := up()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Since(start) > clusterDeadline {
			var b strings.Builder
			logs, _ := filepath.Glob(filepath.Join(work, "node*.log"))
			for _, l := range logs {
				out, _ := os.ReadFile(l)
				fmt.Fprintf(&b, "\n--- %s\n%s", filepath.Base(l), tail(string(out), 15))
			}
			return fmt.Errorf("the cluster is not up after %s%s", clusterDeadline, b.String())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// startEtcd runs one etcd on loopback for the whole benchmark; clean stops it and removes its data.
func startEtcd(ctx context.Context, m *machine, clean *cleanups) (string, error) {
	dir, err := m.workDir("pgimaged-bench-etcd-")
	if err != nil {
		return "", err
	}
	clean.add(func() { _ = os.RemoveAll(dir) })
	clientPort, err := freePort()
	if err != nil {
		return "", err
	}
	peerPort, err := freePort()
	if err != nil {
		return "", err
	}
	clientURL := fmt.Sprintf("http://127.0.0.1:%d", clientPort)
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", peerPort)
	log, err := os.Create(filepath.Join(dir, "etcd.log"))
	if err != nil {
		return "", err
	}
	defer log.Close()
	cmd := m.command(context.Background(), nil, "etcd",
		"--name=bench", "--data-dir="+filepath.Join(dir, "data"),
		"--listen-client-urls="+clientURL, "--advertise-client-urls="+clientURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=bench="+peerURL, "--log-level=error")
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("while starting etcd: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	clean.add(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	})
	client := http.Client{Timeout: 2 * time.Second}
	for end := time.Now().Add(time.Minute); time.Now().Before(end); {
		select {
		case <-exited:
			out, _ := os.ReadFile(log.Name())
			return "", fmt.Errorf("etcd exited:\n%s", tail(string(out), 20))
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		resp, err := client.Get(clientURL + "/health")
		if err != nil {
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK && strings.Contains(string(body), `"true"`) {
			return fmt.Sprintf("127.0.0.1:%d", clientPort), nil
		}
	}
	return "", fmt.Errorf("etcd at %s is not healthy after a minute", clientURL)
}
