package main_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgimaged/pgimaged/internal/pgtest"
)

// withBlock writes a copy of n's configuration with extra appended (a standby_cluster block),
// as an operator edits it before `pgimaged standby follow`; it returns its path.
func withBlock(t *testing.T, n *node, name, extra string) string {
	t.Helper()
	b, err := os.ReadFile(n.config)
	if err != nil {
		t.Fatal(err)
	}
	return writeFile(t, filepath.Dir(n.config), name, string(b)+"\n"+extra, 0o600)
}

// TestStandbyFollowTurnsTheOldSiteIntoAStandbyCluster is the way back after a second site took
// over: site B, a standby cluster of site A, is promoted and takes writes; `pgimaged standby
// follow` with a standby_cluster block naming B makes A a standby cluster of B. A's primary is
// rewound toward B (not re-cloned) and leads as standby_leader, A's replica keeps following it,
// and rows written on B before and after arrive on both members of A; what A took meanwhile
// is gone from both (A's replica, past B's fork too, is rewound toward its standby leader). The DCS records the
// block: A's members, whose configurations have none, use it and status says so. POST
// /standby/follow needs the API's credentials and is refused on a standby cluster.
func TestStandbyFollowTurnsTheOldSiteIntoAStandbyCluster(t *testing.T) {
	a := fileCluster(t)
	apiPort := pgtest.FreePort(t)
	a1 := a.member(t, "a1", fmt.Sprintf("api {\n  listen = \"127.0.0.1:%d\"\n  username = \"ops\"\n  password = \"s3cret-api\"\n}", apiPort))
	a2 := a.member(t, "a2", "")
	siteA := startInTurn(t, a1, a2)
	execOn(t, a1, "CREATE TABLE t (id int); INSERT INTO t VALUES (1)")

	b := backend{kind: "file"}.cluster(t, "site-b")
	b.superPass, b.replPass = a.superPass, a.replPass
	b1 := b.member(t, "b1", fmt.Sprintf("standby_cluster {\n  host = \"127.0.0.1\"\n  port = %d\n}\n", a1.port))
	siteB := []*agentProc{b1.start(t)}
	stopAllAtCleanup(t, siteB...)
	waitStandbyCluster(t, b1, siteB, "b1")
	waitRows(t, b1, 1)

	// Site B takes over and takes writes.
	if r := run(t, b1.env, "standby", "promote", "-config", b1.config, "--yes"); r.code != 0 {
		t.Fatalf("standby promote on site B: %s", r)
	}
	waitLeader(t, b1, siteB, "b1")
	execOn(t, b1, "INSERT INTO t VALUES (2)")
	// Site A, cut off, goes on taking writes meanwhile: both its members hold WAL past the
	// point where B's timeline began, which following B discards.
	execOn(t, a1, "INSERT INTO t SELECT generate_series(100, 104)")
	waitRows(t, a2, 6)

	base := fmt.Sprintf("http://127.0.0.1:%d", apiPort)
	if code, _ := post(t, base+"/standby/follow", "", "", ""); code != 401 {
		t.Errorf("POST /standby/follow without credentials: %d, want 401", code)
	}
	follow := withBlock(t, a1, "follow.hcl", fmt.Sprintf("standby_cluster {\n  host = \"127.0.0.1\"\n  port = %d\n}\n", b1.port))
	if r := run(t, a1.env, "standby", "follow", "-config", a1.config, "--yes"); r.code != 4 || !strings.Contains(r.stderr, "no standby_cluster block") {
		t.Errorf("standby follow without a block: %s", r)
	}
	r := run(t, a1.env, "standby", "follow", "-config", follow, "--yes", "-json")
	if r.code != 0 {
		t.Fatalf("standby follow: %s\n%s", r, siteA[0].out.String())
	}
	var out struct {
		Leader   string  `json:"standby_leader"`
		Timeline int     `json:"timeline"`
		Seconds  float64 `json:"seconds"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || out.Leader != "a1" || out.Timeline != 2 {
		t.Fatalf("standby follow -json: %+v (%v): %s", out, err, r.stdout)
	}
	t.Logf("standby follow: %.2f s from the request to a1 running as the standby leader", out.Seconds)
	st := waitStandbyCluster(t, a1, siteA, "a1", "a2")
	// a2, past B's fork, rejoins a1 by a rewind and comes back on B's timeline.
	waitFor(t, guard, "a2 rewound onto timeline 2", siteA, func() bool {
		st, err := status(t, a1)
		m, ok := st.member("a2")
		return err == nil && ok && m.State == "running" && m.Timeline == 2 && m.PGImaged != nil && len(m.PGImaged.Attempts) > 0 &&
			m.PGImaged.Attempts[len(m.PGImaged.Attempts)-1].Method == "rewind" && m.PGImaged.Attempts[len(m.PGImaged.Attempts)-1].OK
	})
	execOn(t, b1, "INSERT INTO t VALUES (3)")
	for _, n := range []*node{a1, a2} {
		waitRows(t, n, 3)
	}
	waitReceiver(t, a1, b1.port, 2)

	// a1 was rewound, not copied again: its attempts show the rewind and nothing else since it
	// bootstrapped.
	m, _ := st.member("a1")
	var methods []string
	for _, at := range m.PGImaged.Attempts {
		methods = append(methods, fmt.Sprintf("%s:%v", at.Method, at.OK))
	}
	if got := strings.Join(methods, " "); !strings.HasSuffix(got, "rewind:true") || strings.Contains(got, "basebackup") {
		t.Errorf("a1's attempts: %s, want the bootstrap, then one rewind and no copy", got)
	}
	if log := siteA[0].out.String(); strings.Contains(log, "re-cloning from the remote") || !strings.Contains(log, "standby follow: this member is the standby leader") {
		t.Errorf("a1's log does not show a rewind toward the remote:\n%s", log)
	}
	// The DCS says what the configurations do not.
	sr := run(t, a2.env, "status", "-config", a2.config)
	if !strings.Contains(sr.stdout, fmt.Sprintf("Standby cluster of host=127.0.0.1 port=%d", b1.port)) || !strings.Contains(sr.stdout, "this configuration has no standby_cluster block") {
		t.Errorf("status of the standby cluster A:\n%s", sr.stdout)
	}
	if !strings.Contains(siteA[1].out.String(), "the DCS records that the cluster is a standby cluster of host=127.0.0.1") {
		t.Errorf("a2 does not say that it uses the DCS's standby_cluster block:\n%s", siteA[1].out.String())
	}
	if st, _ := status(t, a1); len(st.History) != 1 {
		t.Errorf("A's history after following B: %v, want the switch to B's timeline 2", st.History)
	}
	if code, text := post(t, base+"/standby/follow", "ops", "s3cret-api", ""); code != 412 || !strings.Contains(text, "not possible") {
		t.Errorf("POST /standby/follow on a standby cluster: %d %q, want 412", code, text)
	}

	// A's agents restart: they stay a standby cluster of B, with no block of their own.
	for i, n := range []*node{a1, a2} {
		sigterm(t, siteA[i])
		siteA[i] = n.start(t)
	}
	waitStandbyCluster(t, a1, siteA, "a1", "a2")
	execOn(t, b1, "INSERT INTO t VALUES (4)")
	for _, n := range []*node{a1, a2} {
		waitRows(t, n, 4)
	}
}
