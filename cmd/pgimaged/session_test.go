package main_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestAgentRecoversLostSession takes the DCS session away from a running primary's agent (its
// session lock file is removed, as when the DCS directory is cleaned under it): the agent must
// notice, open a new session and take its keys back, without touching PostgreSQL.
func TestAgentRecoversLostSession(t *testing.T) {
	c := fileCluster(t)
	n1 := c.member(t, "node1", "")
	a1 := startInTurn(t, n1)[0]
	sysid := sysidOf(t, n1)

	sessions, err := filepath.Glob(filepath.Join(c.work, "dcs", "service", c.scope, ".sessions", "*"))
	if err != nil || len(sessions) == 0 {
		t.Fatalf("no session files to remove: %v %v", sessions, err)
	}
	for _, s := range sessions {
		if err := os.Remove(s); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, time.Minute, "the agent notices the lost session", func() bool {
		return strings.Contains(a1.out.String(), "DCS session lost; opening a new one")
	})
	eventually(t, time.Minute, "node1 holds the leader key and is published again", func() bool {
		st, err := status(t, n1)
		if err != nil {
			return false
		}
		m, ok := st.member("node1")
		return ok && st.Leader == "node1" && m.State == "running"
	})
	if got := sysidOf(t, n1); got != sysid {
		t.Errorf("system identifier changed from %s to %s", sysid, got)
	}
	if strings.Count(a1.out.String(), "starting the existing cluster") > 0 {
		t.Errorf("PostgreSQL was restarted although it kept running")
	}
	// One notice per loss, not a busy loop of them.
	time.Sleep(3 * time.Second)
	if n := strings.Count(a1.out.String(), "DCS session lost"); n > 3 {
		t.Errorf("the agent reported the lost session %d times", n)
	}
}

// TestAgentWaitingRecoversLostSession: a member that only waits (no source to clone from) writes
// nothing but its member key; losing its session must still lead to a new one, not to a loop
// that keeps failing to publish.
func TestAgentWaitingRecoversLostSession(t *testing.T) {
	c := fileCluster(t)
	n1, n2 := c.member(t, "node1", ""), c.member(t, "node2", "")
	a1 := startInTurn(t, n1)[0]
	sigterm(t, a1) // the cluster exists, but no member runs: node2 can only wait

	a2 := n2.start(t)
	stopAllAtCleanup(t, a2)
	eventually(t, time.Minute, "node2 waits for a source", func() bool {
		st, err := status(t, n2)
		if err != nil {
			return false
		}
		m, ok := st.member("node2")
		return ok && m.State == "waiting for a clone source"
	})
	sessions, _ := filepath.Glob(filepath.Join(c.work, "dcs", "service", c.scope, ".sessions", "*"))
	if len(sessions) != 1 {
		t.Fatalf("want node2's one session file, found %v", sessions)
	}
	if err := os.Remove(sessions[0]); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "node2 opens a new session", func() bool {
		return strings.Contains(a2.out.String(), "DCS session lost; opening a new one")
	})
	time.Sleep(3 * time.Second) // loop_wait is 1s: a few cycles
	if n := strings.Count(a2.out.String(), "could not publish the member"); n > 1 {
		t.Errorf("node2 failed to publish %d times after losing its session: it did not take a new one", n)
	}
	st, err := status(t, n2)
	if err != nil {
		t.Fatal(err)
	}
	if m, ok := st.member("node2"); !ok || m.State != "waiting for a clone source" {
		t.Errorf("node2 is not published as waiting after its new session: %+v", m)
	}
	if _, err := os.Stat(n2.dataDir); !os.IsNotExist(err) {
		t.Errorf("a member without a source created its data directory")
	}
}
