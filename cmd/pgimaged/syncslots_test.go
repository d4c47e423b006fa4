package main_test

import (
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pgimaged/pgimaged/core/dcs"
	"github.com/pgimaged/pgimaged/internal/testenv"
)

// syncKey reads Patroni's sync key of c from b, as stored: {"leader", "sync_standby"}; on etcd
// with etcdctl at Patroni's path, on the file DCS as the store reads it.
func syncKey(t *testing.T, b backend, c *agentCluster) (leader, standby string) {
	t.Helper()
	var out []byte
	if b.kind == "etcd" {
		var err error
		out, err = exec.Command(testenv.LookPath(t, "etcdctl"), "--endpoints="+b.endpoint,
			"get", "--print-value-only", "/service/"+c.scope+"/sync").CombinedOutput()
		if err != nil {
			t.Fatalf("etcdctl: %v\n%s", err, out)
		}
	} else {
		st, err := dcs.OpenFile(t.Context(), dcs.FileConfig{Path: filepath.Join(c.work, "dcs")}, c.scope, nil)
		if err != nil {
			t.Fatal(err)
		}
		out, _, err = st.Get(t.Context(), dcs.SyncKey)
		_ = st.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	var v struct {
		Leader      string  `json:"leader"`
		SyncStandby *string `json:"sync_standby"`
	}
	if len(strings.TrimSpace(string(out))) == 0 {
		return "", ""
	}
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("the sync key is not Patroni's JSON: %v\n%s", err, out)
	}
	if v.SyncStandby != nil {
		standby = *v.SyncStandby
	}
	return v.Leader, standby
}

// slotsOn lists the physical replication slots of n's PostgreSQL.
func slotsOn(t *testing.T, n *node) []string {
	t.Helper()
	conn := connectTCP(t, n.port, "postgres", n.superPass, "postgres")
	defer conn.Close(context.Background())
	rows, err := conn.Query(t.Context(), "SELECT slot_name FROM pg_replication_slots WHERE slot_type = 'physical' ORDER BY 1")
	if err != nil {
		t.Fatalf("reading pg_replication_slots on port %d: %v", n.port, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

// waitSync waits until the sync key names leader and standby, and leader's PostgreSQL
// names standby in synchronous_standby_names and reports it synchronous.
func waitSync(t *testing.T, b backend, c *agentCluster, agents []*agentProc, leader *node, standby string) {
	t.Helper()
	waitFor(t, guard, "the sync key naming "+standby+" as "+leader.name+"'s synchronous standby", agents, func() bool {
		l, s := syncKey(t, b, c)
		return l == leader.name && s == standby
	})
	conn := connectTCP(t, leader.port, "postgres", leader.superPass, "postgres")
	defer conn.Close(context.Background())
	if got := queryString(t, conn, "SHOW synchronous_standby_names"); got != `"`+standby+`"` {
		t.Errorf("synchronous_standby_names on %s = %s, want %q", leader.name, got, standby)
	}
	if got := queryString(t, conn, "SELECT sync_state FROM pg_stat_replication WHERE application_name = $1", standby); got != "sync" {
		t.Errorf("pg_stat_replication on %s says %s is %q, want sync", leader.name, standby, got)
	}
}

// TestSynchronousModeAndSlots: three members in synchronous mode, node3 tagged nosync, on etcd
// and on the file DCS.
// node1 replicates synchronously to node2 (synchronous_standby_names, the sync key, a commit
// waits for it) and keeps a slot for each replica; a replica stopped while more WAL than
// wal_keep_size keeps is written streams again without a reinit; a switchover to the
// asynchronous member is refused, one to node2 moves the slots to it; after node2's host is
// lost, a failover to node3 is refused and one to the synchronous standby, node1, keeps every
// acknowledged row.
func TestSynchronousModeAndSlots(t *testing.T) {
	onEachBackend(t, func(t *testing.T, b backend) { synchronousModeAndSlots(t, b) })
}

func synchronousModeAndSlots(t *testing.T, b backend) {
	c := b.cluster(t, "sync-"+b.kind)
	const mode = "synchronous_mode = true\n"
	n1, n2 := c.member(t, "node1", mode), c.member(t, "node2", mode)
	n3 := c.member(t, "node3", mode+"tags = { nosync = true }\n")
	agents := startInTurn(t, n1, n2, n3)
	execOn(t, n1, "ALTER SYSTEM SET wal_keep_size = 0")
	execOn(t, n1, "SELECT pg_reload_conf()")
	execOn(t, n1, "CREATE TABLE t (id int)")
	waitStreaming(t, n1, "node2", "node3")

	// Synchronous replication to node2, never to the nosync node3.
	waitSync(t, b, c, agents, n1, "node2")
	conn := connectTCP(t, n1.port, "postgres", n1.superPass, "postgres")
	for _, sql := range []string{"SET synchronous_commit = remote_apply", "INSERT INTO t VALUES (1)"} {
		if _, err := conn.Exec(t.Context(), sql); err != nil {
			t.Fatal(err)
		}
	}
	_ = conn.Close(context.Background())
	c2 := connectTCP(t, n2.port, "postgres", n2.superPass, "postgres")
	if got := queryString(t, c2, "SELECT count(*)::text FROM t WHERE id = 1"); got != "1" {
		t.Errorf("the acknowledged row is not on the synchronous standby node2 (count %s)", got)
	}
	_ = c2.Close(context.Background())

	// A slot on the primary for each replica; each replica streams through its own.
	waitFor(t, guard, "slots node2 and node3 on node1", agents, func() bool {
		return slices.Equal(slotsOn(t, n1), []string{"node2", "node3"})
	})
	c1 := connectTCP(t, n1.port, "postgres", n1.superPass, "postgres")
	if got := queryString(t, c1, "SELECT string_agg(slot_name, ',' ORDER BY slot_name) FROM pg_replication_slots WHERE active"); got != "node2,node3" {
		t.Errorf("slots in use on node1: %s, want node2,node3", got)
	}

	// node3 stopped while node1 writes and recycles more WAL than wal_keep_size (0) keeps.
	sigterm(t, agents[2])
	for i := range 6 {
		execOn(t, n1, "INSERT INTO t SELECT generate_series(1, 20000)")
		execOn(t, n1, "SELECT pg_switch_wal()")
		if i%2 == 1 {
			execOn(t, n1, "CHECKPOINT")
		}
	}
	if got := queryString(t, c1, "SELECT count(*)::text FROM pg_replication_slots WHERE slot_name = 'node3' AND NOT active AND restart_lsn IS NOT NULL"); got != "1" {
		t.Fatalf("node1 dropped or released node3's slot while node3 was stopped")
	}
	_ = c1.Close(context.Background())
	agents[2] = n3.start(t)
	stopAllAtCleanup(t, agents[2])
	waitStreaming(t, n1, "node2", "node3")
	waitRows(t, n3, 120_001)
	if log := agents[2].out.String(); strings.Contains(log, "needs reinit") || strings.Contains(log, "rejoin") {
		t.Errorf("node3 needed more than its slot to catch up:\n%s", log)
	}

	// In synchronous mode only the synchronous standby takes over.
	if r := run(t, n1.env, "switchover", "-config", n1.config, "--candidate", "node3", "--yes"); r.code != 4 || !strings.Contains(r.stderr, "not a synchronous standby") {
		t.Errorf("switchover to the asynchronous node3: %s, want exit 4 saying it is not synchronous", r)
	}
	if r := run(t, n1.env, "switchover", "-config", n1.config, "--candidate", "node2", "--yes"); r.code != 0 {
		t.Fatalf("switchover to node2: %s", r)
	}
	waitLeader(t, n2, agents, "node2", "node1", "node3")
	waitStreaming(t, n2, "node1", "node3")
	// The slots moved: node2 keeps node1's and node3's, node1 none.
	waitFor(t, guard, "slots node1 and node3 on node2, none on node1", agents, func() bool {
		return slices.Equal(slotsOn(t, n2), []string{"node1", "node3"}) && len(slotsOn(t, n1)) == 0
	})
	waitSync(t, b, c, agents, n2, "node1")
	conn = connectTCP(t, n2.port, "postgres", n2.superPass, "postgres")
	if _, err := conn.Exec(t.Context(), "INSERT INTO t VALUES (2)"); err != nil { // acknowledged once node1 has it
		t.Fatal(err)
	}
	_ = conn.Close(context.Background())

	loseHost(t, agents[1], n2, n1)
	r := run(t, n1.env, "failover", "-config", n1.config, "--candidate", "node3", "--yes")
	if r.code != 4 || !strings.Contains(r.stderr, "member node3 is not a synchronous standby (the sync key names: node1)") {
		t.Errorf("failover to the asynchronous node3: %s, want exit 4 naming the synchronous standby", r)
	}
	if r := run(t, n1.env, "failover", "-config", n1.config, "--candidate", "node1", "--yes"); r.code != 0 {
		t.Fatalf("failover to the synchronous standby node1: %s", r)
	}
	waitFor(t, guard, "node1 leading", agents, func() bool {
		st, err := status(t, n1)
		return err == nil && st.Leader == "node1"
	})
	waitRows(t, n1, 120_002)
}
