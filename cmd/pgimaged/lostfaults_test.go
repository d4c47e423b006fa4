package main_test

import (
	"cmp"
	"context"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pgimaged/pgimaged/internal/testenv"
)

// TestLostPrimaryFaults is the fault suite of a change of primary: real PostgreSQL, the real
// pgimaged binary, on the file DCS and on etcd, one cluster of three members per DCS shared by
// the cases (each case leaves it with one leader and every member streaming). The cases: the
// candidate's agent SIGKILLed mid-promotion (switchover and failover), the DCS unreachable
// during a switchover, the old primary back during a failover, two failovers at once, a
// candidate that is refused, pg_rewind killed midway, a rewind refused for want of
// wal_log_hints, the leader changing while a replica is mid-clone. In every case: at most one
// server answers as a writable primary at any time, every acknowledged row is on every member
// at the end, and nothing beside the members' data directories changed. Each DCS ends with one
// line:
//
//	lost-primary faults on KIND: N tried, N survived, N data lost, N processes left
func TestLostPrimaryFaults(t *testing.T) {
	for _, kind := range []string{"file", "etcd"} {
		t.Run(kind, func(t *testing.T) {
			s := newLostSuite(t, kind)
			began := time.Now()
			s.run("(5) candidates refused: unknown, the leader, behind", s.caseRefused)
			s.run("(3) the old primary returns during a failover", s.caseOldPrimaryReturns)
			s.run("(4) two failovers at once", s.caseTwoFailovers)
			s.run("(1) candidate's agent SIGKILLed mid-promotion: switchover", s.caseKilledMidSwitchover)
			s.run("(1) candidate's agent SIGKILLed mid-promotion: failover", s.caseKilledMidFailover)
			s.run("(2) the DCS unreachable during a switchover", s.caseDCSDuringSwitchover)
			s.run("(6) pg_rewind killed midway", s.caseRewindKilled)
			s.run("(7) wal_log_hints off, no data checksums", s.caseNoHintLog)
			s.run("(8) the leader changes mid-clone", s.caseLeaderChangesMidClone)
			line := fmt.Sprintf("lost-primary faults on %s: %d tried, %d survived, %d data lost, %d processes left",
				kind, s.tried, s.survived, s.dataLost, s.procsLeft)
			t.Logf("%s (in %s)", line, time.Since(began).Round(time.Second))
			fmt.Println(line)
		})
	}
}

// lostSuite is the cluster the cases of one DCS share, and their outcomes.
type lostSuite struct {
	t      *testing.T // the DCS's test: the agents' cleanups belong to it
	kind   string
	etcd   *etcdProc
	c      *agentCluster
	nodes  map[string]*node
	agents map[string]*agentProc
	// rows is how many rows of table t the cluster acknowledged: ids 1..rows.
	rows int
	// notes are files an operator keeps beside each member's data directory and configuration.
	notes map[string]string

	tried, survived, dataLost, procsLeft int
}

// lostCase is one case while it runs.
type lostCase struct {
	t   *testing.T
	dir string // the case's own directory: scripts and processes of the case run in it or name it
	ctx context.Context
}

const lostNote = "the operator's note\n"

func newLostSuite(t *testing.T, kind string) *lostSuite {
	s := &lostSuite{t: t, kind: kind, nodes: map[string]*node{}, agents: map[string]*agentProc{}, notes: map[string]string{}}
	b := backend{kind: kind}
	if kind == "etcd" {
		s.etcd = startEtcd(t, 0)
		b.endpoint = s.etcd.endpoint
	}
	s.c = b.cluster(t, "lost-faults-"+kind)
	if kind == "file" {
		s.c.dcs += "\nttl       = \"4s\"" // a lost primary's key expires as soon as on etcd
	}
	var members []*node
	for _, name := range []string{"node1", "node2", "node3"} {
		n := s.c.member(t, name, "")
		s.nodes[name] = n
		members = append(members, n)
		for _, d := range []string{n.dir, filepath.Dir(n.dataDir)} {
			p := writeFile(t, d, "OPERATOR-NOTE", lostNote, 0o600)
			s.notes[p] = lostNote
		}
	}
	for i, a := range startInTurn(t, members...) {
		s.agents[members[i].name] = a
	}
	execOn(t, s.nodes["node1"], "CREATE TABLE t (id int PRIMARY KEY); CREATE TABLE pad (id int, pad text)")
	s.write(t, 10)
	return s
}

// run runs one case as a subtest and counts its outcome; the cluster must be healthy again
// when it ends, every acknowledged row on every member.
func (s *lostSuite) run(name string, body func(c *lostCase)) {
	var c *lostCase
	var lost bool
	ok := s.t.Run(name, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*guard)
		c = &lostCase{t: t, dir: workDir(t), ctx: ctx}
		stop := make(chan struct{})
		worst := watchPrimaries(ctx, faultCreds{super: "postgres", superPass: s.c.superPass}, maps.Clone(s.nodes), stop)
		t.Cleanup(func() {
			if t.Failed() {
				for name, a := range s.agents {
					out := a.out.String()
					t.Logf("agent %s, the end of its output:\n%s", name, out[max(0, len(out)-6000):])
				}
			}
			close(stop)
			if p := <-worst; len(p) > 1 {
				t.Errorf("%d servers answered as writable primaries at the same time: %v", len(p), p)
			}
			cancel()
			left := processesOf(c.dir)
			for pid := range left {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			if len(left) > 0 {
				s.procsLeft += len(left)
				t.Errorf("processes of the case still running after it ended (now killed): %v", left)
			}
		})
		body(c)
		leader := s.healthy(t)
		lost = !s.rowsKept(t, leader)
		lost = !s.notesKept(t) || lost
	})
	if c == nil {
		return
	}
	s.tried++
	if ok {
		s.survived++
	}
	if lost {
		s.dataLost++
	}
}

// write inserts k more rows into t on the leader; they are acknowledged once it returns.
func (s *lostSuite) write(t *testing.T, k int) {
	t.Helper()
	execOn(t, s.nodes[s.leader(t)], fmt.Sprintf("INSERT INTO t SELECT generate_series(%d, %d)", s.rows+1, s.rows+k))
	s.rows += k
}

// leader is the member holding the leader key (fails when none does).
func (s *lostSuite) leader(t *testing.T) string {
	t.Helper()
	var name string
	eventually(t, guard, "a member holding the leader key", func() bool {
		for _, n := range s.nodes {
			if st, err := status(t, n); err == nil && st.Leader != "" {
				name = st.Leader
				return true
			}
		}
		return false
	})
	return name
}

// replicas are the members other than leader, by name.
func (s *lostSuite) replicas(leader string) []string {
	var out []string
	for name := range s.nodes {
		if name != leader {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

func (s *lostSuite) live() []*agentProc {
	var out []*agentProc
	for _, a := range s.agents {
		if !a.exited() {
			out = append(out, a)
		}
	}
	return out
}

// healthy waits until every member runs, one of them the primary holding the key and the
// others streaming from it; it returns the leader.
func (s *lostSuite) healthy(t *testing.T) string {
	t.Helper()
	leader := s.leader(t)
	waitLeader(t, s.nodes[leader], s.live(), leader, s.replicas(leader)...)
	waitStreaming(t, s.nodes[leader], s.replicas(leader)...)
	return leader
}

// rowsKept checks that every acknowledged row is on the leader and on every replica.
func (s *lostSuite) rowsKept(t *testing.T, leader string) bool {
	t.Helper()
	ok := true
	for _, name := range append([]string{leader}, s.replicas(leader)...) {
		got := ""
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
		until(ctx, func() bool {
			v, err := queryOne(ctx, s.nodes[name].port, "postgres", s.c.superPass,
				fmt.Sprintf("SELECT count(*)::text FROM t WHERE id BETWEEN 1 AND %d", s.rows))
			got = v
			return err == nil && v == fmt.Sprint(s.rows)
		})
		cancel()
		if got != fmt.Sprint(s.rows) {
			t.Errorf("DATA LOST: %s holds %s of the %d acknowledged rows", name, got, s.rows)
			ok = false
		}
	}
	return ok
}

// notesKept checks the files beside the members' data directories.
func (s *lostSuite) notesKept(t *testing.T) bool {
	t.Helper()
	ok := true
	for p, want := range s.notes {
		if b, err := os.ReadFile(p); err != nil || string(b) != want {
			t.Errorf("DATA LOST: %s beside a data directory changed or vanished (%v)", p, err)
			ok = false
		}
	}
	return ok
}

// restart starts the member's agent again (its earlier one has exited).
func (s *lostSuite) restart(name string) *agentProc {
	n := s.nodes[name]
	s.agents[name] = startAgent(s.t, n.config, n.env...)
	return s.agents[name]
}

// stopAgent stops the member's agent with SIGTERM (its PostgreSQL stops with it).
func (s *lostSuite) stopAgent(t *testing.T, name string) { sigterm(t, s.agents[name]) }

// loseHost is the host of member name going down: agent killed, PostgreSQL stopped
// immediately, until its leader key expired.
func (s *lostSuite) loseHost(t *testing.T, name string) {
	t.Helper()
	via := s.nodes[s.replicas(name)[0]]
	loseHost(t, s.agents[name], s.nodes[name], via)
}

// mostAdvanced waits until each of names, replicas whose primary is gone, has published the
// position its PostgreSQL replayed to, then returns them most advanced first (by name among
// equals), and whether they all stand at the same one. The last WAL a lost primary sent may reach one standby and not another, or be
// replayed on one a cycle later: which candidate a failover accepts is found, not assumed.
func (s *lostSuite) mostAdvanced(t *testing.T, names ...string) (order []string, even bool) {
	t.Helper()
	at := map[string]int64{}
	replayed := func(name string) (int64, error) {
		v, err := queryOne(t.Context(), s.nodes[name].port, "postgres", s.c.superPass,
			"SELECT (COALESCE(pg_last_wal_replay_lsn(), pg_last_wal_receive_lsn(), '0/0'::pg_lsn) - '0/0'::pg_lsn)::bigint::text")
		if err != nil {
			return 0, err
		}
		return strconv.ParseInt(v, 10, 64)
	}
	var last clusterStatus
	eventually(t, guard, strings.Join(names, " and ")+" publishing the position they replayed to", func() bool {
		st, err := status(t, s.nodes[names[0]])
		if err != nil {
			return false
		}
		last = st
		for _, name := range names {
			before, err := replayed(name)
			if err != nil {
				return false
			}
			m, ok := st.member(name)
			if after, err := replayed(name); err != nil || !ok || m.State != "running" || m.XLogLocation != before || after != before {
				return false
			}
			at[name] = before
		}
		return true
	})
	order = slices.Clone(names)
	slices.SortFunc(order, func(a, b string) int {
		if c := cmp.Compare(at[b], at[a]); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	even = at[order[0]] == at[order[len(order)-1]]
	if !even {
		t.Logf("the replicas replayed to different positions once the primary was gone: %v (status: %+v)", at, last.Members)
	}
	return order, even
}

// reconfigure rewrites member name's configuration with edit; the returned function puts the
// original back.
func (s *lostSuite) reconfigure(t *testing.T, name string, edit func(string) string) func() {
	t.Helper()
	cfg := s.nodes[name].config
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	changed := edit(string(b))
	if changed == string(b) {
		t.Fatalf("the edit left %s unchanged", cfg)
	}
	if err := os.WriteFile(cfg, []byte(changed), 0o600); err != nil {
		t.Fatal(err)
	}
	return func() {
		if err := os.WriteFile(cfg, b, 0o600); err != nil {
			t.Error(err)
		}
	}
}

// inPostgresql adds settings to the configuration's postgresql block.
func inPostgresql(settings string) func(string) string {
	return func(cfg string) string {
		return strings.Replace(cfg, "  pg_hba = [", "  "+settings+"\n  pg_hba = [", 1)
	}
}

// background runs a pgimaged command to completion in the background, in the case's directory.
func (c *lostCase) background(env []string, args ...string) *agentProc {
	c.t.Helper()
	a := launch(c.t, c.dir, strings.Join(args[:1], " "), env, args...)
	c.t.Cleanup(func() {
		if !a.exited() {
			_ = syscall.Kill(-a.cmd.Process.Pid, syscall.SIGKILL)
			<-a.done
		}
	})
	return a
}

// finish waits for a background command to end.
func (c *lostCase) finish(a *agentProc) int {
	c.t.Helper()
	select {
	case <-a.done:
	case <-c.ctx.Done():
		c.t.Fatalf("pgimaged %s did not end:\n%s", a.config, a.out.String())
	}
	return exitCode(a)
}

// waitOutput waits until what a has written since from holds sub; false when a, or the
// command cmd that should make it write sub, exited first.
func (c *lostCase) waitOutput(a *agentProc, from int, sub string, cmd *agentProc) bool {
	for {
		if strings.Contains(a.out.String()[from:], sub) {
			return true
		}
		select {
		case <-a.done:
			return strings.Contains(a.out.String()[from:], sub)
		case <-cmd.done:
			time.Sleep(time.Second) // what the agent wrote before the command ended
			return strings.Contains(a.out.String()[from:], sub)
		case <-c.ctx.Done():
			return false
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func outputLen(a *agentProc) int { return len(a.out.String()) }

// walReceiverPID is the pid of the member's WAL receiver (0 when none runs).
func (s *lostSuite) walReceiverPID(t *testing.T, name string) int {
	t.Helper()
	var pid int
	eventually(t, guard, name+"'s WAL receiver", func() bool {
		v, err := queryOne(t.Context(), s.nodes[name].port, "postgres", s.c.superPass, "SELECT pid::text FROM pg_stat_wal_receiver")
		if err == nil && v != "" {
			_, err = fmt.Sscan(v, &pid)
		}
		return err == nil && pid > 0
	})
	return pid
}

// lag is how many bytes member name publishes behind the leader's published position.
func lagOf(st clusterStatus, name string) int64 {
	lm, _ := st.member(st.Leader)
	m, _ := st.member(name)
	return lm.XLogLocation - m.XLogLocation
}

// --- the cases ------------------------------------------------------------------------------

// (5) A switchover to a member that does not exist, to the leader itself or to a member more
// than maximum_lag_on_failover behind, and a failover while a leader holds the key, are refused
// with the reason; the lagging member's refusal shows the members' positions.
func (s *lostSuite) caseRefused(c *lostCase) {
	t := c.t
	leader := s.leader(t)
	ln, behind := s.nodes[leader], s.replicas(leader)[1]
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"switchover", "--candidate", "node9"}, "member node9 is not published"},
		{[]string{"switchover", "--candidate", leader}, "member " + leader + " is the leader already"},
		{[]string{"failover", "--candidate", behind}, "member " + leader + " holds the leader key"},
	} {
		r := run(t, ln.env, append(append([]string{tc.args[0], "-config", ln.config}, tc.args[1:]...), "--yes")...)
		if r.code != 4 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v: %s\nwant exit 4 saying %q", tc.args, r, tc.want)
		}
	}

	// The member's WAL receiver stopped while the leader writes 4 MB: it is behind.
	pid := s.walReceiverPID(t, behind)
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = syscall.Kill(pid, syscall.SIGCONT) }()
	execOn(t, ln, "INSERT INTO pad SELECT g, repeat(md5(g::text), 32) FROM generate_series(1, 3000) g")
	s.write(t, 5)
	eventually(t, guard, behind+" published more than 1 MB behind", func() bool {
		st, err := status(t, ln)
		return err == nil && lagOf(st, behind) > 1<<20
	})
	r := run(t, ln.env, "switchover", "-config", ln.config, "--candidate", behind, "--yes")
	if r.code != 4 || !strings.Contains(r.stderr, "bytes behind the leader, more than maximum_lag_on_failover") ||
		!strings.Contains(r.stderr, behind+": timeline ") || !strings.Contains(r.stderr, leader+": timeline ") {
		t.Errorf("switchover to a member behind: %s\nwant exit 4 with the reason and the members' positions", r)
	}
	_ = syscall.Kill(pid, syscall.SIGCONT)
}

// (3) The old primary's agent restarts while `failover --candidate` runs: it never takes the
// key again (its timeline is older), rejoins by pg_rewind and streams from the new primary. A
// failover to a member behind the most advanced one is refused first, with the positions.
func (s *lostSuite) caseOldPrimaryReturns(c *lostCase) {
	t := c.t
	old := s.leader(t)
	cand, behind := s.replicas(old)[0], s.replicas(old)[1]
	pid := s.walReceiverPID(t, behind)
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = syscall.Kill(pid, syscall.SIGCONT) }()
	s.write(t, 20)
	waitRows(t, s.nodes[cand], s.rows)
	s.loseHost(t, old)
	cn := s.nodes[cand]
	eventually(t, guard, behind+" published behind "+cand, func() bool {
		st, err := status(t, cn)
		a, _ := st.member(cand)
		b, _ := st.member(behind)
		return err == nil && a.XLogLocation > b.XLogLocation && a.State == "running" && b.State == "running"
	})
	r := run(t, cn.env, "failover", "-config", cn.config, "--candidate", behind, "--yes")
	if r.code != 4 || !strings.Contains(r.stderr, "member "+behind+" is not the most advanced member; "+cand+" is") ||
		!strings.Contains(r.stderr, behind+": timeline 1 at ") {
		t.Errorf("failover to a member behind: %s\nwant exit 4 naming the most advanced member, with the positions", r)
	}
	_ = syscall.Kill(pid, syscall.SIGCONT)

	fo := c.background(cn.env, "failover", "-config", cn.config, "--candidate", cand, "--yes")
	back := s.restart(old)
	if code := c.finish(fo); code != 0 {
		t.Fatalf("failover with the old primary back: exit %d\n%s", code, fo.out.String())
	}
	if st := s.waitLeaderIs(t, cand); st.Leader != cand {
		t.Fatalf("leader %q, want %s", st.Leader, cand)
	}
	s.write(t, 5)
	s.healthy(t)
	out := back.out.String()
	if strings.Contains(out, "leader key taken") || strings.Contains(out, "this member is the primary and holds the leader key") {
		t.Errorf("the old primary took the leader key again:\n%s", out)
	}
	if !strings.Contains(out, "rejoining the leader") {
		t.Errorf("the old primary did not rejoin:\n%s", out)
	}
}

// waitLeaderIs waits until status names leader as holding the key.
func (s *lostSuite) waitLeaderIs(t *testing.T, leader string) clusterStatus {
	t.Helper()
	var st clusterStatus
	eventually(t, guard, leader+" holding the leader key", func() bool {
		var err error
		st, err = status(t, s.nodes[leader])
		return err == nil && st.Leader == leader
	})
	return st
}

// (4) Two `failover --candidate` with different candidates at once: one wins, the other is
// refused naming the winner; one primary; the old primary rejoins.
func (s *lostSuite) caseTwoFailovers(c *lostCase) {
	t := c.t
	old := s.leader(t)
	a, b := s.replicas(old)[0], s.replicas(old)[1]
	s.write(t, 20)
	waitRows(t, s.nodes[a], s.rows)
	waitRows(t, s.nodes[b], s.rows)
	s.loseHost(t, old)
	// Both must pass the checks, so that the compare-and-swap decides: when the last WAL
	// reached one of them only, both accept losing it.
	args := []string{"--yes"}
	if _, even := s.mostAdvanced(t, a, b); !even {
		args = append(args, "--force")
	}
	fa := c.background(s.nodes[a].env, append([]string{"failover", "-config", s.nodes[a].config, "--candidate", a}, args...)...)
	fb := c.background(s.nodes[b].env, append([]string{"failover", "-config", s.nodes[b].config, "--candidate", b}, args...)...)
	ca, cb := c.finish(fa), c.finish(fb)
	winner, loser, lost := a, b, fb
	if ca != 0 {
		winner, loser, lost = b, a, fa
	}
	if (ca == 0) == (cb == 0) {
		t.Fatalf("two failovers at once: exits %d and %d, want one success\n--- %s\n%s\n--- %s\n%s", ca, cb, a, fa.out.String(), b, fb.out.String())
	}
	if code := exitCode(lost); code != 4 || !strings.Contains(lost.out.String(), winner) {
		t.Errorf("the failover to %s that lost: exit %d, want 4 naming %s:\n%s", loser, code, winner, lost.out.String())
	}
	s.waitLeaderIs(t, winner)
	s.restart(old)
	s.write(t, 5)
}

// (1) The candidate's agent SIGKILLed while it takes over in a switchover, and started again:
// either the candidate ends as the primary holding the key or the old primary resumes; the
// command says which.
func (s *lostSuite) caseKilledMidSwitchover(c *lostCase) {
	s.switchoverUnder(c, "the candidate's agent killed mid-promotion", true, "taking over as the primary", func(_, to string) {
		s.agents[to].kill()
		s.restart(to)
	})
}

// switchoverUnder runs a switchover from the leader to a replica, and fault once the agent of
// the candidate (candidate) or of the leader has written sub. Afterwards the candidate leads
// and the command succeeded, or the old primary resumed and it failed.
func (s *lostSuite) switchoverUnder(c *lostCase, what string, candidate bool, sub string, fault func(from, to string), args ...string) {
	t := c.t
	from := s.leader(t)
	to := s.replicas(from)[0]
	s.write(t, 20)
	s.waitSwitchoverReady(t, from, to)
	watched := s.agents[from]
	if candidate {
		watched = s.agents[to]
	}
	mark := outputLen(watched)
	sw := c.background(s.nodes[from].env, append([]string{"switchover", "-config", s.nodes[from].config, "--candidate", to, "--yes"}, args...)...)
	if !c.waitOutput(watched, mark, sub, sw) {
		t.Fatalf("no %q from %s:\n%s\n%s", sub, watched.config, sw.out.String(), watched.out.String())
	}
	fault(from, to)
	code := c.finish(sw)
	leader := s.healthy(t)
	t.Logf("switchover with %s: exit %d, leader %s\n%s", what, code, leader, sw.out.String())
	if (code == 0) != (leader == to) || (leader != to && leader != from) {
		t.Errorf("switchover exit %d, but %s leads (from %s to %s):\n%s", code, leader, from, to, sw.out.String())
	}
	s.write(t, 5)
}

// waitSwitchoverReady waits until to publishes streaming from `from` on its timeline, caught up.
func (s *lostSuite) waitSwitchoverReady(t *testing.T, from, to string) {
	t.Helper()
	waitRows(t, s.nodes[to], s.rows)
	eventually(t, guard, to+" published streaming from "+from, func() bool {
		st, err := status(t, s.nodes[from])
		lead, _ := st.member(from)
		cand, _ := st.member(to)
		return err == nil && cand.Timeline == lead.Timeline && lagOf(st, to) < 1<<20 && upstreamOf(t, s.nodes[from], to) == from
	})
}

// (1) The candidate's agent SIGKILLed while it takes over in a failover, and started again: it
// ends as the primary holding the key, the old primary rejoins.
func (s *lostSuite) caseKilledMidFailover(c *lostCase) {
	t := c.t
	old := s.leader(t)
	s.write(t, 20)
	for _, r := range s.replicas(old) {
		waitRows(t, s.nodes[r], s.rows)
	}
	s.loseHost(t, old)
	ahead, _ := s.mostAdvanced(t, s.replicas(old)...)
	to := ahead[0]
	mark := outputLen(s.agents[to])
	fo := c.background(s.nodes[to].env, "failover", "-config", s.nodes[to].config, "--candidate", to, "--yes")
	if !c.waitOutput(s.agents[to], mark, "taking over as the primary", fo) {
		t.Fatalf("%s never took over:\n%s\n%s", to, fo.out.String(), s.agents[to].out.String())
	}
	s.agents[to].kill()
	s.restart(to)
	if code := c.finish(fo); code != 0 {
		t.Errorf("failover with its candidate's agent killed mid-promotion: exit %d\n%s", code, fo.out.String())
	}
	s.waitLeaderIs(t, to)
	s.restart(old)
	s.write(t, 5)
}

// (2) The DCS unreachable while a switchover runs (etcd frozen with SIGSTOP; the file DCS's
// directory unwritable), for longer than the keys live: nothing is left half-done — the old
// primary resumes or the candidate holds the key, and the command says which.
func (s *lostSuite) caseDCSDuringSwitchover(c *lostCase) {
	s.switchoverUnder(c, "the DCS unreachable", false, "switchover: shutting PostgreSQL down cleanly", func(_, _ string) {
		unblock := s.blockDCS(c.t)
		time.Sleep(8 * time.Second) // the outage: longer than the keys' ttl
		unblock()
	}, "--timeout", "90s")
}

// blockDCS makes the DCS unreachable: etcd frozen, or the file DCS's files unwritable. The
// returned function ends the outage.
func (s *lostSuite) blockDCS(t *testing.T) func() {
	t.Helper()
	if s.etcd != nil {
		if err := syscall.Kill(-s.etcd.pgid, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		return func() { _ = syscall.Kill(-s.etcd.pgid, syscall.SIGCONT) }
	}
	root := filepath.Join(s.c.work, "dcs")
	var dirs []string
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	for _, d := range dirs {
		if err := os.Chmod(d, 0o500); err != nil {
			t.Fatal(err)
		}
	}
	return func() {
		for _, d := range dirs {
			_ = os.Chmod(d, 0o700)
		}
	}
}

// (6) pg_rewind killed midway through the rejoin of a former primary (its bin_dir holds a
// pg_rewind that kills the real one once it rewinds): the directory stays marked as needing a
// reinit and is never started while it is; the chain goes on (rejoin = "reimage": the replica
// methods replace it) and the member ends streaming from the new primary.
func (s *lostSuite) caseRewindKilled(c *lostCase) {
	t := c.t
	old := s.leader(t)
	real := testenv.PGBinDir(t)
	killed := filepath.Join(c.dir, "killed")
	bin := binDirWith(t, c.dir, "pg_rewind", fmt.Sprintf(`#!/bin/sh
# pg_rewind, killed with SIGKILL as soon as it says it rewinds
log=%[1]q/rewind.out
%[2]q "$@" >"$log" 2>&1 &
pid=$!
while kill -0 $pid 2>/dev/null; do
  if grep -q "rewinding from last common checkpoint\|reading source file list\|need to copy" "$log"; then
    kill -9 $pid
    echo "killed" > %[3]q
    cat "$log" >&2
    echo "pg_rewind: fatal: killed midway" >&2
    exit 137
  fi
done
cat "$log" >&2
echo "pg_rewind: fatal: ended before it could be killed" >&2
exit 1
`, c.dir, filepath.Join(real, "pg_rewind"), killed))

	to := s.failOver(t, old)
	restore := s.reconfigure(t, old, func(cfg string) string {
		cfg = strings.Replace(cfg, fmt.Sprintf("bin_dir    = %q", real), fmt.Sprintf("bin_dir    = %q", bin), 1)
		return inPostgresql(`rejoin = "reimage"`)(cfg)
	})
	on := s.nodes[old]
	reinitMark := filepath.Join(filepath.Dir(on.dataDir), "."+filepath.Base(on.dataDir)+".pgimaged-needs-reinit")
	stop, startedMarked := make(chan struct{}), make(chan bool, 1)
	go func() { // a directory marked incomplete is never started
		seen := false
		for {
			if _, err := os.Stat(reinitMark); err == nil {
				if _, err := queryOne(c.ctx, on.port, "postgres", s.c.superPass, "SELECT 1::text"); err == nil {
					if _, err := os.Stat(reinitMark); err == nil { // still marked once the server answered
						seen = true
					}
				}
			}
			select {
			case <-stop:
				startedMarked <- seen
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	a := s.restart(old)
	waitStreaming(t, s.nodes[to], s.replicas(to)...)
	close(stop)
	if <-startedMarked {
		t.Errorf("PostgreSQL answered in %s while it was marked as needing a reinit", on.dataDir)
	}
	if _, err := os.Stat(killed); err != nil {
		t.Logf("pg_rewind ended before the wrapper could kill it; the method failed all the same")
	}
	out := a.out.String()
	if !strings.Contains(out, "rejoin method failed") || !strings.Contains(out, "killed midway") && !strings.Contains(out, "before it could be killed") {
		t.Errorf("the agent does not say that the rewind failed:\n%s", out)
	}
	s.reimaged(t, old, a, restore)
}

// (7) A former primary that ran with wal_log_hints = off and without data checksums: the rewind
// is refused with the reason, the chain goes on (rejoin = "reimage") and the member ends
// streaming from the new primary.
func (s *lostSuite) caseNoHintLog(c *lostCase) {
	t := c.t
	old := s.leader(t)
	on := s.nodes[old]
	restore := s.reconfigure(t, old, func(cfg string) string {
		cfg = strings.Replace(cfg, "max_connections = 30 ", `max_connections = 30, wal_log_hints = "off" `, 1)
		return inPostgresql(`rejoin = "reimage"`)(cfg)
	})
	// The primary restarts with the setting (a switchover would hand over; the agent is
	// restarted instead, briefly without a primary).
	s.stopAgent(t, old)
	s.restart(old)
	s.waitLeaderIs(t, old)
	eventually(t, guard, old+" running with wal_log_hints = off", func() bool {
		v, err := queryOne(t.Context(), on.port, "postgres", s.c.superPass, "SELECT current_setting('wal_log_hints') || current_setting('data_checksums')")
		return err == nil && v == "offoff"
	})
	s.healthy(t)
	to := s.failOver(t, old)
	a := s.restart(old)
	waitStreaming(t, s.nodes[to], s.replicas(to)...)
	if out := a.out.String(); !strings.Contains(out, "rewind needs wal_log_hints = on or data checksums") {
		t.Errorf("the agent does not say why the rewind was refused:\n%s", out)
	}
	s.reimaged(t, old, a, restore)
}

// failOver loses the host of the leader old once the rows reached its replicas, makes the most
// advanced of them the primary with `pgimaged failover`, writes there and returns it.
func (s *lostSuite) failOver(t *testing.T, old string) string {
	t.Helper()
	s.write(t, 20)
	for _, r := range s.replicas(old) {
		waitRows(t, s.nodes[r], s.rows)
	}
	s.loseHost(t, old)
	ahead, _ := s.mostAdvanced(t, s.replicas(old)...)
	to := ahead[0]
	if r := run(t, s.nodes[to].env, "failover", "-config", s.nodes[to].config, "--candidate", to, "--yes"); r.code != 0 {
		t.Fatalf("failover: %s", r)
	}
	s.write(t, 5)
	return to
}

// reimaged checks that the rejoin chain of member name (agent a) went on to re-image it, then
// puts its configuration back (restore) and restarts its agent with it.
func (s *lostSuite) reimaged(t *testing.T, name string, a *agentProc, restore func()) {
	t.Helper()
	if out := a.out.String(); !strings.Contains(out, "reinit requested: re-cloning this member") {
		t.Errorf("the chain did not go on to re-image the member:\n%s", out)
	}
	restore()
	s.stopAgent(t, name)
	s.restart(name)
}

// (8) A switchover while a new member clones from the leader (its copy slowed): the clone
// from the old primary is abandoned and made again toward the new leader, which it ends
// streaming from.
func (s *lostSuite) caseLeaderChangesMidClone(c *lostCase) {
	t := c.t
	from := s.leader(t)
	to := s.replicas(from)[0]
	execOn(t, s.nodes[from], "CREATE TABLE filler AS SELECT g AS id, repeat(md5(g::text), 6) AS pad FROM generate_series(1, 200000) g")
	s.write(t, 20)
	s.waitSwitchoverReady(t, from, to)
	n4 := writeNode(s.t, nodeSpec{scope: s.c.scope, name: "node4", nameInPath: true, top: s.c.dcs,
		extra:     "method \"basebackup\" {\n  checkpoint = \"fast\"\n  max-rate   = \"4M\"\n}\n" + s.c.shared,
		superPass: s.c.superPass, replPass: s.c.replPass})
	a4 := startAgent(s.t, n4.config, n4.env...)
	if !until(c.ctx, func() bool { return a4.exited() || dirSize(n4.dataDir) > 8<<20 }) || a4.exited() {
		t.Fatalf("node4 did not start copying:\n%s", a4.out.String())
	}
	r := run(t, s.nodes[from].env, "switchover", "-config", s.nodes[from].config, "--candidate", to, "--yes")
	if r.code != 0 {
		t.Fatalf("switchover mid-clone: %s", r)
	}
	s.nodes["node4"], s.agents["node4"] = n4, a4
	leader := s.healthy(t)
	if leader != to {
		t.Errorf("leader %s after the switchover to %s", leader, to)
	}
	eventually(t, guard, "node4 publishing that it streams from "+to, func() bool { return upstreamOf(t, s.nodes[to], "node4") == to })
	out := a4.out.String()
	copies := strings.Split(out, logCreating)
	last, _, _ := strings.Cut(copies[len(copies)-1], "\n")
	if len(copies) < 3 || !strings.Contains(out, "the leader changed during the clone") || !strings.Contains(last, fmt.Sprintf(`source="%s (`, to)) {
		t.Errorf("node4 did not abandon its copy from %s and make it again from %s:\n%s", from, to, out)
	}
}
