package main_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The agent's log_file tells the turning points an operator looks for, each once when it
// happens: the leader key taken (and lost, when its lease ran out meanwhile), the DCS
// unreachable while etcd is frozen, and back when it answers again.
func TestLogFileKeyEvents(t *testing.T) {
	e := startEtcd(t, 0)
	c := backend{kind: "etcd", endpoint: e.endpoint}.cluster(t, "events-"+randomHex(t))
	logFile := filepath.Join(c.work, "node1.log")
	n1 := c.member(t, "node1", fmt.Sprintf("log_file = %q", logFile))
	a1 := startInTurn(t, n1)[0]
	agents := []*agentProc{a1}
	logged := func() string {
		b, _ := os.ReadFile(logFile)
		return string(b)
	}
	waitFor(t, guard, "the log file to say the leader key was taken", agents, func() bool {
		return strings.Contains(logged(), "leader key taken")
	})

	if err := syscall.Kill(-e.pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	thawed := false
	thaw := func() {
		if !thawed {
			thawed = true
			_ = syscall.Kill(-e.pid, syscall.SIGCONT)
		}
	}
	t.Cleanup(thaw) // before the agents stop: they give up their keys in etcd
	waitFor(t, guard, "the log file to say the DCS is unreachable", agents, func() bool {
		return strings.Contains(logged(), "DCS unreachable")
	})
	time.Sleep(5 * time.Second) // several cycles (loop_wait 1s) while etcd stays frozen
	thaw()
	waitFor(t, guard, "the log file to say the DCS is back", agents, func() bool {
		return strings.Contains(logged(), "DCS back")
	})
	waitCluster(t, n1, agents, "node1")
	waitFor(t, guard, "the leader key held again, as the log file says", agents, func() bool {
		l := logged()
		return strings.Count(l, "leader key taken") == strings.Count(l, "leader key lost")+1
	})

	l := logged()
	for _, line := range []string{"DCS unreachable", "DCS back"} {
		if n := strings.Count(l, line); n != 1 {
			t.Errorf("the log file says %q %d times for one outage, want once:\n%s", line, n, l)
		}
	}
	if lost := strings.Count(l, "leader key lost"); lost > 1 {
		t.Errorf("the log file says the leader key was lost %d times in one outage:\n%s", lost, l)
	}
	if strings.Contains(a1.out.String(), "DCS unreachable") {
		t.Errorf("with log_file set, the agent still logs to stderr:\n%s", a1.out.String())
	}
}

// An agent that stops because it may not touch its data directory says why in its log_file,
// not only on stderr.
func TestLogFileFatalError(t *testing.T) {
	c := fileCluster(t)
	logFile := filepath.Join(c.work, "node1.log")
	n1 := c.member(t, "node1", fmt.Sprintf("log_file = %q", logFile))
	if err := os.MkdirAll(n1.dataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, n1.dataDir, "someone-elses-file", "x", 0o600)
	a1 := n1.start(t)
	select {
	case <-a1.done:
	case <-time.After(guard):
		t.Fatal("the agent did not stop on a data directory holding someone else's file")
	}
	b, _ := os.ReadFile(logFile)
	if l := string(b); !strings.Contains(l, "the agent stops") || !strings.Contains(l, "not empty") {
		t.Errorf("the log file does not say why the agent stopped:\n%s\nstderr:\n%s", l, a1.out.String())
	}
}

// An agent whose configuration fails the checks made on its host (a replica method whose
// program is nowhere) says so in its log_file before it stops.
func TestLogFileConfigError(t *testing.T) {
	c := fileCluster(t)
	logFile := filepath.Join(c.work, "node1.log")
	n1 := c.memberWith(t, "node1", fmt.Sprintf("log_file = %q\nmethod \"no_such_restore_program\" {\n  keep_data = false\n}", logFile),
		`create_replica_methods = ["no_such_restore_program"]`)
	a1 := n1.start(t)
	select {
	case <-a1.done:
	case <-time.After(time.Minute):
		t.Fatal("the agent did not stop on a configuration error")
	}
	b, _ := os.ReadFile(logFile)
	if l := string(b); !strings.Contains(l, "the agent stops") || !strings.Contains(l, "no_such_restore_program") {
		t.Errorf("the log file does not say why the agent stopped:\n%s\nstderr:\n%s", l, a1.out.String())
	}
}
