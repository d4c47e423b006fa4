package main_test

import (
	"encoding/json"
	"strings"
	"testing"
)

type historyEntry struct {
	Method string `json:"method"`
	OK     bool   `json:"ok"`
}

func history(t *testing.T, via *node, member string) ([]historyEntry, result) {
	t.Helper()
	r := run(t, via.env, "history", "-json", "-member", member, "-config", via.config)
	if r.code != 0 {
		t.Fatalf("history failed: %s", r)
	}
	var h []historyEntry
	if err := json.Unmarshal([]byte(r.stdout), &h); err != nil {
		t.Fatalf("history -json printed no JSON: %v\n%s", err, r)
	}
	return h, r
}

// The bootstrap and clone attempts are kept in the DCS: `pgimaged history` lists them while
// the member's agent is stopped and after it restarts (when its member key, with the attempts
// it publishes, has come and gone).
func TestHistorySurvivesRestart(t *testing.T) {
	c := fileCluster(t)
	n1, n2 := c.member(t, "node1", ""), c.member(t, "node2", "")
	agents := startInTurn(t, n1, n2)
	a1, a2 := agents[0], agents[1]

	if h, r := history(t, n2, "node1"); len(h) != 1 || h[0].Method != "initdb" || !h[0].OK {
		t.Errorf("node1's history: want one successful initdb:\n%s", r)
	}
	a2.terminate(t)
	if h, r := history(t, n1, "node2"); len(h) != 1 || h[0].Method != "basebackup" || !h[0].OK {
		t.Errorf("node2's history with its agent stopped: want one successful basebackup:\n%s", r)
	}
	a2 = n2.start(t)
	stopAllAtCleanup(t, a2)
	waitCluster(t, n1, []*agentProc{a1, a2}, "node1", "node2")
	if h, r := history(t, n1, "node2"); len(h) != 1 || h[0].Method != "basebackup" || !h[0].OK {
		t.Errorf("node2's history after its agent restarted: want the one basebackup:\n%s", r)
	}
	r := run(t, n2.env, "history", "-config", n2.config)
	if r.code != 0 || !strings.Contains(r.stdout, "basebackup") || !strings.Contains(r.stdout, "ok") {
		t.Errorf("history of the configured member:\n%s", r)
	}
}
