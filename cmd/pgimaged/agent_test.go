package main_test

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pgimaged/pgimaged/core/pg"
	"github.com/pgimaged/pgimaged/internal/pgtest"
	"github.com/pgimaged/pgimaged/internal/testenv"
	"github.com/pgimaged/pgimaged/sdk/syncfs"
)

// The TestAgent tests run several `pgimaged run` members of one cluster, each with its own port
// and data directory, against real PostgreSQL and a real DCS: the file backend, and etcd on
// loopback where the behaviour depends on leases. Deadlines in these tests are guards against a
// hang, far beyond what each step needs; they never assert speed.

// What the agent logs at the turning points the tests look for.
const (
	logWon           = "won the initialize race"
	logReleased      = "bootstrap failed; released initialize"
	logCreating      = "creating a replica"
	logWaitingDCS    = "waiting for the DCS"
	logStartExisting = "starting the existing cluster"
	logRemoveHalf    = "removing the half-made data directory"
	logBootstrapped  = "cluster bootstrapped"
	logAbandoned     = "DCS session lost during the bootstrap"
	logUnrecorded    = "could not record the new cluster in the DCS"
)

// bootstraps sums up what the agents' logs say about the initialize race.
type bootstraps struct {
	won        int // wins of the initialize race
	done       int // clusters bootstrapped and recorded
	released   int // failed bootstraps that gave initialize back (abandoned ones included)
	abandoned  int // bootstraps given up because the DCS session was lost
	unrecorded int // bootstrapped clusters removed because the DCS session was lost
}

func bootstrapsIn(agents ...*agentProc) bootstraps {
	var b bootstraps
	for _, a := range agents {
		out := a.out.String()
		b.won += countMessage(out, logWon)
		b.done += countMessage(out, logBootstrapped)
		b.released += countMessage(out, logReleased)
		b.abandoned += countMessage(out, logAbandoned)
		b.unrecorded += countMessage(out, logUnrecorded)
	}
	return b
}

// countMessage counts the log lines whose message starts with msg, so that the same words in a
// field's value (a plugin's summary, a quoted error) are not counted.
func countMessage(out, msg string) int {
	n := 0
	for _, line := range strings.Split(out, "\n") {
		if _, rest, ok := strings.Cut(line, "]  pgimaged: "); ok && strings.HasPrefix(rest, msg) {
			n++
		} else if _, rest, ok := strings.Cut(line, "] pgimaged: "); ok && strings.HasPrefix(rest, msg) {
			n++
		}
	}
	return n
}

// checkOneBootstrap asserts that exactly one cluster was bootstrapped and that every other win
// of the initialize race ended in a failure that gave the key back (failures allowed) or in a
// lost DCS session. A lease can legitimately expire on a loaded machine (etcd tests use a 3s
// TTL): the bootstrap is then abandoned and the race runs again; that is reported, not failed.
func checkOneBootstrap(t *testing.T, failures int, agents ...*agentProc) {
	t.Helper()
	b := bootstrapsIn(agents...)
	if b.done != 1 {
		t.Errorf("%d clusters bootstrapped, want exactly 1 (%+v)", b.done, b)
	}
	if b.won != b.done+b.released+b.unrecorded {
		t.Errorf("%d wins of the initialize race, but %d bootstrapped, %d released and %d removed: a win is unaccounted for", b.won, b.done, b.released, b.unrecorded)
	}
	if b.released != failures+b.abandoned {
		t.Errorf("%d bootstraps failed, want %d plus %d abandoned with a lost DCS session", b.released, failures, b.abandoned)
	}
	if lost := b.abandoned + b.unrecorded; lost > 0 {
		t.Logf("%d bootstraps were given up because the DCS session was lost; the race ran again", lost)
	}
}

// guard is the deadline for a cluster (or one more member) to come up.
const guard = 5 * time.Minute

// backend is the DCS a test runs on: "file", or "etcd" at endpoint.
type backend struct {
	kind     string
	endpoint string
}

// onEachBackend runs body as a subtest on the file DCS and on an etcd of its own.
func onEachBackend(t *testing.T, body func(t *testing.T, b backend)) {
	t.Run("file", func(t *testing.T) { body(t, backend{kind: "file"}) })
	t.Run("etcd", func(t *testing.T) {
		e := startEtcd(t, 0)
		body(t, backend{kind: "etcd", endpoint: e.endpoint})
	})
}

// agentCluster is what the members of one test cluster share.
type agentCluster struct {
	scope               string
	dcs                 string // HCL: the dcs block and the loop timing
	superPass, replPass string
	shared              string // HCL every member gets (bootstrap and method blocks)
	work                string // a directory for the test's scripts and DCS files
}

// cluster makes the shared settings of a new cluster on b. On etcd, scope keeps clusters of
// one test apart; the file DCS gets a directory of its own.
func (b backend) cluster(t *testing.T, scope string) *agentCluster {
	t.Helper()
	c := &agentCluster{scope: scope, superPass: "Sup3r-" + randomHex(t), replPass: "R3pl-" + randomHex(t), work: workDir(t)}
	switch b.kind {
	case "etcd":
		c.dcs = fmt.Sprintf("dcs \"etcd\" { endpoints = [%q] }\nttl       = \"3s\"\nloop_wait = \"1s\"", b.endpoint)
	default:
		c.dcs = fmt.Sprintf("dcs \"file\" { path = %q }\nloop_wait = \"1s\"", filepath.Join(c.work, "dcs"))
	}
	return c
}

func fileCluster(t *testing.T) *agentCluster {
	t.Helper()
	return backend{kind: "file"}.cluster(t, "e2e")
}

func randomHex(t testing.TB) string {
	b := make([]byte, 9)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// member writes the configuration of one member: data directory <dir>/<name>/data, its own
// port, the cluster's credentials and DCS. extra is HCL for this member only (tags...).
func (c *agentCluster) member(t *testing.T, name, extra string) *node {
	t.Helper()
	return writeNode(t, nodeSpec{
		scope: c.scope, name: name, nameInPath: true, top: c.dcs + "\n" + extra,
		extra: "method \"basebackup\" { checkpoint = \"fast\" }\n" + c.shared, superPass: c.superPass, replPass: c.replPass,
	})
}

// memberWith is member with more settings inside its postgresql block.
func (c *agentCluster) memberWith(t *testing.T, name, extra, postgresql string) *node {
	t.Helper()
	return writeNode(t, nodeSpec{
		scope: c.scope, name: name, nameInPath: true, top: c.dcs + "\n" + extra, postgresql: postgresql,
		extra: "method \"basebackup\" { checkpoint = \"fast\" }\n" + c.shared, superPass: c.superPass, replPass: c.replPass,
	})
}

// start starts the member's agent.
func (n *node) start(t *testing.T) *agentProc {
	t.Helper()
	return startAgent(t, n.config, n.env...)
}

// startInTurn starts the agents of members one after the other, each once the ones before it
// run (the first bootstraps, the others clone), and stops them side by side when the test ends.
func startInTurn(t *testing.T, members ...*node) []*agentProc {
	t.Helper()
	var agents []*agentProc
	var names []string
	for _, n := range members {
		agents, names = append(agents, n.start(t)), append(names, n.name)
		waitCluster(t, members[0], agents, names...)
	}
	stopAllAtCleanup(t, agents...)
	return agents
}

// stopAllAtCleanup sends SIGTERM to every agent at once when the test ends, so that members
// stop side by side; startAgent's own cleanup then finds them gone (or reports a hang).
func stopAllAtCleanup(t *testing.T, agents ...*agentProc) {
	t.Cleanup(func() {
		for _, a := range agents {
			if !a.exited() {
				_ = a.cmd.Process.Signal(syscall.SIGTERM)
			}
		}
		for _, a := range agents {
			select {
			case <-a.done:
			case <-time.After(3 * time.Minute):
			}
		}
	})
}

// clusterStatus is `pgimaged status -json`.
type clusterStatus struct {
	Scope      string         `json:"scope"`
	Leader     string         `json:"leader"`
	Initialize *string        `json:"initialize"`
	Members    []memberStatus `json:"members"`
	History    []any          `json:"history"`
}

type memberStatus struct {
	Name         string         `json:"name"`
	Leader       bool           `json:"leader"`
	State        string         `json:"state"`
	Role         string         `json:"role"`
	ConnURL      string         `json:"conn_url"`
	APIURL       string         `json:"api_url"`
	XLogLocation int64          `json:"xlog_location"`
	Timeline     int            `json:"timeline"`
	Tags         map[string]any `json:"tags"`
	// PendingRestart: a setting waits for a restart of PostgreSQL.
	PendingRestart bool `json:"pending_restart"`
	PGImaged       *struct {
		SystemIdentifier string `json:"system_identifier"`
		LastError        string `json:"last_error"`
		Attempts         []struct {
			Method string `json:"method"`
			OK     bool   `json:"ok"`
		} `json:"attempts"`
		CriticalPath *criticalPath `json:"critical_path"`
	} `json:"pgimaged"`
}

func (s clusterStatus) member(name string) (memberStatus, bool) {
	for _, m := range s.Members {
		if m.Name == name {
			return m, true
		}
	}
	return memberStatus{}, false
}

func (s clusterStatus) withRole(role string) []memberStatus {
	var out []memberStatus
	for _, m := range s.Members {
		if m.Role == role {
			out = append(out, m)
		}
	}
	return out
}

func (s clusterStatus) String() string {
	b, _ := json.MarshalIndent(s, "", "  ")
	return string(b)
}

// status reads the cluster through `pgimaged status -json` with n's configuration.
func status(t *testing.T, n *node) (clusterStatus, error) {
	t.Helper()
	r := run(t, n.env, "status", "-json", "-config", n.config)
	var s clusterStatus
	if r.code != 0 {
		return s, fmt.Errorf("status failed: %s", r)
	}
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
		return s, fmt.Errorf("status -json printed no JSON: %v\n%s", err, r)
	}
	return s, nil
}

// waitFor polls cond until it holds. An agent that exits meanwhile fails the test at once with
// its output; the deadline only guards against a hang.
func waitFor(t *testing.T, deadline time.Duration, what string, agents []*agentProc, cond func() bool) {
	t.Helper()
	end := time.Now().Add(deadline)
	for {
		if cond() {
			return
		}
		for _, a := range agents {
			if a.exited() {
				t.Fatalf("while waiting for %s: agent %s exited (%v):\n%s", what, a.config, a.err, a.out.String())
			}
		}
		if time.Now().After(end) {
			t.Fatalf("gave up waiting: %s", what)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// waitCluster waits until the status lists exactly the named members, all running, one of
// them the primary holding the leader key and the others replicas; it returns that status.
func waitCluster(t *testing.T, via *node, agents []*agentProc, names ...string) clusterStatus {
	t.Helper()
	var last clusterStatus
	var lastErr error
	what := fmt.Sprintf("members %v running, one primary", names)
	end := time.Now().Add(guard)
	for {
		last, lastErr = status(t, via)
		if lastErr == nil && clusterUp(last, names) {
			return last
		}
		for _, a := range agents {
			if a.exited() {
				t.Fatalf("while waiting for %s: agent %s exited (%v):\n%s", what, a.config, a.err, a.out.String())
			}
		}
		if time.Now().After(end) {
			t.Fatalf("gave up waiting for %s; last status (%v):\n%s", what, lastErr, last)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func clusterUp(s clusterStatus, names []string) bool {
	if len(s.Members) != len(names) {
		return false
	}
	primaries := 0
	for _, m := range s.Members {
		if !slices.Contains(names, m.Name) || m.State != "running" {
			return false
		}
		switch m.Role {
		case "primary":
			primaries++
			if s.Leader != m.Name {
				return false
			}
		case "replica":
		default:
			return false
		}
	}
	return primaries == 1
}

// replication lists pg_stat_replication on n: application_name → state.
func replication(t *testing.T, n *node) map[string]string {
	t.Helper()
	conn := connectTCP(t, n.port, "postgres", n.superPass, "postgres")
	ctx := t.Context()
	rows, err := conn.Query(ctx, "SELECT application_name, state FROM pg_stat_replication")
	if err != nil {
		t.Fatalf("reading pg_stat_replication on port %d: %v", n.port, err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var name, state string
		if err := rows.Scan(&name, &state); err != nil {
			t.Fatal(err)
		}
		out[name] = state
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	_ = conn.Close(ctx)
	return out
}

// waitStreaming waits until pg_stat_replication on n shows exactly the named replicas streaming.
func waitStreaming(t *testing.T, n *node, replicas ...string) {
	t.Helper()
	want := slices.Clone(replicas)
	sort.Strings(want)
	var got map[string]string
	eventually(t, guard, fmt.Sprintf("replicas %v streaming from port %d", want, n.port), func() bool {
		got = replication(t, n)
		var names []string
		for name, state := range got {
			if state != "streaming" {
				return false
			}
			names = append(names, name)
		}
		sort.Strings(names)
		return slices.Equal(names, want)
	})
}

func sysidOf(t *testing.T, n *node) string {
	t.Helper()
	id, err := pg.SystemIdentifier(n.dataDir)
	if err != nil {
		t.Fatalf("reading the system identifier of %s: %v", n.dataDir, err)
	}
	return strconv.FormatUint(id, 10)
}

func exitCode(a *agentProc) int {
	if a.err == nil {
		return 0
	}
	if ee, ok := a.err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}

// sigterm stops an agent with SIGTERM and waits for it to exit.
func sigterm(t *testing.T, a *agentProc) {
	t.Helper()
	_ = a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-a.done:
	case <-time.After(3 * time.Minute):
		t.Fatalf("agent %s did not exit within 3 minutes of SIGTERM:\n%s", a.config, a.out.String())
	}
}

// raceRounds is how often the race runs on each backend: PGIMAGED_RACE_ROUNDS, else 10 under
// CI and 3 elsewhere.
func raceRounds(t *testing.T) int {
	if v := os.Getenv("PGIMAGED_RACE_ROUNDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("PGIMAGED_RACE_ROUNDS=%q is not a positive number", v)
		}
		return n
	}
	if testenv.InCI() {
		return 10
	}
	return 3
}

func TestAgentRaceOneBootstrap(t *testing.T) {
	rounds := raceRounds(t)
	onEachBackend(t, func(t *testing.T, b backend) {
		for round := 1; round <= rounds; round++ {
			t.Run(fmt.Sprintf("round%d", round), func(t *testing.T) {
				began := time.Now()
				c := b.cluster(t, fmt.Sprintf("race%d", round))
				var nodes []*node
				for i := 1; i <= 5; i++ {
					nodes = append(nodes, c.member(t, fmt.Sprintf("node%d", i), ""))
				}
				var agents []*agentProc
				for _, n := range nodes {
					agents = append(agents, n.start(t))
				}
				stopAllAtCleanup(t, agents...)
				st := waitCluster(t, nodes[0], agents, "node1", "node2", "node3", "node4", "node5")

				checkOneBootstrap(t, 0, agents...)
				primaries := st.withRole("primary")
				if len(primaries) != 1 {
					t.Fatalf("%d primaries:\n%s", len(primaries), st)
				}
				if st.Initialize == nil || *st.Initialize == "" {
					t.Fatalf("initialize holds no system identifier:\n%s", st)
				}
				var primary *node
				var replicas []string
				for _, n := range nodes {
					name := filepath.Base(filepath.Dir(n.dataDir))
					m, _ := st.member(name)
					if m.PGImaged == nil || m.PGImaged.SystemIdentifier != *st.Initialize {
						t.Errorf("member %s publishes system identifier %+v, initialize is %s", name, m.PGImaged, *st.Initialize)
					}
					if got := sysidOf(t, n); got != *st.Initialize {
						t.Errorf("%s's pg_control has system identifier %s, initialize is %s", name, got, *st.Initialize)
					}
					if name == primaries[0].Name {
						primary = n
					} else {
						replicas = append(replicas, name)
					}
				}
				waitStreaming(t, primary, replicas...)
				t.Logf("round %d on %s: %s primary, %v streaming, %s from start", round, b.kind, primaries[0].Name, replicas, time.Since(began).Round(100*time.Millisecond))
			})
		}
	})
}

// slowBootstrap is a custom bootstrap method whose first run in a test sleeps half a minute
// after initdb (in short steps, so that nothing it started outlives it by more than a moment).
// It writes the data directory it is filling into <work>/sleeping while it sleeps.
func slowBootstrap(t *testing.T, c *agentCluster) {
	t.Helper()
	script := writeFile(t, c.work, "slow_initdb.sh", fmt.Sprintf(`#!/bin/sh
for a in "$@"; do case "$a" in --datadir=*) datadir="${a#--datadir=}";; esac; done
%q/initdb -D "$datadir" --auth=trust --username=postgres --encoding=UTF8 --locale=C --no-sync || exit 1
if mkdir %[2]q/slow-once 2>/dev/null; then
	echo "$datadir" > %[2]q/sleeping.tmp && mv %[2]q/sleeping.tmp %[2]q/sleeping
	i=0
	while [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
fi
`, testenv.PGBinDir(t), c.work), 0o755)
	c.shared = fmt.Sprintf("bootstrap { method = \"slow_initdb\" }\nmethod \"slow_initdb\" { command = %q }", script)
}

// descendants lists the live processes below pid: pid → command line.
func descendants(pid int) map[int]string {
	parent := map[int]int{}
	cmdline := map[int]string{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(st)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 2 || f[0] == "Z" {
			continue
		}
		pp, _ := strconv.Atoi(f[1])
		parent[p] = pp
		b, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		cmdline[p] = strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
	}
	out := map[int]string{}
	for p := range parent {
		for q := parent[p]; q > 1; q = parent[q] {
			if q == pid {
				out[p] = cmdline[p]
				break
			}
		}
	}
	return out
}

// alive reports whether pid still runs the command line it had (not a zombie).
func alive(pid int, cmdline string) bool {
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(st)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && strings.HasPrefix(strings.TrimSpace(s[i+1:]), "Z") {
		return false
	}
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " ")) == cmdline
}

func TestAgentBootstrapperKilled(t *testing.T) {
	onEachBackend(t, func(t *testing.T, b backend) {
		c := b.cluster(t, "killed")
		slowBootstrap(t, c)
		nodes := map[string]*node{}
		agents := map[string]*agentProc{}
		var all []*agentProc
		for _, name := range []string{"node1", "node2", "node3"} {
			n := c.member(t, name, "")
			// A plugin killed with its agent cannot remove its socket: keep such leftovers in
			// the test's own directory rather than in the system's temporary directory.
			tmp := filepath.Join(n.dir, "tmp")
			if err := os.Mkdir(tmp, 0o700); err != nil {
				t.Fatal(err)
			}
			n.env = append(n.env, "TMPDIR="+tmp)
			nodes[name] = n
		}
		for _, name := range []string{"node1", "node2", "node3"} {
			agents[name] = nodes[name].start(t)
			all = append(all, agents[name])
		}
		stopAllAtCleanup(t, all...)

		// The first bootstrapper is asleep in its method, holding the empty initialize.
		sleeping := filepath.Join(c.work, "sleeping")
		waitFor(t, guard, "a bootstrap method asleep after initdb", all, func() bool {
			_, err := os.Stat(sleeping)
			return err == nil
		})
		raw, err := os.ReadFile(sleeping)
		if err != nil {
			t.Fatal(err)
		}
		victimDir := strings.TrimSpace(string(raw))
		var victim string
		for name, n := range nodes {
			if n.dataDir == victimDir {
				victim = name
			}
		}
		if victim == "" {
			t.Fatalf("the sleeping bootstrap fills %q, which is no member's data directory", victimDir)
		}
		if !strings.Contains(agents[victim].out.String(), logWon) {
			t.Fatalf("%s bootstraps without having logged that it won the initialize race:\n%s", victim, agents[victim].out.String())
		}
		if st, err := status(t, nodes[victim]); err != nil || st.Initialize == nil || *st.Initialize != "" {
			t.Fatalf("while %s bootstraps, initialize should be present and empty (%v):\n%s", victim, err, st)
		}
		children := descendants(agents[victim].cmd.Process.Pid)
		if len(children) == 0 {
			t.Fatalf("agent %s runs no plugin while its bootstrap method sleeps", victim)
		}
		killedAt := time.Now()
		agents[victim].kill()

		// Everything the killed agent had started dies with it (the method's last step is at
		// most a 0.1 s sleep). Whatever is still there after a generous wait is a leak: it is
		// reported and killed so that the node can be reused.
		leakEnd := time.Now().Add(time.Minute)
		for {
			var left []string
			for pid, cmd := range children {
				if alive(pid, cmd) {
					left = append(left, fmt.Sprintf("%d: %s", pid, cmd))
				}
			}
			for _, p := range pgProcessesIn(victimDir) {
				if !slices.Contains(left, p) {
					left = append(left, p)
				}
			}
			if len(left) == 0 {
				break
			}
			if time.Now().After(leakEnd) {
				t.Errorf("processes of the killed agent %s still run a minute after SIGKILL: %q", victim, left)
				for pid, cmd := range children {
					if alive(pid, cmd) {
						_ = syscall.Kill(pid, syscall.SIGKILL)
					}
				}
				break
			}
			time.Sleep(100 * time.Millisecond)
		}

		if left, _ := os.ReadDir(filepath.Join(nodes[victim].dir, "tmp")); len(left) > 0 {
			var names []string
			for _, e := range left {
				names = append(names, e.Name())
			}
			t.Logf("files the killed agent left in its TMPDIR: %q", names)
		}

		// Another member takes initialize once the victim's session is gone and bootstraps.
		var rest []string
		var restAgents []*agentProc
		for _, name := range []string{"node1", "node2", "node3"} {
			if name != victim {
				rest = append(rest, name)
				restAgents = append(restAgents, agents[name])
			}
		}
		waitFor(t, guard, "another member winning the initialize race", restAgents, func() bool {
			for _, name := range rest {
				if strings.Contains(agents[name].out.String(), logWon) {
					return true
				}
			}
			return false
		})
		t.Logf("%s: another member won initialize %s after %s was killed", b.kind, time.Since(killedAt).Round(100*time.Millisecond), victim)
		waitCluster(t, nodes[rest[0]], restAgents, rest...)
		checkOneBootstrap(t, 0, restAgents...)

		// The killed node left a half-made cluster behind its marker.
		n := nodes[victim]
		marker := filepath.Join(filepath.Dir(n.dataDir), ".data.pgimaged-incomplete")
		if _, err := os.Stat(marker); err != nil {
			t.Fatalf("the killed bootstrap left no incomplete marker: %v", err)
		}
		if !pg.HasCluster(n.dataDir) {
			t.Fatalf("the killed bootstrap left no half-made cluster in %s", n.dataDir)
		}
		halfMade := sysidOf(t, n)

		// Restarted, it removes the half-made cluster and clones a replica.
		again := n.start(t)
		stopAllAtCleanup(t, again)
		st := waitCluster(t, nodes[rest[0]], append(restAgents, again), "node1", "node2", "node3")
		if m, _ := st.member(victim); m.Role != "replica" {
			t.Errorf("the restarted %s is %s, want replica", victim, m.Role)
		}
		log := again.out.String()
		for _, want := range []string{logRemoveHalf, logCreating} {
			if !strings.Contains(log, want) {
				t.Errorf("the restarted %s did not log %q", victim, want)
			}
		}
		for _, unwanted := range []string{logWon, logStartExisting} {
			if strings.Contains(log, unwanted) {
				t.Errorf("the restarted %s logged %q: it must clone, not bootstrap or adopt", victim, unwanted)
			}
		}
		if got := sysidOf(t, n); got != *st.Initialize || got == halfMade {
			t.Errorf("%s now has system identifier %s; the cluster's is %s and the half-made one was %s", victim, got, *st.Initialize, halfMade)
		}
		if _, err := os.Stat(marker); !os.IsNotExist(err) {
			t.Errorf("the incomplete marker is still there after the clone (%v)", err)
		}
		waitStreaming(t, nodes[st.Leader], slices.DeleteFunc([]string{"node1", "node2", "node3"}, func(s string) bool { return s == st.Leader })...)
	})
}

func TestAgentBootstrapFailureReleasesInitialize(t *testing.T) {
	onEachBackend(t, func(t *testing.T, b backend) {
		c := b.cluster(t, "failing")
		script := writeFile(t, c.work, "fails_on_node1.sh", fmt.Sprintf(`#!/bin/sh
for a in "$@"; do case "$a" in --datadir=*) datadir="${a#--datadir=}";; esac; done
case "$datadir" in *node1*) echo "restore: no backup reachable from node1" >&2; exit 1;; esac
exec %q/initdb -D "$datadir" --auth=trust --username=postgres --encoding=UTF8 --locale=C --no-sync
`, testenv.PGBinDir(t)), 0o755)
		c.shared = fmt.Sprintf("bootstrap { method = \"restore\" }\nmethod \"restore\" { command = %q }", script)
		n1, n2, n3 := c.member(t, "node1", ""), c.member(t, "node2", ""), c.member(t, "node3", "")

		// Alone, node1 wins, fails and gives initialize back.
		a1 := n1.start(t)
		stopAllAtCleanup(t, a1)
		waitFor(t, guard, "node1's bootstrap to fail", []*agentProc{a1}, func() bool {
			return strings.Contains(a1.out.String(), logReleased)
		})
		if !strings.Contains(a1.out.String(), "no backup reachable from node1") {
			t.Errorf("node1's log does not carry the method's own words:\n%s", a1.out.String())
		}
		a2, a3 := n2.start(t), n3.start(t)
		stopAllAtCleanup(t, a2, a3)
		agents := []*agentProc{a1, a2, a3}
		st := waitCluster(t, n1, agents, "node1", "node2", "node3")
		if st.Leader == "node1" {
			t.Fatalf("node1, whose bootstrap always fails, leads:\n%s", st)
		}
		b1 := bootstrapsIn(a1)
		if b1.done != 0 || b1.won != b1.released || b1.won == 0 {
			t.Errorf("node1, whose method always fails, must release initialize after every win: %+v", b1)
		}
		checkOneBootstrap(t, b1.released-b1.abandoned, agents...)
		m1, _ := st.member("node1")
		if m1.Role != "replica" || !strings.Contains(a1.out.String(), logCreating) {
			t.Errorf("node1 did not become a replica by cloning: role %s", m1.Role)
		}
		var failed, cloned bool
		if m1.PGImaged != nil {
			for _, att := range m1.PGImaged.Attempts {
				failed = failed || (att.Method == "restore" && !att.OK)
				cloned = cloned || (att.Method == "basebackup" && att.OK)
			}
		}
		if !failed || !cloned {
			t.Errorf("node1's published history lacks the failed bootstrap or the clone:\n%s", st)
		}
		if got := sysidOf(t, n1); got != *st.Initialize {
			t.Errorf("node1 has system identifier %s, the cluster %s", got, *st.Initialize)
		}
	})
}

// etcdProc is an etcd a test started.
type etcdProc struct {
	endpoint string // 127.0.0.1:port
	exited   chan struct{}
	pid      int // of etcd, which leads a process group of its own
	pgid     int // its process group, for freezing it (SIGSTOP)
}

// startEtcd runs an etcd of the test's own on loopback; clientPort 0 picks a free port. It is
// killed, with its data, when the test ends.
func startEtcd(t *testing.T, clientPort int) *etcdProc {
	t.Helper()
	bin := testenv.LookPath(t, "etcd")
	if clientPort == 0 {
		clientPort = pgtest.FreePort(t)
	}
	peerPort := pgtest.FreePort(t)
	dir := workDir(t)
	// etcd syncs every write: on a busy disk a sync can outlast a 3s lease. Its data goes to
	// memory where the machine offers a tmpfs.
	dataDir := filepath.Join(dir, "data")
	if shm, err := os.MkdirTemp("/dev/shm", "pgimaged-etcd-"); err == nil {
		dataDir = shm
		t.Cleanup(func() { _ = os.RemoveAll(shm) })
	}
	clientURL := fmt.Sprintf("http://127.0.0.1:%d", clientPort)
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", peerPort)
	logFile, err := os.Create(filepath.Join(dir, "etcd.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command(bin,
		"--name=pgimaged-e2e", "--data-dir="+dataDir,
		"--listen-client-urls="+clientURL, "--advertise-client-urls="+clientURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=pgimaged-e2e="+peerURL,
		"--logger=zap", "--log-level=error")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting etcd: %v", err)
	}
	e := &etcdProc{endpoint: fmt.Sprintf("127.0.0.1:%d", clientPort), exited: make(chan struct{}), pid: cmd.Process.Pid, pgid: cmd.Process.Pid}
	go func() { _ = cmd.Wait(); close(e.exited) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-e.exited
	})
	end := time.Now().Add(time.Minute)
	for !etcdHealthy(clientURL) {
		select {
		case <-e.exited:
			out, _ := os.ReadFile(logFile.Name())
			t.Fatalf("etcd exited:\n%s", out)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(end) {
			out, _ := os.ReadFile(logFile.Name())
			t.Fatalf("etcd at %s is not healthy after a minute:\n%s", clientURL, out)
		}
	}
	return e
}

func etcdHealthy(url string) bool {
	client := http.Client{Timeout: 2 * time.Second}
	resp, err := client.Get(url + "/health")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode == http.StatusOK && strings.Contains(string(b), `"true"`)
}

func TestAgentWaitsForDCS(t *testing.T) {
	port := pgtest.FreePort(t) // nothing listens here until etcd starts
	c := backend{kind: "etcd", endpoint: fmt.Sprintf("127.0.0.1:%d", port)}.cluster(t, "late")
	n := c.member(t, "node1", "")
	a := n.start(t)
	stopAllAtCleanup(t, a)
	waitFor(t, 2*time.Minute, "the agent to say it waits for the DCS", []*agentProc{a}, func() bool {
		return strings.Contains(a.out.String(), logWaitingDCS)
	})
	// A few more retries (loop_wait is 1s) change nothing: it waits, it does not act.
	time.Sleep(3 * time.Second)
	if a.exited() {
		t.Fatalf("the agent exited while the DCS was unreachable (%v):\n%s", a.err, a.out.String())
	}
	if _, err := os.Stat(n.dataDir); !os.IsNotExist(err) {
		t.Errorf("the agent created the data directory without the DCS (%v)", err)
	}
	if strings.Contains(a.out.String(), logWon) {
		t.Errorf("the agent bootstraps without the DCS")
	}

	startEtcd(t, port)
	stopAllAtCleanup(t, a) // before etcd goes away, so that the agent can give up its keys
	st := waitCluster(t, n, []*agentProc{a}, "node1")
	if !strings.Contains(a.out.String(), logWon) {
		t.Errorf("the agent runs a primary without having won the initialize race")
	}
	if got := sysidOf(t, n); st.Initialize == nil || got != *st.Initialize {
		t.Errorf("initialize %v, the data directory's system identifier %s", st.Initialize, got)
	}
}

func TestAgentRestartAdoptsCluster(t *testing.T) {
	c := fileCluster(t)
	n1, n2 := c.member(t, "node1", ""), c.member(t, "node2", "")
	agents := startInTurn(t, n1, n2)
	a1, a2 := agents[0], agents[1]
	sysid := sysidOf(t, n2)
	if got := strings.Count(a2.out.String(), logCreating); got != 1 {
		t.Fatalf("node2 logged %q %d times on its first start, want 1", logCreating, got)
	}

	sigterm(t, a2)
	if code := exitCode(a2); code != 0 {
		t.Errorf("node2's agent exited with %d on SIGTERM, want 0", code)
	}
	if procs := pgProcessesIn(n2.dataDir); len(procs) > 0 {
		t.Errorf("PostgreSQL still runs in node2's data directory after its agent stopped: %q", procs)
	}
	if st, err := status(t, n1); err != nil {
		t.Fatal(err)
	} else if _, ok := st.member("node2"); ok {
		t.Errorf("node2 is still published after its agent stopped:\n%s", st)
	}

	again := n2.start(t)
	stopAllAtCleanup(t, again)
	st := waitCluster(t, n1, []*agentProc{a1, again}, "node1", "node2")
	log := again.out.String()
	if !strings.Contains(log, logStartExisting) {
		t.Errorf("the restarted node2 does not say it starts the existing cluster:\n%s", log)
	}
	for _, unwanted := range []string{logCreating, logWon, logRemoveHalf} {
		if strings.Contains(log, unwanted) {
			t.Errorf("the restarted node2 logged %q: it must adopt its cluster as it is", unwanted)
		}
	}
	m2, _ := st.member("node2")
	if m2.Role != "replica" {
		t.Errorf("the restarted node2 is %s, want replica", m2.Role)
	}
	if m2.PGImaged != nil && len(m2.PGImaged.Attempts) > 0 {
		t.Errorf("the restarted node2 publishes method attempts: %+v", m2.PGImaged.Attempts)
	}
	if got := sysidOf(t, n2); got != sysid {
		t.Errorf("node2's system identifier changed from %s to %s", sysid, got)
	}
	waitStreaming(t, n1, "node2")
}

// A member tagged clonefrom is the source of the next clones; a replica tagged replicatefrom
// streams from the member it names, the others from the leader; the cascade shows in status.
func TestAgentCascadingClone(t *testing.T) {
	c := fileCluster(t)
	n1 := c.member(t, "node1", "")
	n2 := c.member(t, "node2", "tags = { clonefrom = true }")
	n3 := c.member(t, "node3", "tags = { replicatefrom = \"node2\" }")
	n4 := c.member(t, "node4", "") // clones from node2 too, but streams from the leader
	agents := startInTurn(t, n1, n2, n3, n4)
	st := waitCluster(t, n1, agents, "node1", "node2", "node3", "node4")

	if m, _ := st.member("node2"); m.Tags["clonefrom"] != true {
		t.Errorf("node2 does not publish its clonefrom tag: %v", m.Tags)
	}
	if out := agents[2].out.String(); !strings.Contains(out, `source="node2 (`) {
		t.Errorf("node3 does not say it clones from node2:\n%s", out)
	}
	if out := agents[3].out.String(); !strings.Contains(out, `source="node2 (`) {
		t.Errorf("node4 does not say it clones from node2:\n%s", out)
	}
	// clonefrom chooses where the copy comes from; a replica streams from the leader unless
	// its replicatefrom tag names another member (Patroni's tags).
	waitStreaming(t, n2, "node3")
	waitStreaming(t, n1, "node2", "node4")

	// The cascade shows in status without psql: node3 streams from node2, node2 from node1.
	waitFor(t, guard, "status -json to name node2 as node3's upstream", agents, func() bool {
		return upstreamOf(t, n1, "node3") == "node2" && upstreamOf(t, n1, "node2") == "node1" && upstreamOf(t, n1, "node4") == "node1"
	})
	_, r := statusRow(t, n1, "node3")
	for member, want := range map[string]string{"node1": "", "node2": "node1", "node3": "node2", "node4": "node1"} {
		if got := statusCell(r.stdout, member, "UPSTREAM"); got != want {
			t.Errorf("UPSTREAM of %s is %q, want %q:\n%s", member, got, want, r.stdout)
		}
		if got := statusCell(r.stdout, member, "TL"); got != "1" {
			t.Errorf("TL of %s is %q, want 1:\n%s", member, got, r.stdout)
		}
	}
}

// planJSON is `pgimaged plan -json`.
type planJSON struct {
	Path    string `json:"path"`
	Reason  string `json:"reason"`
	Source  string `json:"source"`
	Methods []struct {
		Method   string `json:"method"`
		Plugin   string `json:"plugin"`
		Skipped  string `json:"skipped"`
		Error    string `json:"error"`
		Commands []struct {
			Argv []string          `json:"argv"`
			Env  map[string]string `json:"env"`
		} `json:"commands"`
	} `json:"methods"`
}

func plan(t *testing.T, n *node) (planJSON, result) {
	t.Helper()
	r := run(t, n.env, "plan", "-json", "-config", n.config)
	if r.code != 0 {
		t.Fatalf("plan failed: %s", r)
	}
	var p planJSON
	if err := json.Unmarshal([]byte(r.stdout), &p); err != nil {
		t.Fatalf("plan -json printed no JSON: %v\n%s", err, r)
	}
	for _, s := range n.secrets() {
		if strings.Contains(r.stdout, s) || strings.Contains(r.stderr, s) {
			t.Errorf("a password appears in the plan's output:\n%s", r)
		}
	}
	return p, r
}

func TestAgentPlan(t *testing.T) {
	c := fileCluster(t)
	n1, n2 := c.member(t, "node1", ""), c.member(t, "node2", "")

	t.Run("no DCS record", func(t *testing.T) {
		p, r := plan(t, n1)
		if p.Path != "bootstrap" || len(p.Methods) != 1 || p.Methods[0].Method != "initdb" {
			t.Errorf("plan on an empty DCS: %s", r)
		}
	})

	startInTurn(t, n1)

	t.Run("fresh node of a running cluster", func(t *testing.T) {
		p, r := plan(t, n2)
		if p.Path != "clone" || !strings.HasPrefix(p.Source, "node1 (") {
			t.Fatalf("plan: path %q, source %q, want clone from node1:\n%s", p.Path, p.Source, r)
		}
		if len(p.Methods) != 1 || p.Methods[0].Method != "basebackup" || len(p.Methods[0].Commands) != 1 {
			t.Fatalf("plan methods:\n%s", r)
		}
		cmd := p.Methods[0].Commands[0]
		dsn := fmt.Sprintf("host=127.0.0.1 port=%d user=replicator dbname=postgres", n1.port)
		want := []string{
			filepath.Join(testenv.PGBinDir(t), "pg_basebackup"),
			"--pgdata=" + n2.dataDir, "-X", "stream", "--dbname=" + dsn,
			"--checkpoint=fast", "--slot=node2", "--progress", // the slot node1 keeps for node2 (use_slots)
		}
		if syncfs.Supported() { // the plugin syncs the copy itself
			want = slices.Insert(want, len(want)-1, "--no-sync")
		}
		if !slices.Equal(cmd.Argv, want) {
			t.Errorf("pg_basebackup argv:\n got %q\nwant %q", cmd.Argv, want)
		}
		if strings.Contains(strings.Join(cmd.Argv, " "), "password") {
			t.Errorf("the planned command line carries a password: %q", cmd.Argv)
		}
		if v := cmd.Env["PGPASSFILE"]; v == "" || strings.Contains(v, n2.replPass) {
			t.Errorf("PGPASSFILE in the plan: %q", v)
		}
		if _, err := os.Stat(n2.dataDir); !os.IsNotExist(err) {
			t.Errorf("planning created the data directory (%v)", err)
		}
	})
}

func TestAgentStatus(t *testing.T) {
	c := fileCluster(t)
	debug := "log_level = \"debug\"\nlog_format = \"json\"\n"
	n1, n2 := c.member(t, "node1", debug), c.member(t, "node2", debug+"tags = { clonefrom = true }")
	launched1 := time.Now()
	a1 := n1.start(t)
	waitCluster(t, n1, []*agentProc{a1}, "node1")
	launched2 := time.Now()
	a2 := n2.start(t)
	stopAllAtCleanup(t, a1, a2)
	st := waitCluster(t, n1, []*agentProc{a1, a2}, "node1", "node2")

	// Each member publishes the timeline of its bootstrap or clone, completed by a write
	// right after the one that said it runs.
	waitFor(t, guard, "both members publishing their critical path", []*agentProc{a1, a2}, func() bool {
		s, err := status(t, n1)
		if err != nil {
			return false
		}
		m1, ok1 := s.member("node1")
		m2, ok2 := s.member("node2")
		if ok1 && ok2 && m1.PGImaged != nil && m2.PGImaged != nil && m1.PGImaged.CriticalPath.published() && m2.PGImaged.CriticalPath.published() {
			st = s
			return true
		}
		return false
	})
	m1, _ := st.member("node1")
	m2, _ := st.member("node2")
	checkCriticalPath(t, "node1", m1.PGImaged.CriticalPath, "bootstrap",
		[]string{"agent_start", "initialize", "plugin_launch", "method", "postgres_start", "accepting_connections", "roles", "checkpoint", "published"}, nil, launched1)
	// A failed attempt of a replica method adds its own plugin_launch and clone_method.
	checkCriticalPath(t, "node2", m2.PGImaged.CriticalPath, "clone",
		[]string{"agent_start", "leader_seen", "plugin_launch", "clone_method", "standby_start", "streaming", "published"},
		map[string]bool{"plugin_launch": true, "clone_method": true}, launched2)
	for _, m := range []struct {
		member, method string
		path           *criticalPath
	}{{"node1", "initdb", m1.PGImaged.CriticalPath}, {"node2", "basebackup", m2.PGImaged.CriticalPath}} {
		for _, p := range m.path.Phases {
			if slices.Contains([]string{"plugin_launch", "method", "clone_method"}, p.Name) && p.Method != m.method {
				t.Errorf("%s: phase %s names method %q, want %s", m.member, p.Name, p.Method, m.method)
			}
		}
	}
	if got := loggedPhases(a1.out.String()); len(got["method"]) != 1 || len(got["published"]) != 1 {
		t.Errorf("node1 logged phases %v, want one \"phase\" line at DEBUG for the method and for published", got)
	}
	if got := loggedPhases(a2.out.String()); !slices.Contains(got["clone_method"], "basebackup") || len(got["streaming"]) != 1 {
		t.Errorf("node2 logged phases %v, want a \"phase\" line at DEBUG for clone_method of basebackup and for streaming", got)
	}

	r := run(t, n2.env, "status", "-config", n2.config)
	if r.code != 0 {
		t.Fatalf("status failed: %s", r)
	}
	lines := strings.Split(r.stdout, "\n")
	if want := fmt.Sprintf("initialize: %s   leader: node1", *st.Initialize); !strings.Contains(lines[0], want) {
		t.Errorf("status headline %q does not contain %q", lines[0], want)
	}
	rows := map[string][]string{}
	for _, l := range lines {
		if f := strings.Fields(l); len(f) > 0 {
			rows[f[0]] = f
		}
	}
	cases := []struct {
		member string
		want   []string // leading columns: role..., state, address
	}{
		{"MEMBER", []string{"ROLE", "STATE", "ADDRESS"}},
		{"node1", []string{"primary", "(leader)", "running", fmt.Sprintf("127.0.0.1:%d/postgres", n1.port)}},
		{"node2", []string{"replica", "running", fmt.Sprintf("127.0.0.1:%d/postgres", n2.port)}},
	}
	for _, tc := range cases {
		row := rows[tc.member]
		if len(row) < 1+len(tc.want) || !slices.Equal(row[1:1+len(tc.want)], tc.want) {
			t.Errorf("status row of %s: %q, want it to start with %q\n%s", tc.member, row, tc.want, r.stdout)
		}
	}
	if row := rows["node2"]; !slices.Contains(row, "clonefrom=true") {
		t.Errorf("node2's row does not show its tag: %q", row)
	}
	for _, s := range n1.secrets() {
		if strings.Contains(r.stdout+r.stderr, s) {
			t.Errorf("a password appears in the status output")
		}
	}
}

func TestAgentSIGTERMStopsPrimary(t *testing.T) {
	onEachBackend(t, func(t *testing.T, b backend) {
		c := b.cluster(t, "stop")
		n := c.member(t, "node1", "")
		a := n.start(t)
		st := waitCluster(t, n, []*agentProc{a}, "node1")
		sysid := *st.Initialize

		sigterm(t, a)
		if code := exitCode(a); code != 0 {
			t.Errorf("the agent exited with %d on SIGTERM, want 0:\n%s", code, a.out.String())
		}
		if procs := pgProcessesIn(n.dataDir); len(procs) > 0 {
			t.Errorf("PostgreSQL still runs after its agent stopped: %q", procs)
		}
		if _, err := os.Stat(filepath.Join(n.dataDir, "postmaster.pid")); !os.IsNotExist(err) {
			t.Errorf("postmaster.pid is still there (%v)", err)
		}
		st, err := status(t, n)
		if err != nil {
			t.Fatal(err)
		}
		if st.Leader != "" || len(st.Members) != 0 {
			t.Errorf("the stopped primary still holds the leader key or its member key:\n%s", st)
		}
		if st.Initialize == nil || *st.Initialize != sysid {
			t.Errorf("initialize changed from %s when the primary stopped:\n%s", sysid, st)
		}
	})
}
