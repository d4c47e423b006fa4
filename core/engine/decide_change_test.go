package engine_test

import (
	"strings"
	"testing"
	"time"

	"github.com/pgimaged/pgimaged/core/dcs"
	"github.com/pgimaged/pgimaged/core/engine"
	"github.com/pgimaged/pgimaged/core/pg"
)

// TestDecideChangeOfPrimary: what each member decides while a switchover or failover is
// pending, and the rules of the cluster history.
func TestDecideChangeOfPrimary(t *testing.T) {
	now := time.Date(2026, 12, 6, 21, 0, 0, 0, time.UTC)
	change := func(kind engine.ChangeKind, phase engine.ChangePhase, leader string) *engine.PendingChange {
		return &engine.PendingChange{ChangeRequest: engine.ChangeRequest{Kind: kind, Leader: leader, Candidate: "node2", Phase: phase,
			At: now.Add(-time.Second), Deadline: now.Add(time.Minute), CheckpointLSN: 0x5000028, Timeline: 1}}
	}
	node1, node2 := running("node1", dcs.RolePrimary, 1, 0x5000000), running("node2", dcs.RoleReplica, 1, 0x5000000)
	cl := func(leader string, members ...dcs.Member) *dcs.Cluster {
		return &dcs.Cluster{Initialize: str(sysidStr), Leader: leader, Members: members}
	}
	switched := func(c *dcs.Cluster, old string) *dcs.Cluster {
		c.History = dcs.History{Switches: []dcs.TimelineSwitch{{Timeline: 2, LSN: 0x5000100, Reason: "switchover", OldLeader: old, NewLeader: "node2"}}}
		return c
	}
	streams := node2
	streams.PGImaged = &dcs.MemberDetail{Upstream: "node1"}
	scheduled := func(at time.Time, candidate string) *engine.PendingChange {
		c := change(engine.Switchover, engine.PhaseAsked, "node1")
		c.Candidate, c.ScheduledAt, c.Deadline = candidate, at, at.Add(time.Minute)
		return c
	}
	pgRuns := func(obs engine.Observation, st engine.PGState, tl int) engine.Observation {
		obs.DataDir, obs.PostgreSQL = engine.DirCluster, st
		obs.Control = clusterDir(pg.DBInProduction, uint32(tl), 0x5000000)
		obs.WAL = &pg.Position{InRecovery: st == engine.PGStandby, Timeline: tl, Received: 0x5000000, Replayed: 0x5000000}
		return obs
	}
	cases := []struct {
		name string
		obs  engine.Observation
		want engine.ActionKind
		why  string // a piece of the reason
	}{
		{"the leader of an asked switchover hands over",
			pgRuns(engine.Observation{Member: "node1", Cluster: cl("node1", node1, node2), Change: change(engine.Switchover, engine.PhaseAsked, "node1"), Now: now}, engine.PGPrimary, 1),
			engine.ActHandOver, "shut down cleanly"},
		{"the candidate waits while the leader has not handed over",
			pgRuns(engine.Observation{Member: "node2", Cluster: cl("node1", node1, node2), Change: change(engine.Switchover, engine.PhaseAsked, "node1"), Now: now}, engine.PGStandby, 1),
			engine.ActAdopt, "kept running"},
		{"the candidate takes over once the leader handed over",
			pgRuns(engine.Observation{Member: "node2", Cluster: cl("", node2), Change: change(engine.Switchover, engine.PhaseDemoted, "node1"), Now: now}, engine.PGStandby, 1),
			engine.ActTakeOver, "promotes"},
		{"the candidate waits while the old leader, handed over, still gives up the key",
			pgRuns(engine.Observation{Member: "node2", Cluster: cl("node1", node1, node2), Change: change(engine.Switchover, engine.PhaseDemoted, "node1"), Now: now}, engine.PGStandby, 1),
			engine.ActWait, "giving up the leader key"},
		{"the old leader waits, stopped, for the candidate",
			engine.Observation{Member: "node1", DataDir: engine.DirCluster, Control: clusterDir(pg.DBShutdowned, 1, 0x5000028), Led: true,
				Cluster: cl("", node2), Change: change(engine.Switchover, engine.PhaseDemoted, "node1"), Now: now},
			engine.ActWait, "waiting for it to take the leader key"},
		{"the old leader aborts past the deadline",
			engine.Observation{Member: "node1", DataDir: engine.DirCluster, Control: clusterDir(pg.DBShutdowned, 1, 0x5000028), Led: true,
				Cluster: cl("", node2), Change: change(engine.Switchover, engine.PhaseDemoted, "node1"), Now: now.Add(2 * time.Minute)},
			engine.ActAbortChange, "did not take over"},
		{"after an abort the old leader starts again as the primary",
			engine.Observation{Member: "node1", DataDir: engine.DirCluster, Control: clusterDir(pg.DBShutdowned, 1, 0x5000028), Led: true,
				Cluster: cl("", node2), Change: func() *engine.PendingChange { c := change(engine.Switchover, engine.PhaseAborted, "node1"); return c }(), Now: now},
			engine.ActAdopt, "takes the leader key"},
		{"a failover's candidate takes over when it is the most advanced",
			pgRuns(engine.Observation{Member: "node2", Cluster: cl("", node2), Change: change(engine.Failover, engine.PhaseAsked, ""), Now: now}, engine.PGStandby, 1),
			engine.ActTakeOver, "promotes"},
		{"a failover's candidate aborts it while the server it streams from still runs as a primary",
			pgRuns(engine.Observation{Member: "node2", Cluster: cl("", node2), Change: change(engine.Failover, engine.PhaseAsked, ""),
				Following: "127.0.0.1:5432", UpstreamPrimary: "127.0.0.1:5432", Now: now}, engine.PGStandby, 1),
			engine.ActAbortChange, "127.0.0.1:5432, still runs as a primary"},
		{"a forced failover aborts too while the old primary's server runs",
			pgRuns(engine.Observation{Member: "node2", Cluster: cl("", node2), Change: func() *engine.PendingChange {
				c := change(engine.Failover, engine.PhaseAsked, "")
				c.Force = true
				return c
			}(), Following: "127.0.0.1:5432", UpstreamPrimary: "127.0.0.1:5432", Now: now}, engine.PGStandby, 1),
			engine.ActAbortChange, "still runs as a primary"},
		{"a failover's candidate that is behind, not forced, aborts it",
			pgRuns(engine.Observation{Member: "node2", Cluster: cl("", node2, running("node3", dcs.RoleReplica, 1, 0x6000000)),
				Change: change(engine.Failover, engine.PhaseAsked, ""), Now: now}, engine.PGStandby, 1),
			engine.ActAbortChange, "not the most advanced"},
		{"a failover's candidate restarted mid-promotion, its member key not yet published again, takes over",
			pgRuns(engine.Observation{Member: "node2", Cluster: cl("", running("node3", dcs.RoleReplica, 1, 0x4000000)),
				Change: change(engine.Failover, engine.PhasePromoting, ""), Now: now}, engine.PGStandby, 1),
			engine.ActTakeOver, "promotes"},
		{"a failover's candidate restarted mid-promotion, its member key still saying promoting, takes over",
			pgRuns(engine.Observation{Member: "node2", Cluster: cl("", dcs.Member{Name: "node2", State: engine.StatePromoting, Role: dcs.RoleReplica, Timeline: 1, XLogLocation: 0x5000000},
				running("node3", dcs.RoleReplica, 1, 0x5000000)),
				Change: change(engine.Failover, engine.PhasePromoting, ""), Now: now}, engine.PGStandby, 1),
			engine.ActTakeOver, "promotes"},
		{"a failover's candidate restarted, its member key not yet published again, behind another member aborts",
			pgRuns(engine.Observation{Member: "node2", Cluster: cl("", running("node3", dcs.RoleReplica, 1, 0x6000000)),
				Change: change(engine.Failover, engine.PhaseAsked, ""), Now: now}, engine.PGStandby, 1),
			engine.ActAbortChange, "not the most advanced"},
		{"a failover's candidate on a timeline older than the history's newest aborts",
			pgRuns(engine.Observation{Member: "node2", Cluster: switched(cl("", node2), "node1"),
				Change: change(engine.Failover, engine.PhaseAsked, ""), Now: now}, engine.PGStandby, 1),
			engine.ActAbortChange, "primary moved on without it"},
		{"a failover's candidate aborts when another member holds the key",
			pgRuns(engine.Observation{Member: "node2", Cluster: cl("node3", node2, running("node3", dcs.RolePrimary, 1, 0x5000000)),
				Change: change(engine.Failover, engine.PhaseAsked, ""), Now: now}, engine.PGStandby, 1),
			engine.ActAbortChange, "node3 holds the leader key"},
		{"while a change is pending no other member takes a free key",
			engine.Observation{Member: "node1", DataDir: engine.DirCluster, Control: clusterDir(pg.DBShutdowned, 1, 0x5000028), Led: true,
				Cluster: cl("", node2), Change: change(engine.Failover, engine.PhaseAsked, ""), Now: now},
			engine.ActWait, "change of primary to node2 is pending"},
		{"a directory behind the history never starts as the primary, marked led or not",
			engine.Observation{Member: "node1", DataDir: engine.DirCluster, Control: clusterDir(pg.DBInProduction, 1, 0x5000028), Led: true,
				Cluster: switched(cl(""), "node1"), Now: now},
			engine.ActWait, "primary moved on without it"},
		{"a primary running behind the history is fenced",
			pgRuns(engine.Observation{Member: "node1", Led: true, Cluster: switched(cl(""), "node1"), Now: now}, engine.PGPrimary, 1),
			engine.ActFence, "never takes the leader key again"},
		{"the clean end of a switchover follows the new primary without a rewind",
			engine.Observation{Member: "node1", DataDir: engine.DirCluster, Control: clusterDir(pg.DBShutdowned, 1, 0x5000028),
				Cluster: switched(cl("node2", running("node2", dcs.RolePrimary, 2, 0x5000200)), "node1"), RejoinMethods: []string{"rewind"}, Now: now},
			engine.ActAdopt, "follows the new primary as it is"},
		{"a former primary that crashed rejoins by its rejoin methods",
			engine.Observation{Member: "node1", DataDir: engine.DirCluster, Control: clusterDir(pg.DBInProduction, 1, 0x5000028),
				Cluster: switched(cl("node2", running("node2", dcs.RolePrimary, 2, 0x5000200)), "node1"), RejoinMethods: []string{"rewind"}, Now: now},
			engine.ActRejoin, "rejoins with [rewind]"},
		{"without rejoin methods it needs a reinit",
			engine.Observation{Member: "node1", DataDir: engine.DirCluster, Control: clusterDir(pg.DBInProduction, 1, 0x5000028),
				Cluster: switched(cl("node2", running("node2", dcs.RolePrimary, 2, 0x5000200)), "node1"), Now: now},
			engine.ActReinit, "needs a reinit"},
		{"after the rejoin methods failed, rejoin = reimage re-clones it",
			engine.Observation{Member: "node1", DataDir: engine.DirCluster, Control: clusterDir(pg.DBInProduction, 1, 0x5000028), NeedsReinit: true,
				Cluster: switched(cl("node2", running("node2", dcs.RolePrimary, 2, 0x5000200)), "node1"), RejoinMethods: []string{"rewind"}, RejoinFailed: true, Reimage: true, Now: now},
			engine.ActReclone, "replica methods replace"},
		{"a standby that received past the switch point rejoins",
			func() engine.Observation {
				o := pgRuns(engine.Observation{Member: "node3", Cluster: switched(cl("node2", running("node2", dcs.RolePrimary, 2, 0x5000200)), "node1"),
					RejoinMethods: []string{"rewind"}, Following: "127.0.0.1:5432", Now: now}, engine.PGStandby, 1)
				o.WAL.Received, o.WAL.Receiving = 0x5000300, true
				return o
			}(),
			engine.ActRejoin, "past the point"},
		{"a standby following the old leader's address is re-pointed",
			pgRuns(engine.Observation{Member: "node3", Cluster: cl("node2", dcs.Member{Name: "node2", State: dcs.StateRunning, Role: dcs.RolePrimary, ConnURL: "postgres://127.0.0.1:5433/postgres", Timeline: 1, XLogLocation: 0x5000000}),
				Following: "127.0.0.1:5432", Now: now}, engine.PGStandby, 1),
			engine.ActRepoint, "should follow node2"},
		{"a standby following the leader is left alone",
			pgRuns(engine.Observation{Member: "node3", Cluster: cl("node2", dcs.Member{Name: "node2", State: dcs.StateRunning, Role: dcs.RolePrimary, ConnURL: "postgres://127.0.0.1:5433/postgres", Timeline: 1, XLogLocation: 0x5000000}),
				Following: "127.0.0.1:5433", Now: now}, engine.PGStandby, 1),
			engine.ActAdopt, "kept running"},
		{"replicatefrom names the upstream instead of the leader",
			pgRuns(engine.Observation{Member: "node3", ReplicateFrom: "node4", Cluster: cl("node2",
				dcs.Member{Name: "node2", State: dcs.StateRunning, Role: dcs.RolePrimary, ConnURL: "postgres://127.0.0.1:5433/postgres"},
				dcs.Member{Name: "node4", State: dcs.StateRunning, Role: dcs.RoleReplica, ConnURL: "postgres://127.0.0.1:5434/postgres"}),
				Following: "127.0.0.1:5433", Now: now}, engine.PGStandby, 1),
			engine.ActRepoint, "should follow node4"},
		{"the leader of a switchover scheduled later leads on",
			pgRuns(engine.Observation{Member: "node1", Cluster: cl("node1", node1, streams), Change: scheduled(now.Add(time.Hour), "node2"), Now: now}, engine.PGPrimary, 1),
			engine.ActAdopt, "runs as a primary here"},
		{"the leader of a scheduled switchover hands over when its time comes",
			pgRuns(engine.Observation{Member: "node1", Cluster: cl("node1", node1, streams), Change: scheduled(now.Add(-time.Second), "node2"), Now: now, MaxLag: 1 << 20}, engine.PGPrimary, 1),
			engine.ActHandOver, "scheduled at 2026-12-06T20:59:59Z"},
		{"the leader of a scheduled switchover naming no candidate hands over to the most advanced replica",
			pgRuns(engine.Observation{Member: "node1", Cluster: cl("node1", node1, streams, func() dcs.Member {
				m := running("node3", dcs.RoleReplica, 1, 0x4000000)
				m.PGImaged = &dcs.MemberDetail{Upstream: "node1"}
				return m
			}()), Change: scheduled(now.Add(-time.Second), ""), Now: now, MaxLag: 64 << 20}, engine.PGPrimary, 1),
			engine.ActHandOver, "switchover to node2 scheduled"},
		{"the leader of a scheduled switchover whose candidate no longer streams aborts it",
			pgRuns(engine.Observation{Member: "node1", Cluster: cl("node1", node1, node2), Change: scheduled(now.Add(-time.Second), "node2"), Now: now, MaxLag: 1 << 20}, engine.PGPrimary, 1),
			engine.ActAbortChange, "at its scheduled time: member node2 does not stream"},
		{"while paused a due scheduled switchover waits",
			pgRuns(engine.Observation{Member: "node1", Cluster: cl("node1", node1, streams), Change: scheduled(now.Add(-time.Second), "node2"), Now: now, Paused: true}, engine.PGPrimary, 1),
			engine.ActWait, "maintenance mode"},
		{"the candidate of a scheduled switchover waits for its time",
			pgRuns(engine.Observation{Member: "node2", Cluster: cl("node1", node1, streams), Change: scheduled(now.Add(time.Hour), "node2"), Now: now}, engine.PGStandby, 1),
			engine.ActAdopt, "kept running"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := engine.Decide(tc.obs)
			if a.Kind != tc.want || !strings.Contains(a.Reason, tc.why) {
				t.Fatalf("Decide = %s (%s), want %s saying %q", a.Kind, a.Reason, tc.want, tc.why)
			}
		})
	}
}
