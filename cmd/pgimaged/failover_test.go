package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgimaged/pgimaged/internal/testenv"
)

// stopImmediately stops the PostgreSQL of n as a crash would (pg_ctl stop -m immediate).
func stopImmediately(t *testing.T, n *node) {
	t.Helper()
	out, err := exec.Command(filepath.Join(testenv.PGBinDir(t), "pg_ctl"), "stop", "-m", "immediate", "-w", "-D", n.dataDir).CombinedOutput()
	if err != nil {
		t.Fatalf("pg_ctl stop -m immediate -D %s: %v\n%s", n.dataDir, err, out)
	}
}

// exec runs sql on n's PostgreSQL as the superuser.
func execOn(t *testing.T, n *node, sql string) {
	t.Helper()
	conn := connectTCP(t, n.port, "postgres", n.superPass, "postgres")
	if _, err := conn.Exec(t.Context(), sql); err != nil {
		t.Fatalf("%s on port %d: %v", sql, n.port, err)
	}
	_ = conn.Close(context.Background())
}

// waitRows counts the rows of table t on n, waiting until it holds want (a replica catches up;
// a standby that streams but is not yet consistent refuses connections meanwhile).
func waitRows(t *testing.T, n *node, want int) {
	t.Helper()
	got := ""
	eventually(t, guard, fmt.Sprintf("%d rows on port %d", want, n.port), func() bool {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		cfg, err := pgx.ParseConfig(fmt.Sprintf("host=127.0.0.1 port=%d user=postgres dbname=postgres sslmode=disable", n.port))
		if err != nil {
			t.Fatal(err)
		}
		cfg.Password = n.superPass
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			got = err.Error()
			return false
		}
		defer conn.Close(context.Background())
		if err := conn.QueryRow(t.Context(), "SELECT count(*)::text FROM t").Scan(&got); err != nil {
			got = err.Error()
			return false
		}
		return got == strconv.Itoa(want)
	})
}

// leaderOn waits until status names leader, running as the primary on timeline at least tli,
// and the other names running replicas; it returns the status.
func waitLeader(t *testing.T, via *node, agents []*agentProc, leader string, others ...string) clusterStatus {
	t.Helper()
	st := waitCluster(t, via, agents, append([]string{leader}, others...)...)
	if st.Leader != leader {
		t.Fatalf("leader %q, want %s:\n%s", st.Leader, leader, st)
	}
	return st
}

// TestFailoverKeepsTheWritesAfterThePromotion is the lost primary as an operator meets it: the
// primary's host goes down (agent killed, PostgreSQL stopped immediately), `pgimaged failover`
// makes the replica the primary, a row is written there, and when the old primary's host comes
// back it never retakes the leader key: it rejoins by pg_rewind and streams from the new
// primary, holding every row. On the file DCS and on etcd.
func TestFailoverKeepsTheWritesAfterThePromotion(t *testing.T) {
	onEachBackend(t, func(t *testing.T, b backend) {
		c := b.cluster(t, "lost-"+b.kind)
		n1, n2 := c.member(t, "node1", ""), c.member(t, "node2", "")
		agents := startInTurn(t, n1, n2)
		execOn(t, n1, "CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 100)")
		waitRows(t, n2, 100)

		loseHost(t, agents[0], n1, n2)

		// A failover to a member that does not exist, and one without a candidate, are refused.
		if r := run(t, n2.env, "failover", "-config", n2.config, "--candidate", "node9", "--yes"); r.code != 4 || !strings.Contains(r.stderr, "node9") {
			t.Errorf("failover to an unknown member: %s, want exit 4 naming it", r)
		}
		if r := run(t, n2.env, "failover", "-config", n2.config, "--yes"); r.code != 2 {
			t.Errorf("failover without --candidate: %s, want exit 2", r)
		}
		r := run(t, n2.env, "failover", "-config", n2.config, "--candidate", "node2", "--yes")
		if r.code != 0 || !strings.Contains(r.stdout, "failover done: member node2 leads on timeline 2") {
			t.Fatalf("failover: %s", r)
		}
		execOn(t, n2, "INSERT INTO t SELECT generate_series(101, 110)") // acknowledged on the new primary

		again := n1.start(t)
		stopAllAtCleanup(t, again)
		agents[0] = again
		st := waitLeader(t, n2, agents, "node2", "node1")
		waitStreaming(t, n2, "node1")
		waitRows(t, n1, 110)
		waitRows(t, n2, 110)
		if got := primariesAmong(t, n1, n2); len(got) != 1 || got[0] != n2.port {
			t.Errorf("servers answering pg_is_in_recovery() = false: %v, want only node2's %d", got, n2.port)
		}
		if log := again.out.String(); !strings.Contains(log, "rejoin") {
			t.Errorf("node1 does not say it rejoined:\n%s", log)
		}
		m1, _ := st.member("node1")
		if m1.PGImaged == nil || len(m1.PGImaged.Attempts) == 0 || m1.PGImaged.Attempts[len(m1.PGImaged.Attempts)-1].Method != "rewind" {
			t.Errorf("node1's last attempt is not the rewind:\n%s", st)
		}
		// The switch is in the cluster history, in Patroni's shape, for GET /history and patronictl.
		h := run(t, n2.env, "status", "-json", "-config", n2.config)
		if !strings.Contains(h.stdout, `"timeline": 2`) || !strings.Contains(h.stdout, `"new_leader": "node2"`) {
			t.Errorf("status -json does not show the timeline switch to node2:\n%s", h.stdout)
		}
		timelineSwitchShown(t, n2, 2, "node1", "node2")
	})
}

// timelineSwitchShown checks that `status`, `history` and `history -timelines` (text and JSON)
// show the cluster's newest timeline switch: to timeline tl, from member from to member to.
func timelineSwitchShown(t *testing.T, via *node, tl int, from, to string) {
	t.Helper()
	r := run(t, via.env, "history", "-timelines", "-json", "-config", via.config)
	var switches []struct {
		Timeline  int       `json:"timeline"`
		LSN       uint64    `json:"lsn"`
		Reason    string    `json:"reason"`
		Time      time.Time `json:"time"`
		OldLeader string    `json:"old_leader"`
		NewLeader string    `json:"new_leader"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &switches); r.code != 0 || err != nil || len(switches) == 0 {
		t.Fatalf("history -timelines -json: %s (%v), want the timeline switches", r, err)
	}
	sw := switches[len(switches)-1]
	if sw.Timeline != tl || sw.LSN == 0 || sw.OldLeader != from || sw.NewLeader != to || sw.Reason == "" || sw.Time.IsZero() {
		t.Errorf("history -timelines -json: newest switch %+v, want timeline %d from %s to %s with its LSN, reason and time", sw, tl, from, to)
	}
	line := fmt.Sprintf("  timeline %d at %X/%X: %s from %s to %s, %s\n", tl, sw.LSN>>32, uint32(sw.LSN), sw.Reason, from, to, sw.Time.UTC().Format(time.RFC3339))
	for _, args := range [][]string{{"status"}, {"history"}, {"history", "-timelines"}} {
		r := run(t, via.env, append(args, "-config", via.config)...)
		if r.code != 0 || !strings.Contains(r.stdout, "Timeline switches (cluster history):\n") || !strings.Contains(r.stdout, line) {
			t.Errorf("pgimaged %s does not list the switch as %q:\n%s", strings.Join(args, " "), line, r)
		}
	}
}

// TestFailoverWhileTheOldPrimaryServerRuns: the primary's agent dies but its PostgreSQL runs on
// and takes writes (killed agents leave the server pg_ctl started). The leader key expires and
// `pgimaged failover` is asked: the candidate finds the server it streams from still answering
// as a primary and refuses, so that there are never two; the rows written to the old primary
// meanwhile are kept. Once that server is stopped, the failover goes through, and the old
// primary, its agent started again, rejoins: every row on both members. On the file DCS and
// on etcd.
func TestFailoverWhileTheOldPrimaryServerRuns(t *testing.T) {
	onEachBackend(t, func(t *testing.T, b backend) {
		c := b.cluster(t, "alive-"+b.kind)
		n1, n2 := c.member(t, "node1", ""), c.member(t, "node2", "")
		agents := startInTurn(t, n1, n2)
		execOn(t, n1, "CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 100)")
		waitRows(t, n2, 100)
		agents[0].kill()
		eventually(t, guard, "the leader key to expire", func() bool {
			st, err := status(t, n2)
			return err == nil && st.Leader == ""
		})
		r := run(t, n2.env, "failover", "-config", n2.config, "--candidate", "node2", "--force", "--yes")
		if r.code != 1 || !strings.Contains(r.stderr, "still runs as a primary") || !strings.Contains(r.stderr, fmt.Sprint(n1.port)) ||
			!strings.Contains(r.stderr, "(no member leads)") {
			t.Fatalf("failover while the old primary's server runs: %s\nwant a refusal naming that server", r)
		}
		if got := primariesAmong(t, n1, n2); len(got) != 1 || got[0] != n1.port {
			t.Fatalf("servers answering pg_is_in_recovery() = false after the refusal: %v, want only node1's %d", got, n1.port)
		}
		execOn(t, n1, "INSERT INTO t SELECT generate_series(101, 110)") // acknowledged by the old primary
		waitRows(t, n2, 110)

		stopImmediately(t, n1)
		if r := run(t, n2.env, "failover", "-config", n2.config, "--candidate", "node2", "--yes"); r.code != 0 {
			t.Fatalf("failover once the old primary's server is stopped: %s", r)
		}
		execOn(t, n2, "INSERT INTO t SELECT generate_series(111, 120)")
		again := n1.start(t)
		stopAllAtCleanup(t, again)
		waitStreaming(t, n2, "node1")
		waitRows(t, n1, 120)
		waitRows(t, n2, 120)
		if got := primariesAmong(t, n1, n2); len(got) != 1 || got[0] != n2.port {
			t.Errorf("servers answering pg_is_in_recovery() = false at the end: %v, want only node2's %d", got, n2.port)
		}
	})
}

// TestFailoverThroughACascadeWhileTheOldPrimaryServerRuns: the candidate streams through another
// replica (replicatefrom), so the server its primary_conninfo names is a standby; that standby
// still streams from the old primary, whose agent died while its PostgreSQL runs on. The
// failover is refused naming the old primary's server, which is asked one hop further up. The
// members have a rewind role of their own, which sees no standby's sender: the superuser asks
// where the WAL comes from.
func TestFailoverThroughACascadeWhileTheOldPrimaryServerRuns(t *testing.T) {
	c := fileCluster(t)
	n1, n2, n3 := c.member(t, "node1", ""), c.member(t, "node2", ""), c.member(t, "node3", `tags = { replicatefrom = "node2" }`)
	for _, n := range []*node{n1, n2, n3} {
		withRewindRole(t, n, "rewinder", "Rw-cascade-7")
	}
	agents := startInTurn(t, n1, n2, n3)
	execOn(t, n1, "CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 100)")
	waitRows(t, n3, 100)
	waitStreaming(t, n2, "node3")
	agents[0].kill()
	eventually(t, guard, "the leader key to expire", func() bool {
		st, err := status(t, n3)
		return err == nil && st.Leader == ""
	})
	r := run(t, n3.env, "failover", "-config", n3.config, "--candidate", "node3", "--force", "--yes")
	if r.code != 1 || !strings.Contains(r.stderr, fmt.Sprintf("127.0.0.1:%d, still runs as a primary", n1.port)) {
		t.Fatalf("failover through a cascade while the old primary's server runs: %s\nwant a refusal naming node1's server", r)
	}
	if got := primariesAmong(t, n1, n2, n3); len(got) != 1 || got[0] != n1.port {
		t.Fatalf("servers answering pg_is_in_recovery() = false after the refusal: %v, want only node1's %d", got, n1.port)
	}
	execOn(t, n1, "INSERT INTO t SELECT generate_series(101, 110)") // acknowledged by the old primary
	waitRows(t, n2, 110)
	waitRows(t, n3, 110)

	// The refusal's other way out: node1's agent started again takes the key back.
	again := n1.start(t)
	stopAllAtCleanup(t, again)
	agents[0] = again
	waitLeader(t, n1, agents, "node1", "node2", "node3")
	execOn(t, n1, "INSERT INTO t SELECT generate_series(111, 120)")
	for _, n := range []*node{n1, n2, n3} {
		waitRows(t, n, 120)
	}
}

// TestFailoverAfterAPromotionByHand: the replica was promoted with pg_ctl promote (the old
// runbook); `pgimaged failover` only takes the key for it, and the row written between the
// promotion and the command is kept, on every member. On the file DCS and on etcd.
func TestFailoverAfterAPromotionByHand(t *testing.T) {
	onEachBackend(t, func(t *testing.T, b backend) {
		c := b.cluster(t, "by-hand-"+b.kind)
		n1, n2 := c.member(t, "node1", ""), c.member(t, "node2", "")
		agents := startInTurn(t, n1, n2)
		execOn(t, n1, "CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 10)")
		waitRows(t, n2, 10)
		agents[0].kill()
		stopImmediately(t, n1)
		sigterm(t, agents[1]) // the operator stops the replica's agent (PostgreSQL stops with it)
		ctl := exec.Command(filepath.Join(testenv.PGBinDir(t), "pg_ctl"), "start", "-w", "-D", n2.dataDir, "-l", filepath.Join(n2.dir, "by-hand.log"))
		if out, err := ctl.CombinedOutput(); err != nil {
			t.Fatalf("pg_ctl start: %v\n%s", err, out)
		}
		stopServerAtCleanup(t, n2.dataDir)
		if out, err := exec.Command(filepath.Join(testenv.PGBinDir(t), "pg_ctl"), "promote", "-w", "-D", n2.dataDir).CombinedOutput(); err != nil {
			t.Fatalf("pg_ctl promote: %v\n%s", err, out)
		}
		execOn(t, n2, "INSERT INTO t VALUES (11)")
		// As the runbook says: the lost primary's key expires first (on etcd after its ttl); an
		// agent started before that fences the promoted server, which a live leader requires.
		eventually(t, guard, "the lost primary's leader key to expire", func() bool {
			st, err := status(t, n2)
			return err == nil && st.Leader == ""
		})
		a2 := n2.start(t)
		stopAllAtCleanup(t, a2)
		eventually(t, guard, "node2's agent publishing its primary without the key", func() bool {
			st, err := status(t, n2)
			m, ok := st.member("node2")
			return err == nil && ok && st.Leader == "" && m.State != "starting"
		})
		if r := run(t, n2.env, "failover", "-config", n2.config, "--candidate", "node2", "--yes"); r.code != 0 {
			t.Fatalf("failover after a promotion by hand: %s\n%s", r, a2.out.String())
		}
		a1 := n1.start(t)
		stopAllAtCleanup(t, a1)
		waitLeader(t, n2, []*agentProc{a1, a2}, "node2", "node1")
		waitRows(t, n1, 11)
		waitRows(t, n2, 11)
	})
}

// TestSwitchoverRoundTripUnderLoad: n1 → n2 → n1 while a writer inserts rows one commit at a
// time into whichever member is the primary; every row whose commit was acknowledged is on
// every member at the end, the old primaries follow without a rewind and the third member is
// re-pointed at each new leader.
func TestSwitchoverRoundTripUnderLoad(t *testing.T) {
	onEachBackend(t, func(t *testing.T, b backend) {
		c := b.cluster(t, "switch-"+b.kind)
		n1, n2, n3 := c.member(t, "node1", ""), c.member(t, "node2", ""), c.member(t, "node3", "")
		agents := startInTurn(t, n1, n2, n3)
		execOn(t, n1, "CREATE TABLE t (id int PRIMARY KEY)")
		waitStreaming(t, n1, "node2", "node3")

		var mu sync.Mutex
		var acked []int
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() { // the writer: one INSERT a commit, against either member, bounded in count
			defer close(done)
			for id := 1; id <= 100_000; id++ {
				select {
				case <-stop:
					return
				default:
				}
				for _, n := range []*node{n1, n2} {
					if insertOne(n, id) {
						mu.Lock()
						acked = append(acked, id)
						mu.Unlock()
						break
					}
				}
				time.Sleep(5 * time.Millisecond)
			}
		}()
		for _, hop := range []struct{ from, to *node }{{n1, n2}, {n2, n1}} {
			// The candidate must publish that it streams on the leader's timeline, or the
			// switchover is refused (as it should be).
			waitFor(t, guard, hop.to.name+" published streaming from "+hop.from.name, agents, func() bool {
				st, err := status(t, hop.from)
				lead, _ := st.member(hop.from.name)
				cand, _ := st.member(hop.to.name)
				return err == nil && cand.Timeline == lead.Timeline && upstreamOf(t, hop.from, hop.to.name) == hop.from.name
			})
			r := run(t, hop.from.env, "switchover", "-config", hop.from.config, "--candidate", hop.to.name, "--yes")
			if r.code != 0 {
				t.Fatalf("switchover to %s: %s\n%s\n%s", hop.to.name, r, agents[0].out.String(), agents[1].out.String())
			}
			waitLeader(t, hop.to, agents, hop.to.name, hop.from.name, "node3")
			waitStreaming(t, hop.to, hop.from.name, "node3") // node3 re-pointed at the new leader
		}
		close(stop)
		<-done
		mu.Lock()
		defer mu.Unlock()
		if len(acked) == 0 {
			t.Fatal("the writer got no commit acknowledged")
		}
		for _, n := range []*node{n1, n2, n3} {
			conn := connectTCP(t, n.port, "postgres", n.superPass, "postgres")
			eventually(t, guard, fmt.Sprintf("every acknowledged row on port %d", n.port), func() bool {
				var missing int
				err := conn.QueryRow(t.Context(), "SELECT count(*) FROM unnest($1::int[]) AS a(id) WHERE NOT EXISTS (SELECT 1 FROM t WHERE t.id = a.id)", acked).Scan(&missing)
				return err == nil && missing == 0
			})
		}
		for _, a := range agents {
			if strings.Contains(a.out.String(), "rejoining the leader") {
				t.Errorf("a clean switchover made a member rewind:\n%s", a.out.String())
			}
		}
		st, _ := status(t, n1)
		if !strings.Contains(st.String(), "node1") || st.Leader != "node1" {
			t.Errorf("after the round trip: %s", st)
		}
	})
}

// insertOne inserts id on n if n is a primary that accepts it; true once the commit is
// acknowledged.
func insertOne(n *node, id int) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	cfg, err := pgx.ParseConfig(fmt.Sprintf("host=127.0.0.1 port=%d user=postgres dbname=postgres sslmode=disable connect_timeout=2", n.port))
	if err != nil {
		return false
	}
	cfg.Password = n.superPass
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return false
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, "INSERT INTO t VALUES ($1)", id)
	return err == nil
}

// TestSwitchoverJustAfterTheLeaderPublishedAJump: the leader switches WAL segments (as a base
// backup's start does) and publishes its new position, 16 MB further, before its replica
// publishes the position it has already received (here its agent is frozen until the
// switchover is asked). `pgimaged switchover` asked in that moment is not refused as lagging:
// it waits for the candidate's next publication and goes on.
func TestSwitchoverJustAfterTheLeaderPublishedAJump(t *testing.T) {
	c := fileCluster(t)
	n1, n2 := c.member(t, "node1", ""), c.member(t, "node2", "")
	agents := startInTurn(t, n1, n2)
	stopAllAtCleanup(t, agents...)
	execOn(t, n1, "CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 100)")
	waitRows(t, n2, 100)
	waitFor(t, guard, "node2 published streaming from node1", agents, func() bool {
		st, err := status(t, n1)
		return err == nil && upstreamOf(t, n1, "node2") == "node1" && lagOf(st, "node2") < 1<<20
	})
	pid := agents[1].cmd.Process.Pid
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = syscall.Kill(pid, syscall.SIGCONT) }()
	execOn(t, n1, "INSERT INTO t VALUES (0); SELECT pg_switch_wal()")
	waitRows(t, n2, 101) // node2's PostgreSQL has it; its agent has not published it
	eventually(t, guard, "the leader publishing a position more than 1 MB ahead of node2's", func() bool {
		st, err := status(t, n1)
		return err == nil && lagOf(st, "node2") > 1<<20
	})
	done := make(chan result, 1)
	go func() { done <- run(t, n1.env, "switchover", "-config", n1.config, "--candidate", "node2", "--yes") }()
	time.Sleep(300 * time.Millisecond)
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if r := <-done; r.code != 0 {
		t.Fatalf("switchover just after the leader published its jump: %s", r)
	}
	waitLeader(t, n2, agents, "node2", "node1")
	execOn(t, n2, "INSERT INTO t SELECT generate_series(102, 111)")
	for _, n := range []*node{n1, n2} { // every row, on both members
		waitRows(t, n, 111)
	}
}
