package main_test

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pgimaged/pgimaged/internal/pgtest"
	"github.com/pgimaged/pgimaged/internal/testenv"
)

// patroniRunning is a member of a Patroni cluster on etcd's v3 API, as the migration in
// docs/operations.md starts from.
const patroniRunning = `scope: %[1]s
namespace: /service/
name: %[2]s
restapi:
  listen: 127.0.0.1:%[3]d
  connect_address: 127.0.0.1:%[3]d
etcd3:
  hosts: %[4]s
bootstrap:
  dcs:
    ttl: 20
    loop_wait: 1
    retry_timeout: 5
    maximum_lag_on_failover: 2097152
    postgresql:
      use_pg_rewind: true
      parameters:
        fsync: off
        shared_buffers: 16MB
        max_connections: 30
        wal_log_hints: on
  initdb:
  - encoding: UTF8
  - locale: C
postgresql:
  listen: 127.0.0.1:%[5]d
  connect_address: 127.0.0.1:%[5]d
  data_dir: %[6]s
  bin_dir: %[7]s
  pgpass: %[8]s
  authentication:
    superuser:
      username: postgres
      password: %[9]s
    replication:
      username: replicator
      password: %[10]s
  parameters:
    unix_socket_directories: %[11]s
  pg_hba:
  - local all all trust
  - host all all 127.0.0.1/32 scram-sha-256
  - host replication replicator 127.0.0.1/32 scram-sha-256
  basebackup:
  - checkpoint: fast
`

// patroniProc is one running patroni.
type patroniProc struct {
	cmd  *exec.Cmd
	log  string // its output, in a file: the PostgreSQL it starts inherits it and outlives it
	done chan struct{}
}

// startPatroni runs patroni with the configuration cfg; it is killed when the test ends if it
// still runs.
func startPatroni(t *testing.T, bin, cfg string) *patroniProc {
	t.Helper()
	cmd := exec.Command(bin, cfg)
	cmd.Env = append(os.Environ(), "HOME="+filepath.Dir(cfg))
	p := &patroniProc{cmd: cmd, log: strings.TrimSuffix(cfg, ".yml") + ".log", done: make(chan struct{})}
	f, err := os.Create(p.log)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting patroni: %v", err)
	}
	go func() { _ = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
		if t.Failed() {
			t.Logf("patroni %s output:\n%s", cfg, p.output())
		}
	})
	return p
}

// stop stops patroni as systemctl stop does (SIGTERM) and waits until it has exited.
func (p *patroniProc) stop(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(2 * time.Minute):
		t.Fatalf("patroni did not exit within two minutes of SIGTERM:\n%s", p.output())
	}
}

func (p *patroniProc) output() string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}

// TestMigrateFromPatroni runs docs/operations.md's move from Patroni with Patroni itself: a
// running two-member Patroni cluster on etcd holding rows is paused and Patroni stopped
// (PostgreSQL keeps running), each member's patroni.yml is converted by `pgimaged import
// patroni`, pgimaged is started on every member and `pgimaged failover --candidate` gives the
// running primary the leader key. The replica follows it, every row is kept and a row written
// after the move reaches the replica.
func TestMigrateFromPatroni(t *testing.T) {
	e := startEtcd(t, 0)
	scope := "migrate-" + randomHex(t)[:8]
	nodes, ymls, procs := startPatroniPair(t, scope, e.endpoint)
	n1, n2 := nodes[0], nodes[1]
	execOn(t, n1, "CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 100)")
	waitRows(t, n2, 100)

	// Patroni paused, then stopped: PostgreSQL keeps running on every member.
	if r := patronictl(t, ymls[0], "pause", "--wait"); r.code != 0 {
		t.Fatalf("patronictl pause: %s", r)
	}
	for _, p := range procs {
		p.stop(t)
	}
	if got := primariesAmong(t, n1, n2); len(got) != 1 || got[0] != n1.port {
		t.Fatalf("after Patroni stopped, primaries on ports %v, want node1's %d only", got, n1.port)
	}

	for i, n := range nodes {
		r := run(t, n.env, "import", "patroni", ymls[i], "-o", n.config, "--secrets=env")
		if r.code != 0 {
			t.Fatalf("import %s: %s", ymls[i], r)
		}
		hcl, _ := os.ReadFile(n.config)
		if r := run(t, n.env, "validate", "-config", n.config); r.code != 0 {
			t.Fatalf("the imported configuration of %s does not validate: %s\n%s", n.name, r, hcl)
		}
		for _, s := range []string{"maximum_lag_on_failover = 2097152", `rejoin_methods = ["rewind"]`} {
			if !strings.Contains(string(hcl), s) {
				t.Errorf("the import of %s does not say %s:\n%s", n.name, s, hcl)
			}
		}
	}
	// Patroni's leader key, which names node1, lives until its ttl runs out; node1's agent
	// started before then takes it over as its own. Started after, as here, it waits for
	// `pgimaged failover`.
	eventually(t, guard, "Patroni's leader key to expire", func() bool {
		st, err := status(t, n1)
		return err == nil && st.Leader == ""
	})
	agents := []*agentProc{n1.start(t), n2.start(t)}
	stopAllAtCleanup(t, agents...)
	waitFor(t, guard, "node1 published as a running primary", agents, func() bool {
		st, err := status(t, n1)
		m, ok := st.member("node1")
		return err == nil && ok && m.State == "running" && m.Role == "primary"
	})
	if st, _ := status(t, n1); st.Leader != "" {
		t.Fatalf("a member took the leader key before the failover:\n%s", st)
	}
	if r := run(t, n1.env, "failover", "-config", n1.config, "--candidate", "node1", "--yes"); r.code != 0 {
		t.Fatalf("failover --candidate node1: %s\n%s", r, agents[0].out.String())
	}
	waitLeader(t, n1, agents, "node1", "node2")
	waitStreaming(t, n1, "node2")
	execOn(t, n1, "INSERT INTO t VALUES (101)")
	waitRows(t, n2, 101)
	waitRows(t, n1, 101)
	if got := primariesAmong(t, n1, n2); len(got) != 1 || got[0] != n1.port {
		t.Errorf("primaries on ports %v, want node1's %d only", got, n1.port)
	}
	for _, a := range agents {
		if log := a.out.String(); strings.Contains(log, "fenced") || strings.Contains(log, "creating replica") {
			t.Errorf("a member was fenced or re-cloned in the move:\n%s", log)
		}
	}
}

// startPatroniPair starts a Patroni cluster of two members, node1 and node2, on the etcd at
// endpoint under scope (namespace /service/), each with its own PostgreSQL and REST API port:
// node1 leads, node2 runs as its replica. It returns the members (their passwords, and a
// pgimaged configuration path and environment for an import), their patroni.yml and their
// patroni processes.
func startPatroniPair(t *testing.T, scope, endpoint string) ([]*node, []string, []*patroniProc) {
	t.Helper()
	patroni := testenv.LookPath(t, "patroni")
	work := workDir(t)
	superPass, replPass := "Sup3r-"+randomHex(t), "R3pl-"+randomHex(t)
	var nodes []*node
	var ymls, rest []string
	for _, name := range []string{"node1", "node2"} {
		dir := filepath.Join(work, name)
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		port, api := pgtest.FreePort(t), pgtest.FreePort(t)
		n := &node{name: name, dir: dir, dataDir: filepath.Join(dir, "data"), port: port, superPass: superPass, replPass: replPass,
			config: filepath.Join(dir, "pgimaged.hcl"),
			env:    []string{"PGIMAGED_SUPERUSER_PASSWORD=" + superPass, "PGIMAGED_REPLICATION_PASSWORD=" + replPass}}
		stopServerAtCleanup(t, n.dataDir)
		yml := writeFile(t, dir, "patroni.yml", fmt.Sprintf(patroniRunning, scope, name, api, endpoint, port,
			yamlQuote(n.dataDir), yamlQuote(testenv.PGBinDir(t)), yamlQuote(filepath.Join(dir, "pgpass")),
			yamlQuote(superPass), yamlQuote(replPass), yamlQuote(dir)), 0o600)
		nodes, ymls, rest = append(nodes, n), append(ymls, yml), append(rest, fmt.Sprintf("http://127.0.0.1:%d", api))
	}
	procs := []*patroniProc{startPatroni(t, patroni, ymls[0])}
	eventually(t, guard, "Patroni's node1 to lead", func() bool { return httpStatus(rest[0]+"/primary") == http.StatusOK })
	procs = append(procs, startPatroni(t, patroni, ymls[1]))
	eventually(t, guard, "Patroni's node2 to run as a replica", func() bool { return httpStatus(rest[1]+"/replica") == http.StatusOK })
	return nodes, ymls, procs
}

// yamlQuote quotes s for YAML: a JSON string is a YAML string.
func yamlQuote(s string) string { return fmt.Sprintf("%q", s) }
