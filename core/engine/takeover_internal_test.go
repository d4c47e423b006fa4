package engine

import (
	"context"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/pgimaged/pgimaged/core/config"
	"github.com/pgimaged/pgimaged/core/dcs/dcstest"
	"github.com/pgimaged/pgimaged/core/pg"
	"github.com/pgimaged/pgimaged/internal/pgtest"
	"github.com/pgimaged/pgimaged/internal/testenv"
)

// follow writes standby settings into dir that stream from src (a server of primary's cluster).
func follow(t *testing.T, p *pgtest.Primary, dir string, src *pg.Server) {
	t.Helper()
	conn := p.ReplConn()
	conn.Port = src.Port
	pass := filepath.Join(p.OSUser.TempDir(t), "pgpass")
	if err := pg.WritePgpass(pass, pg.PassEntry{Host: "127.0.0.1", Port: strconv.Itoa(src.Port), User: p.ReplUser, Password: p.ReplPass}); err != nil {
		t.Fatal(err)
	}
	p.OSUser.Chown(t, pass)
	conn.Params = map[string]string{"passfile": pass}
	if err := pg.WriteRecovery(dir, 15, pg.Recovery{Standby: true, Settings: map[string]string{"primary_conninfo": conn.DSN()}}); err != nil {
		t.Fatal(err)
	}
}

// startStandby copies p into a new directory and starts it as a standby streaming from p.
func startStandby(ctx context.Context, t *testing.T, p *pgtest.Primary) (string, *pg.Server) {
	t.Helper()
	sdir := filepath.Join(testenv.PostgresUser(t).TempDir(t), "standby")
	p.Basebackup(t, sdir)
	follow(t, p, sdir, p.Server)
	standby := p.StartCopy(t, sdir)
	if err := standby.WaitStreaming(ctx); err != nil {
		t.Fatal(err)
	}
	return sdir, standby
}

// TestSwitchoverLosesNothing plays a switchover's steps on real PostgreSQL: the primary hands
// over after a clean shutdown, the standby replays its shutdown checkpoint and promotes, the
// switch is recorded once, and the old primary follows the new one on the new timeline without
// a rewind, with every row written before and after.
func TestSwitchoverLosesNothing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	p := pgtest.StartPrimary(t, pgtest.Options{})
	p.Exec(t, "CREATE TABLE rows (id int); INSERT INTO rows SELECT generate_series(1, 100)")
	_, standby := startStandby(ctx, t, p)
	p.Exec(t, "INSERT INTO rows SELECT generate_series(101, 200)") // acknowledged just before the switchover

	old := &Node{Config: &config.Config{Name: "n1", DataDir: p.DataDir}}
	lsn, tli, err := old.handOver(ctx, p.Server)
	if err != nil {
		t.Fatal(err)
	}
	if tli != 1 || lsn == 0 {
		t.Fatalf("hand-over: checkpoint %s on timeline %d", lsn, tli)
	}
	cctx, ccancel := context.WithTimeout(ctx, time.Minute)
	defer ccancel()
	if err := catchUp(cctx, standby, tli, lsn); err != nil {
		t.Fatal(err)
	}
	sw, err := promote(ctx, standby)
	if err != nil {
		t.Fatal(err)
	}
	if sw.Timeline != 2 || pg.LSN(sw.LSN) <= lsn {
		t.Fatalf("promotion: timeline %d from %s, want timeline 2 after the checkpoint %s", sw.Timeline, pg.LSN(sw.LSN), lsn)
	}
	sw.Reason, sw.OldLeader, sw.NewLeader = "switchover", "n1", "n2"
	st := dcstest.NewMemory().Open("n2")
	for range 2 { // a second record, after a crash between the two, changes nothing
		if err := recordSwitch(ctx, st, sw); err != nil {
			t.Fatal(err)
		}
	}
	if h, _ := st.History(ctx); len(h.Switches) != 1 || h.Switches[0] != sw {
		t.Fatalf("history %+v, want the one switch %+v", h.Switches, sw)
	}
	stale := sw
	stale.NewLeader = "n3"
	if err := recordSwitch(ctx, st, stale); err == nil {
		t.Error("a second member recorded the same timeline")
	}

	conn, err := standby.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "INSERT INTO rows SELECT generate_series(201, 300)"); err != nil {
		t.Fatal(err)
	}
	// The old primary, cleanly shut down at a point the new timeline begins after, follows the
	// new primary as it is.
	follow(t, p, p.DataDir, standby)
	if err := p.Server.Start(ctx); err != nil {
		t.Fatal(err)
	}
	pgtest.WaitFor(t, p.Server, "SELECT count(*) FROM rows", "300")
	pgtest.WaitFor(t, p.Server, "SELECT received_tli FROM pg_stat_wal_receiver", strconv.Itoa(2))
}

// A primary on the cluster's first timeline that never was promoted (another tool bootstrapped
// it, as Patroni does) is taken over as it is: there was no switch of timeline, so none is
// reported and the server stays the primary it is.
func TestPromoteFirstTimelinePrimary(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	p := pgtest.StartPrimary(t, pgtest.Options{})
	sw, err := promote(ctx, p.Server)
	if err != nil {
		t.Fatalf("taking over a primary on timeline 1: %v", err)
	}
	if sw.Timeline != 1 || sw.LSN != 0 || switched(sw) {
		t.Fatalf("promote on timeline 1: %+v, want timeline 1 and no switch", sw)
	}
	if in, err := p.Server.InRecovery(ctx); err != nil || in {
		t.Fatalf("in recovery %v (%v) after the take-over, want a primary", in, err)
	}
}

// TestTakeOverPromotesOnlyWithTheKey: a candidate whose session is lost as it takes the
// leader key is not promoted — no primary runs without the key — and a later take-over, in a
// new session, promotes it and takes the key.
func TestTakeOverPromotesOnlyWithTheKey(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	p := pgtest.StartPrimary(t, pgtest.Options{})
	sdir, standby := startStandby(ctx, t, p)
	if err := p.Server.Stop(ctx, "immediate"); err != nil { // the primary is lost
		t.Fatal(err)
	}

	mem := dcstest.NewMemory()
	if err := RequestChange(ctx, mem.Open("operator"), ChangeRequest{Kind: Failover, Candidate: "n2"}); err != nil {
		t.Fatal(err)
	}
	lose := true
	mem.Inject = func(op, member string) dcstest.Fault {
		if op == "AcquireLeader" && member == "n2" && lose {
			lose = false
			return dcstest.FaultSessionLost
		}
		return dcstest.FaultNone
	}
	a := &Agent{Node: &Node{Config: &config.Config{Name: "n2", DataDir: sdir}}, srv: standby}
	a.store = mem.Open("n2")
	ch, err := ReadChange(ctx, a.store)
	if err != nil || ch == nil {
		t.Fatalf("the request: %v, %v", ch, err)
	}
	if err := a.takeOver(ctx, ch); err == nil {
		t.Fatal("the take-over succeeded without the leader key")
	}
	if in, err := standby.InRecovery(ctx); err != nil || !in {
		t.Fatalf("the candidate was promoted though it did not take the leader key (in recovery %v, %v)", in, err)
	}

	a.store = mem.Open("n2") // the driver's new session
	if ch, err = ReadChange(ctx, a.store); err != nil || ch == nil {
		t.Fatalf("the request: %v, %v", ch, err)
	}
	if err := a.takeOver(ctx, ch); err != nil {
		t.Fatal(err)
	}
	if in, err := standby.InRecovery(ctx); err != nil || in {
		t.Fatalf("the candidate is not promoted: in recovery %v (%v)", in, err)
	}
	if cl := mem.Snapshot(); cl.Leader != "n2" || cl.History.Timeline() != 2 {
		t.Fatalf("leader %q, history timeline %d; want n2 on timeline 2", cl.Leader, cl.History.Timeline())
	}
}
