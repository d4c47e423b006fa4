package engine_test

import (
	"strings"
	"testing"
	"time"

	"github.com/pgimaged/pgimaged/core/dcs"
	"github.com/pgimaged/pgimaged/core/engine"
	"github.com/pgimaged/pgimaged/core/pg"
)

// A running standby whose WAL receiver stopped because the standby went past the point where
// the leader's timeline forked off (PostgreSQL's log says so) rejoins; one whose receiver
// fails for another reason is kept running.
func TestDecideDivergedStandby(t *testing.T) {
	now := time.Date(2026, 12, 7, 2, 0, 0, 0, time.UTC)
	standby := func(failure string, rejoin ...string) engine.Observation {
		leader := dcs.Member{Name: "node2", State: dcs.StateRunning, Role: dcs.RolePrimary, ConnURL: "postgres://127.0.0.1:5433/postgres", Timeline: 2, XLogLocation: 0x5000200}
		return engine.Observation{Member: "node3", DataDir: engine.DirCluster, PostgreSQL: engine.PGStandby,
			Control: clusterDir(pg.DBInArchiveRecovery, 1, 0x5000000),
			WAL:     &pg.Position{InRecovery: true, Timeline: 1, Received: 0x5000300, Replayed: 0x5000300},
			Cluster: &dcs.Cluster{Initialize: str(sysidStr), Leader: "node2", Members: []dcs.Member{leader}},
			// The history key may be absent (a promotion by hand, or written by another tool).
			Following: "127.0.0.1:5433", RejoinMethods: rejoin, ReceiverFailure: failure, Now: now}
	}
	const forked = "new timeline 2 forked off current database system timeline 1 before current recovery point 0/5000300"
	const notChild = "could not start WAL streaming: ERROR:  requested starting point 0/5000000 on timeline 1 is not in this server's history"
	for _, tc := range []struct {
		name string
		obs  engine.Observation
		want engine.ActionKind
		stop bool
		why  string
	}{
		{"its timeline forked off before its recovery point", standby(forked, "rewind"), engine.ActRejoin, true, "forked off"},
		{"its upstream refuses its starting point", standby(notChild, "rewind"), engine.ActRejoin, true, "rejoins with [rewind]"},
		{"diverged without a rejoin method", standby(forked), engine.ActAdopt, false, "needs a reinit"},
		{"its upstream is down", standby(`could not connect to the primary server: connection to server at "127.0.0.1", port 5433 failed: Connection refused`, "rewind"),
			engine.ActAdopt, false, "kept running"},
		{"it streams", standby("", "rewind"), engine.ActAdopt, false, "kept running"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := engine.Decide(tc.obs)
			if a.Kind != tc.want || a.Stop != tc.stop || !strings.Contains(a.Reason, tc.why) {
				t.Fatalf("Decide = %s stop=%v (%s), want %s stop=%v saying %q", a.Kind, a.Stop, a.Reason, tc.want, tc.stop, tc.why)
			}
		})
	}
}
