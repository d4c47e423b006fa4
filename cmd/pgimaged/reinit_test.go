package main_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fileID tells one file from another at path: its inode number and its change time. A file
// removed and made again differs even when the file system hands out the same inode number.
type fileID struct {
	ino   uint64
	ctime syscall.Timespec
}

// inodeOf is the identity of the file at path.
func inodeOf(t *testing.T, path string) fileID {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return fileID{ino: st.Ino, ctime: st.Ctim}
}

// `pgimaged reinit` re-clones a replica whose agent is stopped, holding the data directory's
// lock itself, with the method given; it refuses the leader and, without --force, a caller
// that cannot confirm on a terminal. Nothing is touched when it refuses.
func TestReinitWithoutAgent(t *testing.T) {
	c := fileCluster(t)
	n1, n2 := c.member(t, "node1", ""), c.member(t, "node2", "")
	agents := startInTurn(t, n1, n2)
	a1, a2 := agents[0], agents[1]
	waitStreaming(t, n1, "node2")

	conn := connectTCP(t, n1.port, "postgres", n1.superPass, "postgres")
	if _, err := conn.Exec(t.Context(), "CREATE TABLE before_reinit AS SELECT g AS id FROM generate_series(1, 1000) g"); err != nil {
		t.Fatal(err)
	}
	_ = conn.Close(t.Context())
	leaderVersion := inodeOf(t, filepath.Join(n1.dataDir, "PG_VERSION"))

	t.Run("refused on the leader", func(t *testing.T) {
		r := run(t, n1.env, "reinit", "--force", "-config", n1.config)
		if r.code != 4 || !strings.Contains(r.stderr, "leader") {
			t.Errorf("reinit of the leader: want exit 4 naming the leader:\n%s", r)
		}
		if inodeOf(t, filepath.Join(n1.dataDir, "PG_VERSION")) != leaderVersion || a1.exited() {
			t.Errorf("a refused reinit touched the leader")
		}
	})

	a2.terminate(t)
	marker := writeFile(t, n2.dataDir, "placed-before-reinit", "x", 0o600)
	replicaVersion := inodeOf(t, filepath.Join(n2.dataDir, "PG_VERSION"))

	t.Run("refused without --force when stdin is not a terminal", func(t *testing.T) {
		r := run(t, n2.env, "reinit", "-config", n2.config)
		if r.code != 2 || !strings.Contains(r.stderr, "--force") {
			t.Errorf("reinit without --force and without a terminal: want exit 2 asking for --force:\n%s", r)
		}
		if _, err := os.Stat(marker); err != nil {
			t.Errorf("a refused reinit touched the data directory: %v", err)
		}
	})

	r := run(t, n2.env, "reinit", "--force", "--method", "basebackup", "-config", n2.config)
	if r.code != 0 {
		t.Fatalf("reinit of the stopped replica failed:\n%s", r)
	}
	stopServerAtCleanup(t, n2.dataDir)
	if _, err := os.Stat(marker); !os.IsNotExist(err) {
		t.Errorf("the file placed in the data directory before the reinit is still there (%v)", err)
	}
	if inodeOf(t, filepath.Join(n2.dataDir, "PG_VERSION")) == replicaVersion {
		t.Errorf("PG_VERSION is the same file as before the reinit (inode and change time): the directory was not re-cloned")
	}
	if !strings.Contains(r.stderr, "method=basebackup") {
		t.Errorf("reinit does not say it used the method given:\n%s", r)
	}
	rc := connectTCP(t, n2.port, "postgres", n2.superPass, "postgres")
	if got := queryString(t, rc, "SELECT count(*)::text FROM before_reinit"); got != "1000" {
		t.Errorf("the re-cloned replica holds %s rows written before the reinit, want 1000", got)
	}
	_ = rc.Close(t.Context())

	a2 = n2.start(t)
	stopAllAtCleanup(t, a2)
	waitCluster(t, n1, []*agentProc{a1, a2}, "node1", "node2")
	waitStreaming(t, n1, "node2")
}

// With the replica's agent running, `pgimaged reinit` asks it through the DCS: the agent stops
// PostgreSQL, empties the data directory and clones again; the replica streams again.
func TestReinitThroughAgent(t *testing.T) {
	onEachBackend(t, testReinitThroughAgent)
}

func testReinitThroughAgent(t *testing.T, b backend) {
	c := b.cluster(t, "reinit-"+randomHex(t))
	n1, n2 := c.member(t, "node1", ""), c.member(t, "node2", "")
	agents := startInTurn(t, n1, n2)
	a2 := agents[1]
	waitStreaming(t, n1, "node2")

	conn := connectTCP(t, n1.port, "postgres", n1.superPass, "postgres")
	if _, err := conn.Exec(t.Context(), "CREATE TABLE before_reinit AS SELECT g AS id FROM generate_series(1, 500) g"); err != nil {
		t.Fatal(err)
	}
	_ = conn.Close(t.Context())
	marker := writeFile(t, n2.dataDir, "placed-before-reinit", "x", 0o600)
	before := inodeOf(t, filepath.Join(n2.dataDir, "PG_VERSION"))

	asked := time.Now()
	r := run(t, n2.env, "reinit", "--force", "-config", n2.config)
	if r.code != 0 {
		t.Fatalf("reinit through the agent failed:\n%s\nagent:\n%s", r, a2.out.String())
	}
	if a2.exited() {
		t.Fatalf("the agent exited during the reinit:\n%s", a2.out.String())
	}
	if _, err := os.Stat(marker); !os.IsNotExist(err) {
		t.Errorf("the file placed in the data directory before the reinit is still there (%v)", err)
	}
	if inodeOf(t, filepath.Join(n2.dataDir, "PG_VERSION")) == before {
		t.Errorf("PG_VERSION is the same file as before the reinit (inode and change time): the directory was not re-cloned")
	}
	if !strings.Contains(a2.out.String(), "reinit requested") {
		t.Errorf("the agent does not say it carried out a reinit request:\n%s", a2.out.String())
	}
	waitCluster(t, n1, agents, "node1", "node2")
	waitStreaming(t, n1, "node2")
	// The member's critical path is now the reinit's clone.
	var path *criticalPath
	waitFor(t, guard, "node2 publishing the critical path of its reinit", agents, func() bool {
		s, err := status(t, n1)
		m, ok := s.member("node2")
		if err != nil || !ok || m.PGImaged == nil || !m.PGImaged.CriticalPath.published() {
			return false
		}
		path = m.PGImaged.CriticalPath
		return !path.Phases[0].Start.Before(asked)
	})
	checkCriticalPath(t, "node2", path, "clone", []string{"plugin_launch", "clone_method", "standby_start", "streaming", "published"},
		map[string]bool{"plugin_launch": true, "clone_method": true}, asked)
	rc := connectTCP(t, n2.port, "postgres", n2.superPass, "postgres")
	if got := queryString(t, rc, "SELECT count(*)::text FROM before_reinit"); got != "500" {
		t.Errorf("the re-cloned replica holds %s rows written before the reinit, want 500", got)
	}
	_ = rc.Close(t.Context())
}

// `pgimaged reinit --member NAME` re-clones another member from the leader's host, through
// that member's agent; it refuses the leader and a member the DCS does not know; with the
// member's agent stopped the request waits in the DCS (exit 5), `status` shows it pending, and
// the agent carries it out when it starts.
func TestReinitMember(t *testing.T) {
	onEachBackend(t, testReinitMember)
}

func testReinitMember(t *testing.T, b backend) {
	c := b.cluster(t, "reinit-member-"+randomHex(t))
	n1, n2 := c.member(t, "node1", ""), c.member(t, "node2", "")
	agents := startInTurn(t, n1, n2)
	a1, a2 := agents[0], agents[1]
	waitStreaming(t, n1, "node2")
	leaderVersion := inodeOf(t, filepath.Join(n1.dataDir, "PG_VERSION"))

	for _, tc := range []struct {
		name, member, want string
		code               int
		force              bool
	}{
		{"the leader", "node1", "node1 holds the leader key", 4, true},
		{"an unknown member", "nosuch", "knows no member nosuch", 4, true},
		{"without --force and without a terminal", "node2", "--force", 2, false},
	} {
		args := []string{"reinit", "-config", n1.config, "--member", tc.member}
		if tc.force {
			args = append(args, "--force")
		}
		if r := run(t, n1.env, args...); r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("reinit --member of %s: want exit %d saying %q:\n%s", tc.name, tc.code, tc.want, r)
		}
	}
	if inodeOf(t, filepath.Join(n1.dataDir, "PG_VERSION")) != leaderVersion || a1.exited() {
		t.Errorf("a refused reinit touched the leader")
	}
	if s := run(t, n1.env, "status", "-json", "-config", n1.config); strings.Contains(s.stdout, "pending_reinits") {
		t.Errorf("a refused reinit left a request in the DCS:\n%s", s)
	}

	marker := writeFile(t, n2.dataDir, "placed-before-reinit", "x", 0o600)
	r := run(t, n1.env, "reinit", "-config", n1.config, "--member", "node2", "--force")
	if r.code != 0 || !strings.Contains(r.stdout, "member node2 re-cloned by its agent") {
		t.Fatalf("reinit --member node2 from the leader's host: %s\nagent:\n%s", r, a2.out.String())
	}
	if _, err := os.Stat(marker); !os.IsNotExist(err) {
		t.Errorf("the file placed in node2's data directory before the reinit is still there (%v)", err)
	}
	waitStreaming(t, n1, "node2")

	// node2's agent stops: the request waits for it.
	a2.terminate(t)
	marker = writeFile(t, n2.dataDir, "placed-while-stopped", "x", 0o600)
	r = run(t, n1.env, "reinit", "-config", n1.config, "--member", "node2", "--force")
	if r.code != 5 || !strings.Contains(r.stderr, "does not run") {
		t.Fatalf("reinit --member of a member whose agent is stopped: want exit 5 saying its agent does not run:\n%s", r)
	}
	s := run(t, n1.env, "status", "-json", "-config", n1.config)
	var st struct {
		Pending map[string]struct {
			By string `json:"by"`
		} `json:"pending_reinits"`
	}
	if err := json.Unmarshal([]byte(s.stdout), &st); err != nil || !strings.Contains(st.Pending["node2"].By, "pgimaged reinit") {
		t.Errorf("status -json does not show node2's reinit pending (%v):\n%s", err, s)
	}
	if s := run(t, n1.env, "status", "-config", n1.config); !strings.Contains(s.stdout, "Pending reinit of node2") || !strings.Contains(s.stdout, "does not run") {
		t.Errorf("status does not show node2's reinit pending:\n%s", s)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Errorf("the pending request touched node2's data directory while its agent was stopped: %v", err)
	}

	a2 = n2.start(t)
	stopAllAtCleanup(t, a2)
	waitFor(t, guard, "node2's agent carrying out the pending reinit", []*agentProc{a1, a2}, func() bool {
		_, err := os.Stat(marker)
		return os.IsNotExist(err) && !strings.Contains(run(t, n1.env, "status", "-json", "-config", n1.config).stdout, "pending_reinits")
	})
	waitCluster(t, n1, []*agentProc{a1, a2}, "node1", "node2")
	waitStreaming(t, n1, "node2")
}
