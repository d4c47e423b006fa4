package engine_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/pgimaged/pgimaged/core/dcs"
	"github.com/pgimaged/pgimaged/core/engine"
	"github.com/pgimaged/pgimaged/core/pg"
)

const (
	sysid      = 7310000000000000001
	sysidStr   = "7310000000000000001"
	otherSysid = "7310000000000000999"
)

func str(s string) *string { return &s }

// running is a published member that runs PostgreSQL.
func running(name, role string, tl int, lsn int64) dcs.Member {
	return dcs.Member{Name: name, State: dcs.StateRunning, Role: role, ConnURL: "postgres://127.0.0.1:5432/postgres", Timeline: tl, XLogLocation: lsn}
}

// clusterDir is a complete data directory of the cluster, stopped, that last ran as a primary.
func clusterDir(state pg.DBState, tl uint32, lsn pg.LSN) pg.ControlData {
	return pg.ControlData{SystemIdentifier: sysid, ControlVersion: 1300, HasPosition: true, State: state, Checkpoint: lsn, Redo: lsn, Timeline: tl}
}

func TestDecide(t *testing.T) {
	led := func(leader string, members ...dcs.Member) *dcs.Cluster {
		return &dcs.Cluster{Initialize: str(sysidStr), Leader: leader, Members: members}
	}
	node1 := running("node1", dcs.RolePrimary, 1, 0x5000000)
	cases := []struct {
		name  string
		obs   engine.Observation
		want  engine.ActionKind
		check func(t *testing.T, a engine.Action)
	}{
		{
			name: "empty directory, no initialize: bootstrap",
			obs:  engine.Observation{Cluster: &dcs.Cluster{}},
			want: engine.ActBootstrap,
		},
		{
			name: "empty directory, DCS unreadable: wait, never bootstrap",
			obs:  engine.Observation{DCSError: dcs.ErrUnavailable},
			want: engine.ActWait,
		},
		{
			name: "empty directory, another member bootstrapping: wait",
			obs:  engine.Observation{Cluster: &dcs.Cluster{Initialize: str("")}},
			want: engine.ActWait,
		},
		{
			name: "empty directory, cluster exists, a source runs: clone",
			obs:  engine.Observation{Cluster: led("node1", node1), Source: "node1"},
			want: engine.ActClone,
			check: func(t *testing.T, a engine.Action) {
				if a.SystemIdentifier != sysidStr {
					t.Errorf("clone of system identifier %q, want the DCS's", a.SystemIdentifier)
				}
			},
		},
		{
			name: "empty directory, no source, no no_master method: wait",
			obs:  engine.Observation{Cluster: led("")},
			want: engine.ActWait,
		},
		{
			name: "empty directory, no source, a no_master method: clone",
			obs:  engine.Observation{Cluster: led(""), NoMaster: true},
			want: engine.ActClone,
		},
		{
			name: "pgimaged's own leftover: cleaned, never adopted",
			obs:  engine.Observation{Cluster: led("node1", node1), DataDir: engine.DirLeftover, Control: clusterDir(pg.DBInProduction, 1, 0x3000000)},
			want: engine.ActClean,
		},
		{
			name: "keep_data leftovers of a replica method: the next clone attempt gets them, never adoption",
			obs:  engine.Observation{Cluster: led("node1", node1), DataDir: engine.DirLeftover, KeepLeftover: true, Source: "node1", Control: clusterDir(pg.DBInProduction, 1, 0x3000000)},
			want: engine.ActClone,
		},
		{
			name: "keep_data leftovers while no cluster exists: cleaned before a bootstrap",
			obs:  engine.Observation{Cluster: &dcs.Cluster{}, DataDir: engine.DirLeftover, KeepLeftover: true},
			want: engine.ActClean,
		},
		{
			name: "keep_data leftovers with a server running in them: stopped first",
			obs:  engine.Observation{Cluster: led("node1", node1), DataDir: engine.DirLeftover, KeepLeftover: true, Source: "node1", PostgreSQL: engine.PGPrimary},
			want: engine.ActClean,
		},
		{
			name: "a leftover with a server running in it: stopped, then cleaned",
			obs:  engine.Observation{Cluster: led("node1", node1), DataDir: engine.DirLeftover, PostgreSQL: engine.PGPrimary},
			want: engine.ActClean,
			check: func(t *testing.T, a engine.Action) {
				if !a.Stop {
					t.Error("the server in the leftover is not stopped first")
				}
			},
		},
		{
			name: "files pgimaged did not create: refused",
			obs:  engine.Observation{Cluster: led("node1", node1), DataDir: engine.DirForeign},
			want: engine.ActRefuse,
		},
		{
			name: "a cluster of another system identifier: refused",
			obs: engine.Observation{Cluster: &dcs.Cluster{Initialize: str(otherSysid)}, DataDir: engine.DirCluster,
				Control: clusterDir(pg.DBShutdowned, 1, 0x3000000)},
			want: engine.ActRefuse,
		},
		{
			name: "a damaged pg_control: refused",
			obs:  engine.Observation{Cluster: led(""), DataDir: engine.DirCluster, ControlError: pg.ErrControlFileCorrupt},
			want: engine.ActRefuse,
		},
		{
			name: "a cluster, DCS unreadable: wait, nothing started",
			obs:  engine.Observation{DCSError: dcs.ErrUnavailable, DataDir: engine.DirCluster, Control: clusterDir(pg.DBShutdowned, 1, 0x3000000)},
			want: engine.ActWait,
		},
		{
			name: "a primary directory, the DCS empty: claim initialize and the leader key, then start as primary",
			obs:  engine.Observation{Member: "node1", Cluster: &dcs.Cluster{}, DataDir: engine.DirCluster, Control: clusterDir(pg.DBShutdowned, 1, 0x3000000)},
			want: engine.ActAdopt,
			check: func(t *testing.T, a engine.Action) {
				if a.Start != engine.StartPrimary || !a.Primary || !a.ClaimInitialize {
					t.Errorf("adopt: %+v, want a primary start that claims initialize", a)
				}
			},
		},
		{
			name: "a primary directory this member led with, no leader: take the key, then start as primary",
			obs:  engine.Observation{Member: "node1", Cluster: led(""), DataDir: engine.DirCluster, Led: true, Control: clusterDir(pg.DBShutdowned, 1, 0x3000000)},
			want: engine.ActAdopt,
			check: func(t *testing.T, a engine.Action) {
				if a.Start != engine.StartPrimary || !a.Primary || a.ClaimInitialize {
					t.Errorf("adopt: %+v, want a primary start", a)
				}
			},
		},
		{
			// The primary may run elsewhere with its agent down and its keys expired.
			name: "a primary directory this member never led with, no leader: wait",
			obs:  engine.Observation{Member: "node3", Cluster: led(""), DataDir: engine.DirCluster, Control: clusterDir(pg.DBShutdowned, 1, 0x3000000)},
			want: engine.ActWait,
		},
		{
			name: "a primary directory, the leader key names this member: start as primary",
			obs:  engine.Observation{Member: "node1", Cluster: led("node1"), DataDir: engine.DirCluster, Control: clusterDir(pg.DBShutdowned, 1, 0x3000000)},
			want: engine.ActAdopt,
			check: func(t *testing.T, a engine.Action) {
				if a.Start != engine.StartPrimary || !a.Primary {
					t.Errorf("adopt: %+v, want a primary start", a)
				}
			},
		},
		{
			name: "a primary directory, no leader but another member runs a primary: wait",
			obs:  engine.Observation{Member: "node2", Cluster: led("", node1), DataDir: engine.DirCluster, Control: clusterDir(pg.DBShutdowned, 1, 0x3000000)},
			want: engine.ActWait,
		},
		{
			name: "a primary directory while another member bootstraps: wait",
			obs:  engine.Observation{Member: "node2", Cluster: &dcs.Cluster{Initialize: str("")}, DataDir: engine.DirCluster, Control: clusterDir(pg.DBShutdowned, 1, 0x3000000)},
			want: engine.ActWait,
		},
		{
			name: "a standby directory: started as a standby, no leader key",
			obs: engine.Observation{Member: "node2", Cluster: led("node1", node1), DataDir: engine.DirCluster, Standby: true,
				Control: clusterDir(pg.DBShutdownedInRecovery, 1, 0x3000000)},
			want: engine.ActAdopt,
			check: func(t *testing.T, a engine.Action) {
				if a.Start != engine.StartStandby || a.Primary || a.Rejoin {
					t.Errorf("adopt: %+v, want a standby start", a)
				}
			},
		},
		{
			name: "a running standby: kept running",
			obs: engine.Observation{Member: "node2", Cluster: led("node1", node1), DataDir: engine.DirCluster, Standby: true, PostgreSQL: engine.PGStandby,
				Control: clusterDir(pg.DBInArchiveRecovery, 1, 0x3000000)},
			want: engine.ActAdopt,
			check: func(t *testing.T, a engine.Action) {
				if a.Start != engine.KeepRunning || a.Primary {
					t.Errorf("adopt: %+v, want to keep a standby running", a)
				}
			},
		},
		{
			name: "a running primary holding the leader key: kept",
			obs: engine.Observation{Member: "node1", Cluster: led("node1", node1), DataDir: engine.DirCluster, PostgreSQL: engine.PGPrimary,
				Control: clusterDir(pg.DBInProduction, 1, 0x3000000)},
			want: engine.ActAdopt,
			check: func(t *testing.T, a engine.Action) {
				if a.Start != engine.KeepRunning || !a.Primary {
					t.Errorf("adopt: %+v, want to keep the primary", a)
				}
			},
		},
		{
			name: "a running primary while another member leads: fenced",
			obs: engine.Observation{Member: "node2", Cluster: led("node1", node1), DataDir: engine.DirCluster, PostgreSQL: engine.PGPrimary,
				Control: clusterDir(pg.DBInProduction, 1, 0x3000000)},
			want: engine.ActFence,
			check: func(t *testing.T, a engine.Action) {
				if !strings.Contains(a.Reason, "node1") {
					t.Errorf("the fence's reason does not name the leader: %q", a.Reason)
				}
			},
		},
		{
			name: "a running primary this member led with, no leader: takes the key and keeps running",
			obs: engine.Observation{Member: "node1", Cluster: led(""), DataDir: engine.DirCluster, PostgreSQL: engine.PGPrimary, Led: true,
				Control: clusterDir(pg.DBInProduction, 1, 0x3000000)},
			want: engine.ActAdopt,
		},
		{
			name: "a running primary this member never led with, no leader: the key is not taken",
			obs: engine.Observation{Member: "node3", Cluster: led(""), DataDir: engine.DirCluster, PostgreSQL: engine.PGPrimary,
				Control: clusterDir(pg.DBInProduction, 1, 0x3000000)},
			want: engine.ActWait,
		},
		{
			// Whether the server it was copied from went its own way cannot be told.
			name: "a base backup copy without standby.signal while another member leads: needs reinit",
			obs: engine.Observation{Member: "node2", Cluster: led("node1", node1), DataDir: engine.DirCluster, BackupLabel: true,
				Control: clusterDir(pg.DBInProduction, 1, 0x3000000)},
			want: engine.ActReinit,
		},
		{
			name: "a former standby without standby.signal while another member leads: follows the leader",
			obs: engine.Observation{Member: "node2", Cluster: led("node1", node1), DataDir: engine.DirCluster,
				Control: clusterDir(pg.DBShutdownedInRecovery, 1, 0x4000000)},
			want: engine.ActAdopt,
			check: func(t *testing.T, a engine.Action) {
				if a.Start != engine.StartStandby || !a.Rejoin || a.Primary {
					t.Errorf("adopt: %+v, want a standby of the leader", a)
				}
			},
		},
		{
			name: "a former standby past the leader's position: needs reinit",
			obs: engine.Observation{Member: "node2", Cluster: led("node1", node1), DataDir: engine.DirCluster,
				Control: clusterDir(pg.DBShutdownedInRecovery, 1, 0x6000000)},
			want: engine.ActReinit,
		},
		{
			name: "a directory that ran as a primary while another member leads: needs reinit",
			obs: engine.Observation{Member: "node2", Cluster: led("node1", node1), DataDir: engine.DirCluster,
				Control: clusterDir(pg.DBShutdowned, 1, 0x3000000)},
			want: engine.ActReinit,
		},
		{
			name: "a former standby on another timeline than the leader's: needs reinit",
			obs: engine.Observation{Member: "node2", Cluster: led("node1", node1), DataDir: engine.DirCluster,
				Control: clusterDir(pg.DBShutdownedInRecovery, 2, 0x3000000)},
			want: engine.ActReinit,
		},
		{
			name: "a copy with recovery.signal (it would promote) while another member leads: needs reinit",
			obs: engine.Observation{Member: "node2", Cluster: led("node1", node1), DataDir: engine.DirCluster, Standby: false, EndingRecovery: true,
				Control: clusterDir(pg.DBShutdowned, 1, 0x3000000)},
			want: engine.ActReinit,
		},
		{
			name: "a directory marked as needing reinit, no leader: still not started",
			obs: engine.Observation{Member: "node2", Cluster: led(""), DataDir: engine.DirCluster, NeedsReinit: true,
				Control: clusterDir(pg.DBShutdowned, 1, 0x3000000)},
			want: engine.ActReinit,
		},
		{
			name: "a base backup copy without standby.signal and no leader: never started as a primary",
			obs: engine.Observation{Member: "node2", Cluster: led(""), DataDir: engine.DirCluster, BackupLabel: true,
				Control: clusterDir(pg.DBInProduction, 1, 0x3000000)},
			want: engine.ActWait,
		},
		{
			name: "a primary-looking copy while the leader has not published its position: wait",
			obs: engine.Observation{Member: "node2", Cluster: led("node1"), DataDir: engine.DirCluster, BackupLabel: true,
				Control: clusterDir(pg.DBInProduction, 1, 0x3000000)},
			want: engine.ActWait,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.obs.DataDir == engine.DirCluster && tc.obs.Control.SystemIdentifier == 0 && tc.obs.ControlError == nil {
				t.Fatal("bad case: a cluster without a system identifier")
			}
			got := engine.Decide(tc.obs)
			if got.Kind != tc.want {
				t.Fatalf("Decide: %s (%s), want %s", got.Kind, got.Reason, tc.want)
			}
			if got.Reason == "" {
				t.Error("the decision gives no reason")
			}
			if tc.check != nil {
				tc.check(t, got)
			}
			// Invariant 1: a primary starts only with the leader key naming this member or
			// free to take (then the agent takes it first), never while another member leads.
			if got.Kind == engine.ActAdopt && got.Primary && tc.obs.Cluster != nil {
				if l := tc.obs.Cluster.Leader; l != "" && l != tc.obs.Member {
					t.Errorf("decided to run a primary while %s leads", l)
				}
			}
		})
	}
}

func TestDecideIsDeterministic(t *testing.T) {
	obs := engine.Observation{Member: "node2", DataDir: engine.DirCluster, DCSError: errors.New("down"), Control: clusterDir(pg.DBShutdowned, 1, 1)}
	if a, b := engine.Decide(obs), engine.Decide(obs); a != b {
		t.Errorf("two decisions on one observation differ: %+v, %+v", a, b)
	}
}
