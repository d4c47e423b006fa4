package main_test

import (
	"fmt"
	"strings"
	"syscall"
	"testing"

	"github.com/pgimaged/pgimaged/internal/pgtest"
)

// TestFailsafeMode: with failsafe_mode, a frozen etcd (SIGSTOP) does not cut writes: once the
// primary's session is lost, /primary keeps answering 200 because the replica accepts it over
// POST /failsafe, and the primary takes writes. With the replica's agent frozen too, it cannot
// answer: /primary turns 503, as without failsafe_mode, and the replica is still a standby (one
// writable primary only). Once both thaw, the cluster is whole again with every row.
func TestFailsafeMode(t *testing.T) {
	e := startEtcd(t, 0)
	c := backend{kind: "etcd", endpoint: e.endpoint}.cluster(t, "failsafe-"+randomHex(t)[:8])
	api1, api2 := pgtest.FreePort(t), pgtest.FreePort(t)
	block := func(port int) string {
		return fmt.Sprintf("failsafe_mode = true\napi {\n  listen = \"127.0.0.1:%d\"\n  username = \"ops\"\n  password = \"s3cret-api\"\n}", port)
	}
	n1, n2 := c.member(t, "node1", block(api1)), c.member(t, "node2", block(api2))
	agents := startInTurn(t, n1, n2)
	waitStreaming(t, n1, "node2")
	base1 := fmt.Sprintf("http://127.0.0.1:%d", api1)
	waitFor(t, guard, "node1's /primary to answer 200", agents, func() bool { return httpStatus(base1+"/primary") == 200 })
	execOn(t, n1, "CREATE TABLE t (id int); INSERT INTO t VALUES (1)")

	// Thawed before the agents stop at the end (cleanups run last first).
	frozen := map[int]bool{}
	freeze := func(pid int, on bool) {
		sig := syscall.SIGCONT
		if on {
			sig = syscall.SIGSTOP
		}
		if err := syscall.Kill(pid, sig); err != nil {
			t.Fatalf("kill %d %v: %v", pid, sig, err)
		}
		frozen[pid] = on
	}
	t.Cleanup(func() {
		for pid, on := range frozen {
			if on {
				_ = syscall.Kill(pid, syscall.SIGCONT)
			}
		}
	})

	freeze(-e.pgid, true)
	waitFor(t, guard, "node1's session to be lost and failsafe mode to keep it the primary", agents, func() bool {
		log := agents[0].out.String()
		return strings.Contains(log, "session lost") &&
			strings.Contains(log, "failsafe mode: the DCS cannot be reached but every member accepts this primary")
	})
	if got := httpStatus(base1 + "/primary"); got != 200 {
		t.Errorf("/primary on node1 in failsafe mode: %d, want 200\n%s", got, agents[0].out.String())
	}
	var body map[string]any
	getJSON(t, base1+"/patroni", &body)
	if body["failsafe_mode_is_active"] != true {
		t.Errorf("GET /patroni on node1 in failsafe mode: %v, want failsafe_mode_is_active", body)
	}
	execOn(t, n1, "INSERT INTO t VALUES (2)")

	freeze(agents[1].cmd.Process.Pid, true)
	waitFor(t, guard, "node1's /primary to answer 503 once node2 cannot answer", agents, func() bool {
		return httpStatus(base1+"/primary") == 503
	})
	if log := agents[0].out.String(); !strings.Contains(log, "not every member accepts this primary") || !strings.Contains(log, "node2") {
		t.Errorf("node1's agent does not say which member did not accept it:\n%s", log)
	}
	if inRecovery, ok := recoveryVia(n2.port, n2.superPass); !ok || !inRecovery {
		t.Errorf("node2 is not a standby while etcd is frozen (in recovery %v, reached %v)", inRecovery, ok)
	}

	freeze(agents[1].cmd.Process.Pid, false)
	freeze(-e.pgid, false)
	waitLeader(t, n1, agents, "node1", "node2")
	waitFor(t, guard, "node1's /primary to answer 200 again", agents, func() bool { return httpStatus(base1+"/primary") == 200 })
	execOn(t, n1, "INSERT INTO t VALUES (3)")
	waitRows(t, n2, 3)
}
