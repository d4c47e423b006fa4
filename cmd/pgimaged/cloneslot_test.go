package main_test

import (
	"regexp"
	"strings"
	"testing"
)

// TestCloneThroughTheMemberSlot: with use_slots (the default) a replica copied by pg_basebackup
// streams the copy's WAL through the slot the primary keeps for it (--slot=node2, the slot
// created on the primary first), so the WAL written between the copy and the standby's start
// stays there; the standby then streams through that same slot. A method that names its own
// slot keeps it.
func TestCloneThroughTheMemberSlot(t *testing.T) {
	c := fileCluster(t)
	n1, n2 := c.member(t, "node1", ""), c.member(t, "node2", "")
	agents := startInTurn(t, n1, n2)
	waitStreaming(t, n1, "node2")
	running := regexp.MustCompile(`running \S*pg_basebackup [^\n]*`)
	line := running.FindString(agents[1].out.String())
	if !strings.Contains(line, " --slot=node2") {
		t.Errorf("node2's pg_basebackup did not copy through its slot:\n%s\nagent:\n%s", line, agents[1].out.String())
	}
	conn := connectTCP(t, n1.port, "postgres", n1.superPass, "postgres")
	defer conn.Close(t.Context())
	if got := queryString(t, conn, `SELECT string_agg(s.slot_name || ' ' || s.active, ',') FROM pg_replication_slots s`); got != "node2 true" {
		t.Errorf("slots on node1: %q, want node2 in use", got)
	}
	if got := queryString(t, conn, `SELECT count(*)::text FROM pg_stat_replication r JOIN pg_replication_slots s ON s.active_pid = r.pid WHERE r.application_name = 'node2'`); got != "1" {
		t.Errorf("node2 does not stream through its slot on node1")
	}

	// A method's own slot option wins.
	n3 := c.member(t, "node3", "")
	editConfig(t, n3, `method "basebackup" { checkpoint = "fast" }`, `method "basebackup" {
  checkpoint  = "fast"
  slot        = "own_slot"
  create-slot = true
}`)
	a3 := n3.start(t)
	stopAllAtCleanup(t, a3)
	waitStreaming(t, n1, "node2", "node3")
	if line := running.FindString(a3.out.String()); !strings.Contains(line, "--slot=own_slot") || strings.Contains(line, "--slot=node3") {
		t.Errorf("node3's pg_basebackup did not keep the method's own slot:\n%s", line)
	}
}
