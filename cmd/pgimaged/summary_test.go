package main_test

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/pgimaged/pgimaged/internal/pgtest"
)

// The line a plugin reports with its result (sdk.Result.Summary) is shown: in clone's output and
// its -json, in the log, and in the history of the attempt.
func TestCloneShowsThePluginSummary(t *testing.T) {
	const summary = "replica copied with pg_basebackup" // what the basebackup plugin reports
	p := pgtest.StartPrimary(t, pgtest.Options{})
	n := replicaOf(t, p, "replica1", "")
	r := run(t, n.env, "clone", "-config", n.config, "--connstring", p.ConnURL(), "--stop", "-log-level", "info")
	if r.code != 0 {
		t.Fatalf("clone failed: %s", r)
	}
	if !regexp.MustCompile(`(?m)^replica created with method basebackup \(system identifier \d+\): ` + summary + `$`).MatchString(r.stdout) {
		t.Errorf("clone's output does not show the plugin's summary:\n%s", r.stdout)
	}
	if !regexp.MustCompile(`replica created.*summary="?` + summary).MatchString(r.stderr) {
		t.Errorf("the log does not show the plugin's summary:\n%s", r.stderr)
	}

	n2 := replicaOf(t, p, "replica2", "")
	r = run(t, n2.env, "clone", "-config", n2.config, "-json", "--connstring", p.ConnURL(), "--stop")
	if r.code != 0 {
		t.Fatalf("clone -json failed: %s", r)
	}
	var c struct {
		Summary  string `json:"summary"`
		Attempts []struct {
			Summary string `json:"summary"`
		} `json:"attempts"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &c); err != nil {
		t.Fatalf("clone -json: %v\n%s", err, r)
	}
	if c.Summary != summary || len(c.Attempts) != 1 || c.Attempts[0].Summary != summary {
		t.Errorf("clone -json does not carry the plugin's summary: %+v\n%s", c, r.stdout)
	}
}

// The agent records each attempt's summary in the member's history, and logs it.
func TestHistoryShowsThePluginSummary(t *testing.T) {
	c := fileCluster(t)
	n1, n2 := c.member(t, "node1", ""), c.member(t, "node2", "")
	agents := startInTurn(t, n1, n2)
	r := run(t, n1.env, "history", "-json", "-member", "node2", "-config", n1.config)
	var h []struct {
		Method  string `json:"method"`
		OK      bool   `json:"ok"`
		Summary string `json:"summary"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &h); err != nil || r.code != 0 {
		t.Fatalf("history -json: %v\n%s", err, r)
	}
	if len(h) != 1 || h[0].Summary != "replica copied with pg_basebackup" {
		t.Errorf("node2's history does not hold the plugin's summary: %+v", h)
	}
	r = run(t, n1.env, "history", "-member", "node1", "-config", n1.config)
	if !regexp.MustCompile(`(?m)^\S+\s+initdb\s+ok\s+\S+\s+initdb created a new cluster in `).MatchString(r.stdout) {
		t.Errorf("node1's history does not show initdb's summary:\n%s", r)
	}
	if log := agents[1].out.String(); !strings.Contains(log, "replica copied with pg_basebackup") {
		t.Errorf("node2's log does not show the plugin's summary:\n%s", log)
	}
}
