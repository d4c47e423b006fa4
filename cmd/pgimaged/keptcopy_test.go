package main_test

import (
	"fmt"
	"net"
	"strings"
	"testing"
)

// A replica whose port another program holds: the copy pg_basebackup made is complete, so it is
// kept and only its start is tried again (with backoff), instead of copying the cluster again
// each cycle. Status shows PostgreSQL's reason, the history keeps the one copy as a failure, and
// once the port is free the replica starts from the kept copy and streams.
func TestReplicaKeepsCopyWhenPortTaken(t *testing.T) {
	n1, _, taken, agents := replicaWithPortTaken(t)
	a2 := agents[1]

	copies := func() (n int, failed int) {
		h, _ := history(t, n1, "node2")
		for _, a := range h {
			if a.Method == "basebackup" {
				n++
				if !a.OK {
					failed++
				}
			}
		}
		return n, failed
	}
	const cause = "Address already in use"
	waitFor(t, guard, "node2 to publish why its PostgreSQL did not start", agents, func() bool {
		st, err := status(t, n1)
		m, ok := st.member("node2")
		return err == nil && ok && m.PGImaged != nil && strings.Contains(m.PGImaged.LastError, cause)
	})
	waitFor(t, guard, "node2 to try the start of its kept copy again", agents, func() bool {
		if n, _ := copies(); n > 1 {
			_, r := history(t, n1, "node2")
			t.Fatalf("a second copy ran while the first, complete, could not start:\n%s", r)
		}
		return strings.Count(a2.out.String(), "starting PostgreSQL failed") >= 3
	})
	if n, failed := copies(); n != 1 || failed != 1 {
		_, r := history(t, n1, "node2")
		t.Errorf("node2's history: want the one copy, recorded as failed:\n%s", r)
	}
	row, r := statusRow(t, n1, "node2")
	if line := strings.Join(row, " "); !strings.Contains(line, cause) {
		t.Errorf("node2's status row does not show PostgreSQL's reason %q:\n%s", cause, r.stdout)
	}

	taken.Close()
	waitCluster(t, n1, agents, "node1", "node2")
	waitStreaming(t, n1, "node2")
	if n, _ := copies(); n != 1 {
		_, r := history(t, n1, "node2")
		t.Errorf("node2 copied the cluster again instead of starting the kept copy:\n%s", r)
	}
}

// replicaWithPortTaken starts the agents of node1, the primary, and node2, whose port another
// program holds: a listener the test may close to free it (closed at the end in any case).
func replicaWithPortTaken(t *testing.T) (n1, n2 *node, taken net.Listener, agents []*agentProc) {
	t.Helper()
	c := fileCluster(t)
	n1, n2 = c.member(t, "node1", ""), c.member(t, "node2", "")
	taken, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", n2.port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = taken.Close() })
	a1 := startInTurn(t, n1)[0]
	a2 := n2.start(t)
	stopAllAtCleanup(t, a2)
	return n1, n2, taken, []*agentProc{a1, a2}
}
