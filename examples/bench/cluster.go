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
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clusterDeadline bounds one run: a cluster that is not up by then is a failure.
const clusterDeadline = 5 * time.Minute

// runCluster measures the time from all members started at once on empty data directories until
// one primary and streaming replicas, for each size of -members: pgimaged on etcd (and on the
// file DCS if asked), Patroni on the same etcd where it is installed, and the floor of the bare
// programs, interleaved round by round. It prints the medians, pgimaged's ratios to Patroni and
// to the floor, the growth from size to size, and the median start and duration of each phase
// of pgimaged's critical path as its members publish it.
func runCluster(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c common
	fs := flag.NewFlagSet("cluster", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c.register(fs, 5)
	membersFlag := fs.String("members", "3,5", "cluster sizes, comma-separated (one primary, the others replicas)")
	backends := fs.String("backends", "etcd", "the DCS backends to measure pgimaged on: etcd, file, or both (etcd,file)")
	patroniFlag := fs.String("patroni", "", "the patroni program (default: patroni in PATH; without one, Patroni is not measured)")
	only := fs.String("contenders", "pgimaged,patroni,floor", "what to measure, comma-separated: pgimaged, patroni, floor")
	loopWait := fs.Duration("loop-wait", 0, "loop_wait for pgimaged and Patroni (default: each one's own default, 10s for both)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var sizes []int
	for _, f := range strings.Split(*membersFlag, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 2 || n > 9 {
			return fmt.Errorf("-members: %q is not a cluster size from 2 to 9", f)
		}
		sizes = append(sizes, n)
	}
	var bs []string
	for _, b := range strings.Split(*backends, ",") {
		b = strings.TrimSpace(b)
		if b != "etcd" && b != "file" {
			return fmt.Errorf("-backends: unknown backend %q (etcd or file)", b)
		}
		bs = append(bs, b)
	}
	chosen := map[string]bool{}
	for _, f := range strings.Split(*only, ",") {
		f = strings.TrimSpace(f)
		if f != "pgimaged" && f != "patroni" && f != "floor" {
			return fmt.Errorf("-contenders: unknown contender %q (pgimaged, patroni or floor)", f)
		}
		chosen[f] = true
	}
	if !chosen["pgimaged"] {
		bs = nil
	}
	if *loopWait < 0 || (*loopWait > 0 && *loopWait < time.Second) || *loopWait%time.Second != 0 {
		return fmt.Errorf("-loop-wait %s: give whole seconds (Patroni takes no less)", *loopWait)
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
	if !chosen["patroni"] {
		patroni = ""
	} else if patroni == "" {
		fmt.Fprintln(stdout, "cluster: patroni is not installed (Debian: apt-get install patroni): Patroni is not measured")
	}
	var etcdEndpoint string
	if slices.Contains(bs, "etcd") || patroni != "" {
		if _, err := exec.LookPath("etcd"); err != nil {
			fmt.Fprintln(stdout, "cluster: etcd is not installed (Debian: apt-get install etcd-server): nothing is measured on etcd")
			bs = slices.DeleteFunc(bs, func(b string) bool { return b == "etcd" })
			patroni = ""
		} else if etcdEndpoint, err = startEtcd(ctx, m, &clean); err != nil {
			return err
		}
	}

	type result struct {
		members int
		times   map[string][]time.Duration
		phases  map[string]*phaseStats // by contender
		floor   *floorSteps
	}
	var names []string // contenders in the order they are printed
	var results []result
	for _, n := range sizes {
		r := result{members: n, phases: map[string]*phaseStats{}, floor: &floorSteps{}}
		var cs []contender
		for _, b := range bs {
			name := "pgimaged " + b
			ps := newPhaseStats()
			r.phases[name] = ps
			cs = append(cs, contender{name, func(run int) (time.Duration, error) {
				start := time.Now()
				d, members, err := pgimagedCluster(ctx, m, clusterOptions{members: n, backend: b, etcd: etcdEndpoint, run: run, loopWait: *loopWait})
				ps.add(start, members)
				return d, err
			}})
		}
		if patroni != "" {
			cs = append(cs, contender{"patroni etcd", func(run int) (time.Duration, error) {
				return patroniCluster(ctx, m, patroni, clusterOptions{members: n, etcd: etcdEndpoint, run: run, loopWait: *loopWait})
			}})
		}
		if chosen["floor"] {
			cs = append(cs, contender{"floor", func(int) (time.Duration, error) {
				return floorCluster(ctx, m, n, r.floor)
			}})
		}
		if len(cs) == 0 {
			return fmt.Errorf("nothing to measure (-contenders %s)", *only)
		}
		if names == nil {
			for _, c := range cs {
				names = append(names, c.name)
			}
		}
		fmt.Fprintf(stdout, "cluster: %d members, %d rounds of %d contenders\n", n, c.runs, len(cs))
		if r.times, err = interleave(ctx, stdout, fmt.Sprintf("cluster %d members", n), c.runs, cs); err != nil {
			return err
		}
		results = append(results, r)
	}

	settings := "each one's default loop_wait (10s) and ttl"
	if *loopWait > 0 {
		settings = fmt.Sprintf("loop_wait %s for both", *loopWait)
	}
	fmt.Fprintf(stdout, `
cluster: all members started at once on empty data directories until one primary and the others
streaming replicas; %d interleaved rounds; median, spread, seconds per run in order.
pgimaged and Patroni: %s; replicas cloned with pg_basebackup,
checkpoint fast. floor: initdb, pg_ctl start -w, psql creating the roles, pg_basebackup -X stream
-c fast -R in parallel, standbys started, until the primary's pg_stat_replication shows them all
streaming. PostgreSQL everywhere: fsync on, shared_buffers 16MB, max_connections 30.
`, c.runs, settings)
	rows := [][]string{{"members", "contender", "runs", "median", "min–max", "pgimaged/patroni", "pgimaged/floor", "seconds per run"}}
	for _, r := range results {
		patroniMedian, floorMedian := median(r.times["patroni etcd"]), median(r.times["floor"])
		for _, name := range names {
			ts := r.times[name]
			mt := median(ts)
			toPatroni, toFloor := "", ""
			if strings.HasPrefix(name, "pgimaged") {
				toPatroni, toFloor = ratio(mt, patroniMedian), ratio(mt, floorMedian)
			}
			rows = append(rows, []string{fmt.Sprint(r.members), name, fmt.Sprint(len(ts)), seconds(mt), spread(ts), toPatroni, toFloor, runsOf(ts)})
		}
	}
	table(stdout, rows)
	fmt.Fprintln(stdout, "goals: 3 members ≤ 0.5× Patroni and ≤ 1.3× the floor; 5 members ≤ 0.5× Patroni")
	if len(results) > 1 {
		fmt.Fprintf(stdout, "\ngrowth: median time at each size over the median time at %d members\n", results[0].members)
		head := []string{"members"}
		head = append(head, names...)
		rows := [][]string{head}
		for _, r := range results[1:] {
			row := []string{fmt.Sprintf("%d/%d", r.members, results[0].members)}
			for _, name := range names {
				row = append(row, ratio(median(r.times[name]), median(results[0].times[name])))
			}
			rows = append(rows, row)
		}
		table(stdout, rows)
	}
	for _, r := range results {
		for _, name := range names {
			if ps := r.phases[name]; ps != nil {
				fmt.Fprintf(stdout, "\ncritical path of %s, %d members:\n", name, r.members)
				ps.print(stdout)
			}
		}
		if len(r.floor.names) > 0 {
			fmt.Fprintf(stdout, "\nfloor, %d members: median of each step (the bench's own polling included in the last)\n", r.members)
			r.floor.print(stdout)
		}
	}
	return nil
}

// clusterOptions say what cluster one run makes.
type clusterOptions struct {
	members  int
	backend  string // file or etcd
	etcd     string // etcd's client endpoint, host:port
	run      int    // makes the scope unique
	loopWait time.Duration
	// whileUp, if set, runs with the members' HTTP API ports once the cluster is up, before it
	// is stopped; each member then serves its API.
	whileUp func(apiPorts []int) error
	// superPass, if set, is the superuser's password (Patroni's harness); else a random one.
	superPass string
	// replPass, if set, is the replication role's password (Patroni's harness); else a random
	// one.
	replPass string
	// standbyOf, if set, makes Patroni's cluster a standby cluster of the server on that port of
	// 127.0.0.1 (whose roles have superPass and replPass).
	standbyOf int
}

// pgimagedCluster runs one measurement of pgimaged. It returns the time until the cluster is up
// and the members as `status -json` lists them right after, for their critical paths.
func pgimagedCluster(ctx context.Context, m *machine, o clusterOptions) (time.Duration, []pgimagedMember, error) {
	var clean cleanups
	defer clean.run()
	work, err := m.workDir("pgimaged-bench-cluster-")
	if err != nil {
		return 0, nil, err
	}
	clean.add(func() { _ = os.RemoveAll(work) })
	dcs := fmt.Sprintf(`dcs "file" { path = %q }`, filepath.Join(work, "dcs"))
	if o.backend == "etcd" {
		dcs = fmt.Sprintf(`dcs "etcd" { endpoints = [%q] }`, o.etcd)
	}
	loopWait := ""
	if o.loopWait > 0 {
		loopWait = fmt.Sprintf("loop_wait  = %q", o.loopWait.String())
	}
	superPass := password()
	env := []string{"BENCH_SUPERUSER_PASSWORD=" + superPass, "BENCH_REPLICATION_PASSWORD=" + password()}
	// The bench itself asks the primary for its streaming standbys, with a password file.
	passfile := filepath.Join(work, "pgpass")
	if err := m.writeFile(passfile, fmt.Sprintf("127.0.0.1:*:*:postgres:%s\n", superPass)); err != nil {
		return 0, nil, err
	}
	var configs []string
	var apiPorts []int
	ports := map[string]int{}
	for i := 1; i <= o.members; i++ {
		port, err := freePort()
		if err != nil {
			return 0, nil, err
		}
		ports[fmt.Sprintf("node%d", i)] = port
		api := ""
		if o.whileUp != nil {
			p, err := freePort()
			if err != nil {
				return 0, nil, err
			}
			apiPorts = append(apiPorts, p)
			api = fmt.Sprintf("api {\n  listen = \"127.0.0.1:%d\"\n}\n", p)
		}
		name := fmt.Sprintf("node%d", i)
		if err := m.mkdir(filepath.Join(work, name)); err != nil {
			return 0, nil, err
		}
		cfg := filepath.Join(work, name+".hcl")
		if err := m.writeFile(cfg, fmt.Sprintf(`scope      = "bench-%d-%d"
name       = %q
data_dir   = %q
plugin_dir = %q
%s
%s
%s
%s
method "basebackup" {
  checkpoint = "fast"
}
`, o.members, o.run, name, filepath.Join(work, name, "data"), m.plugins, loopWait, dcs, api, memberBlocks(m, port, filepath.Join(work, name)))); err != nil {
			return 0, nil, err
		}
		configs = append(configs, cfg)
	}

	status := func() ([]pgimagedMember, error) {
		out, err := m.run(ctx, env, "", m.bin, "status", "-json", "-config", configs[0])
		if err != nil {
			return nil, nil // the DCS may not be there yet
		}
		var st struct {
			Members []pgimagedMember `json:"members"`
		}
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			return nil, fmt.Errorf("pgimaged status -json printed no JSON: %w\n%s", err, out)
		}
		return st.Members, nil
	}
	var ms members
	start := time.Now()
	for i, cfg := range configs {
		dataDir := filepath.Join(work, fmt.Sprintf("node%d", i+1), "data")
		if err := ms.startMember(m, env, filepath.Join(work, fmt.Sprintf("node%d.log", i+1)), &clean, dataDir, m.bin, "run", "-config", cfg); err != nil {
			return 0, nil, err
		}
	}
	err = waitUp(ctx, start, work, func() (bool, error) {
		if err := ms.exited(); err != nil {
			return false, err
		}
		members, err := status()
		if err != nil {
			return false, err
		}
		var states []memberState
		primary := ""
		for _, mb := range members {
			states = append(states, mb.memberState)
			if mb.Role == "primary" {
				primary = mb.Name
			}
		}
		if !clusterReady(states, o.members, "primary", "running") {
			return false, nil
		}
		// As for Patroni and the floor: the primary's pg_stat_replication lists every replica
		// as streaming.
		return streamingStandbys(ctx, m, []string{"PGPASSFILE=" + passfile}, "-h", "127.0.0.1", "-p", fmt.Sprint(ports[primary])) == o.members-1, nil
	})
	took := time.Since(start)
	if err != nil {
		return took, nil, err
	}
	// Not measured: the members as they published themselves, with their critical paths.
	members, err := status()
	if err == nil && o.whileUp != nil {
		err = o.whileUp(apiPorts)
	}
	return took, members, err
}

// streamingStandbys is the number of standbys streaming from the server psql reaches with
// connArgs as the postgres user; -1 if it cannot be asked.
func streamingStandbys(ctx context.Context, m *machine, env []string, connArgs ...string) int {
	argv := append([]string{m.pg("psql"), "-X", "-At", "-U", "postgres", "-d", "postgres"}, connArgs...)
	argv = append(argv, "-c", "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")
	out, err := m.run(ctx, env, "", argv...)
	if err != nil {
		return -1
	}
	n, err := strconv.Atoi(strings.TrimSpace(out))
	if err != nil {
		return -1
	}
	return n
}

// pgimagedMember is a member as `pgimaged status -json` lists it.
type pgimagedMember struct {
	Name string `json:"name"`
	memberState
	PGImaged *struct {
		CriticalPath *criticalPath `json:"critical_path"`
	} `json:"pgimaged"`
}

// criticalPath is the timeline of a member's last bootstrap or clone.
type criticalPath struct {
	Kind   string `json:"kind"` // bootstrap or clone
	Phases []struct {
		Name  string    `json:"name"`
		Start time.Time `json:"start"`
		End   time.Time `json:"end"`
	} `json:"phases"`
}

// phaseStats gathers the critical paths of a contender's runs: per run, each phase's start
// (from the moment the members were started) and duration, the median over the members of a
// kind (the replicas) first; then the median over the runs.
type phaseStats struct {
	kinds  []string            // in the order first seen
	phases map[string][]string // by kind, in the order first seen
	start  map[string][]time.Duration
	took   map[string][]time.Duration // by kind + "/" + phase, one per run
	runs   int
}

func newPhaseStats() *phaseStats {
	return &phaseStats{phases: map[string][]string{}, start: map[string][]time.Duration{}, took: map[string][]time.Duration{}}
}

// add takes one run's members; runStart is when the members were started.
func (ps *phaseStats) add(runStart time.Time, members []pgimagedMember) {
	starts, tooks := map[string][]time.Duration{}, map[string][]time.Duration{}
	for _, mb := range members {
		if mb.PGImaged == nil || mb.PGImaged.CriticalPath == nil {
			continue
		}
		cp := mb.PGImaged.CriticalPath
		if !slices.Contains(ps.kinds, cp.Kind) {
			ps.kinds = append(ps.kinds, cp.Kind)
		}
		for _, p := range cp.Phases {
			if p.Start.IsZero() || p.End.Before(p.Start) {
				continue // not finished
			}
			if !slices.Contains(ps.phases[cp.Kind], p.Name) {
				ps.phases[cp.Kind] = append(ps.phases[cp.Kind], p.Name)
			}
			k := cp.Kind + "/" + p.Name
			starts[k] = append(starts[k], p.Start.Sub(runStart))
			tooks[k] = append(tooks[k], p.End.Sub(p.Start))
		}
	}
	if len(starts) == 0 {
		return
	}
	ps.runs++
	for k := range starts {
		ps.start[k] = append(ps.start[k], median(starts[k]))
		ps.took[k] = append(ps.took[k], median(tooks[k]))
	}
}

func (ps *phaseStats) print(w io.Writer) {
	if ps.runs == 0 {
		fmt.Fprintln(w, "(no member published a critical_path in status -json: this pgimaged does not record its phases)")
		return
	}
	fmt.Fprintf(w, "median over %d runs of each phase's start (from the moment the members were started) and duration;\nreplicas: the median over the replicas of a run first\n", ps.runs)
	rows := [][]string{{"member", "phase", "start", "took", "runs"}}
	// The bootstrap member first, then the replicas, then anything else in the order seen.
	kinds := slices.Clone(ps.kinds)
	rank := func(kind string) int {
		switch kind {
		case "bootstrap":
			return 0
		case "clone":
			return 1
		}
		return 2
	}
	slices.SortStableFunc(kinds, func(a, b string) int { return rank(a) - rank(b) })
	for _, kind := range kinds {
		who := kind
		switch kind {
		case "bootstrap":
			who = "bootstrap member"
		case "clone":
			who = "replicas"
		}
		for _, p := range ps.phases[kind] {
			k := kind + "/" + p
			rows = append(rows, []string{who, p, millis(median(ps.start[k])), millis(median(ps.took[k])), fmt.Sprint(len(ps.took[k]))})
			who = ""
		}
	}
	table(w, rows)
}

// memberState is a member as `pgimaged status -json` and Patroni's GET /cluster list it.
type memberState struct {
	Role  string `json:"role"`
	State string `json:"state"`
}

// clusterReady reports whether exactly n members are listed: one with primaryRole in state
// running and n-1 replicas in one of replicaStates.
func clusterReady(members []memberState, n int, primaryRole string, replicaStates ...string) bool {
	if len(members) != n {
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
	return primaries == 1 && replicas == n-1
}

// members are the agent processes of one run, to tell when one of them exits before the cluster
// is up.
type members struct {
	logs []string
	done []chan struct{}
}

// exited is an error naming a member that exited, with its log's last lines; nil while all run.
func (ms *members) exited() error {
	for i, d := range ms.done {
		select {
		case <-d:
			out, _ := os.ReadFile(ms.logs[i])
			return fmt.Errorf("member %s exited before the cluster was up:\n%s", filepath.Base(ms.logs[i]), tail(string(out), 15))
		default:
		}
	}
	return nil
}

// startMember starts one member process as the PostgreSQL OS user with its output in logFile;
// clean stops it with SIGTERM (SIGKILL after two minutes) and any PostgreSQL it left running.
func (ms *members) startMember(m *machine, env []string, logFile string, clean *cleanups, dataDir string, argv ...string) error {
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
	ms.logs, ms.done = append(ms.logs, logFile), append(ms.done, done)
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

// memberBlocks is the postgresql and bootstrap blocks of a benchmark member's configuration:
// PostgreSQL listening on 127.0.0.1:port with its socket in socketDir, passwords from the
// environment (BENCH_SUPERUSER_PASSWORD, BENCH_REPLICATION_PASSWORD), and extraHBA lines before
// the password rules.
func memberBlocks(m *machine, port int, socketDir string, extraHBA ...string) string {
	var hba strings.Builder
	for _, line := range append(extraHBA, "host all all 127.0.0.1/32 scram-sha-256", "host replication replicator 127.0.0.1/32 scram-sha-256") {
		fmt.Fprintf(&hba, "    %q,\n", line)
	}
	return fmt.Sprintf(`postgresql {
  bin_dir = %q
  listen  = "127.0.0.1:%d"
  parameters = { shared_buffers = "16MB", max_connections = 30, unix_socket_directories = %q }
  pg_hba = [
%s  ]
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
`, m.pgBin, port, socketDir, hba.String())
}
