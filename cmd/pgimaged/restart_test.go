package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// postmasterStart is when n's PostgreSQL started (pg_postmaster_start_time()).
func postmasterStart(t *testing.T, n *node) string {
	t.Helper()
	conn := connectTCP(t, n.port, "postgres", n.superPass, "postgres")
	defer conn.Close(context.Background())
	return queryString(t, conn, "SELECT pg_postmaster_start_time()::text")
}

// leaderRevision is the etcd create revision of scope's leader key: it changes whenever the key
// is given up and taken again.
func leaderRevision(t *testing.T, endpoint, scope string) int64 {
	t.Helper()
	out, err := exec.Command("etcdctl", "--endpoints="+endpoint, "get", "/service/"+scope+"/leader", "-w", "json").Output()
	if err != nil {
		t.Fatalf("etcdctl get the leader key: %v", err)
	}
	var resp struct {
		Kvs []struct {
			CreateRevision int64 `json:"create_revision"`
		} `json:"kvs"`
	}
	if err := json.Unmarshal(out, &resp); err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("etcdctl get the leader key: %v\n%s", err, out)
	}
	return resp.Kvs[0].CreateRevision
}

// TestRestart: `pgimaged restart` restarts PostgreSQL through the agents. One replica alone;
// then, after a setting that needs a restart changed on the primary, --pending restarts the
// primary only, which keeps its leader key (the same etcd key, never given up) and serves
// again with the new setting; refusals for an unknown member, a member mid-clone and without
// --yes on no terminal. On the file DCS and on etcd.
func TestRestart(t *testing.T) {
	onEachBackend(t, func(t *testing.T, b backend) {
		scope := "restart-" + randomHex(t)[:8]
		c := b.cluster(t, scope)
		n1, n2 := c.member(t, "node1", ""), c.member(t, "node2", "")
		agents := startInTurn(t, n1, n2)
		waitStreaming(t, n1, "node2")
		execOn(t, n1, "CREATE TABLE t (id int); INSERT INTO t VALUES (1)")

		for _, tc := range []struct {
			name string
			args []string
			code int
			want string
		}{
			{"an unknown member", []string{"--member", "nosuch", "--yes"}, 4, "knows no member nosuch"},
			{"without --yes and without a terminal", []string{"--member", "node2"}, 2, "--yes"},
			{"a role that is none", []string{"--role", "boss", "--yes"}, 2, "not a role"},
		} {
			r := run(t, n1.env, append([]string{"restart", "-config", n1.config}, tc.args...)...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("restart, %s: want exit %d saying %q:\n%s", tc.name, tc.code, tc.want, r)
			}
		}

		start1, start2 := postmasterStart(t, n1), postmasterStart(t, n2)
		r := run(t, n2.env, "restart", "-config", n2.config, "--member", "node2", "--yes")
		if r.code != 0 || !strings.Contains(r.stdout, "member node2: restarted successfully") {
			t.Fatalf("restart --member node2: %s\nagent:\n%s", r, agents[1].out.String())
		}
		if got := postmasterStart(t, n2); got == start2 {
			t.Errorf("node2's PostgreSQL still runs since %s: not restarted", got)
		}
		if got := postmasterStart(t, n1); got != start1 {
			t.Errorf("node1's PostgreSQL restarted (%s, was %s) by a restart of node2", got, start1)
		}
		waitStreaming(t, n1, "node2")

		// A setting that needs a restart, changed on the primary alone.
		execOn(t, n1, "ALTER SYSTEM SET shared_buffers = '24MB'")
		execOn(t, n1, "SELECT pg_reload_conf()")
		waitFor(t, guard, "node1 to publish pending_restart", agents, func() bool {
			st, err := status(t, n1)
			m, _ := st.member("node1")
			return err == nil && m.PendingRestart
		})
		var rev int64
		if b.kind == "etcd" {
			rev = leaderRevision(t, b.endpoint, scope)
		}
		start1, start2 = postmasterStart(t, n1), postmasterStart(t, n2)
		r = run(t, n2.env, "restart", "-config", n2.config, "--pending", "--yes")
		if r.code != 0 || !strings.Contains(r.stdout, "member node1: restarted successfully") ||
			!strings.Contains(r.stdout, "member node2: not restarted: no setting is pending a restart") {
			t.Fatalf("restart --pending: %s\nagent:\n%s", r, agents[0].out.String())
		}
		if got := postmasterStart(t, n1); got == start1 {
			t.Errorf("node1's PostgreSQL still runs since %s: not restarted", got)
		}
		if got := postmasterStart(t, n2); got != start2 {
			t.Errorf("node2's PostgreSQL restarted by restart --pending, with nothing pending on it")
		}
		conn := connectTCP(t, n1.port, "postgres", n1.superPass, "postgres")
		if got := queryString(t, conn, "SHOW shared_buffers"); got != "24MB" {
			t.Errorf("shared_buffers after the restart: %s, want 24MB", got)
		}
		_ = conn.Close(context.Background())
		st := waitLeader(t, n1, agents, "node1", "node2")
		if len(st.History) != 0 {
			t.Errorf("a restart recorded a change of primary: %v", st.History)
		}
		if m, _ := st.member("node1"); m.PendingRestart {
			t.Errorf("node1 still publishes pending_restart after its restart")
		}
		if b.kind == "etcd" {
			if got := leaderRevision(t, b.endpoint, scope); got != rev {
				t.Errorf("the leader key was given up and taken again during the restart (create revision %d, was %d)", got, rev)
			}
		}
		if log := agents[0].out.String(); !strings.Contains(log, "restarting PostgreSQL as asked") {
			t.Errorf("node1's agent does not say it restarted PostgreSQL:\n%s", log)
		}
		execOn(t, n1, "INSERT INTO t VALUES (2)")
		waitRows(t, n2, 2)

		if b.kind != "file" {
			return
		}
		// A member mid-clone: its replica method sleeps.
		script := writeFile(t, c.work, "slow_clone.sh", "#!/bin/sh\ni=0\nwhile [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done\nexit 1\n", 0o755)
		n3 := c.memberWith(t, "node3", fmt.Sprintf("method \"slow\" {\n  command = %q\n}", script), `create_replica_methods = ["slow"]`)
		a3 := n3.start(t)
		waitFor(t, guard, "node3 mid-clone", append(agents, a3), func() bool {
			st, err := status(t, n1)
			m, _ := st.member("node3")
			return err == nil && m.State == "creating replica"
		})
		r = run(t, n1.env, "restart", "-config", n1.config, "--member", "node3", "--yes")
		if r.code != 4 || !strings.Contains(r.stderr, "node3 is creating replica") {
			t.Errorf("restart of a member mid-clone: want exit 4 saying it is creating a replica:\n%s", r)
		}
		r = run(t, n1.env, "restart", "-config", n1.config, "--yes")
		if r.code != 4 || !strings.Contains(r.stderr, "nothing was restarted") {
			t.Errorf("restart of every member while one is mid-clone: want exit 4:\n%s", r)
		}
		if strings.Contains(r.stdout, "restarted") {
			t.Errorf("a refused restart restarted a member:\n%s", r)
		}
		a3.terminate(t)
		// With node3's agent gone its member key goes: refused, whether the DCS still knows it
		// by its history of attempts (its agent does not run) or not at all.
		eventually(t, time.Minute, "node3's member key to go", func() bool {
			st, err := status(t, n1)
			_, ok := st.member("node3")
			return err == nil && !ok
		})
		r = run(t, n1.env, "restart", "-config", n1.config, "--member", "node3", "--yes")
		if r.code != 4 || !strings.Contains(r.stderr, "agent of member node3 does not run") && !strings.Contains(r.stderr, "knows no member node3") {
			t.Errorf("restart of a member whose agent is down: want exit 4:\n%s", r)
		}
	})
}
