package engine_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pgimaged/pgimaged/core/dcs"
	"github.com/pgimaged/pgimaged/core/engine"
)

func TestFailsafeCandidate(t *testing.T) {
	cl := &dcs.Cluster{Leader: "node1", Members: []dcs.Member{{Name: "node1"}, {Name: "node2"}, {Name: "node3"}}}
	primary := engine.Snapshot{Name: "node1", Running: true, Queried: true, Cluster: cl, LedAt: time.Now(), DCSError: "etcd unavailable"}
	cases := []struct {
		name string
		snap func(s engine.Snapshot) engine.Snapshot
		why  string // "" : a candidate, asking node2 and node3
	}{
		{"the primary without the DCS", func(s engine.Snapshot) engine.Snapshot { return s }, ""},
		{"the DCS answers", func(s engine.Snapshot) engine.Snapshot { s.DCSError = ""; return s }, "the DCS answers"},
		{"did not lead at the last read", func(s engine.Snapshot) engine.Snapshot { s.LedAt = time.Time{}; return s }, "leader key"},
		{"a standby", func(s engine.Snapshot) engine.Snapshot { s.InRecovery = true; return s }, "not run as a primary"},
		{"PostgreSQL stopped", func(s engine.Snapshot) engine.Snapshot { s.Running = false; return s }, "not run as a primary"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			others, why := engine.FailsafeCandidate(c.snap(primary))
			if c.why == "" && (why != "" || len(others) != 2 || others[0].Name != "node2" || others[1].Name != "node3") {
				t.Fatalf("members %v, refusal %q; want node2 and node3 asked", others, why)
			}
			if c.why != "" && !strings.Contains(why, c.why) {
				t.Fatalf("refusal %q, want %q", why, c.why)
			}
		})
	}
}

func TestFailsafeAnswer(t *testing.T) {
	replica := engine.Snapshot{Name: "node2", Running: true, Queried: true, InRecovery: true, DCSError: "etcd unavailable", LeaderName: "node1"}
	cases := []struct {
		name        string
		enabled     bool
		runsPrimary bool
		snap        func(s engine.Snapshot) engine.Snapshot
		code        int
	}{
		{"a replica without the DCS", true, false, func(s engine.Snapshot) engine.Snapshot { return s }, http.StatusOK},
		{"failsafe_mode off", false, false, func(s engine.Snapshot) engine.Snapshot { return s }, http.StatusBadGateway},
		{"a member running a primary itself", true, true, func(s engine.Snapshot) engine.Snapshot { return s }, http.StatusInternalServerError},
		{"the DCS names another leader", true, false, func(s engine.Snapshot) engine.Snapshot {
			s.DCSError, s.LeaderName = "", "node3"
			return s
		}, http.StatusInternalServerError},
		{"the DCS names the asker", true, false, func(s engine.Snapshot) engine.Snapshot { s.DCSError = ""; return s }, http.StatusOK},
		{"the DCS names no leader", true, false, func(s engine.Snapshot) engine.Snapshot {
			s.DCSError, s.LeaderName = "", ""
			return s
		}, http.StatusOK},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, text := engine.FailsafeAnswer(c.enabled, c.runsPrimary, c.snap(replica), "node1")
			if code != c.code || (code == http.StatusOK) != (text == engine.FailsafeAccepted) {
				t.Fatalf("answer %d %q, want %d", code, text, c.code)
			}
		})
	}
}

// Failsafe mode keeps a primary without the leader key (its session lost with the DCS) a
// primary for /primary; a standby never.
func TestSnapshotPrimaryInFailsafe(t *testing.T) {
	s := engine.Snapshot{Running: true, Queried: true}
	if s.Primary() {
		t.Fatal("a primary without the leader key and without failsafe counts as the primary")
	}
	s.Failsafe = true
	if !s.Primary() {
		t.Fatal("failsafe mode does not keep the primary")
	}
	s.InRecovery = true
	if s.Primary() {
		t.Fatal("a standby counts as the primary in failsafe mode")
	}
}
