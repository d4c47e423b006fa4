package engine_test

import (
	"strings"
	"testing"

	"github.com/pgimaged/pgimaged/core/dcs"
	"github.com/pgimaged/pgimaged/core/engine"
	"github.com/pgimaged/pgimaged/core/pg"
)

// A pending reinit request is carried out on a replica of this cluster and refused (the
// decision going on as without it) on the leader, on a primary, on another cluster's
// directory and on files pgimaged did not create.
func TestDecideReinitRequest(t *testing.T) {
	req := &engine.ReinitRequest{Methods: []string{"basebackup"}}
	node1 := running("node1", dcs.RolePrimary, 1, 0x5000000)
	node2 := running("node2", dcs.RoleReplica, 1, 0x5000000)
	led := &dcs.Cluster{Initialize: str(sysidStr), Leader: "node1", Members: []dcs.Member{node1, node2}}
	replicaDir := clusterDir(pg.DBInArchiveRecovery, 1, 0x4000000)
	foreign := replicaDir
	foreign.SystemIdentifier = 42
	cases := []struct {
		name    string
		obs     engine.Observation
		want    engine.ActionKind
		refused string // part of the refusal; "" when the reinit goes ahead
	}{
		{
			name: "a running replica: re-cloned",
			obs:  engine.Observation{Member: "node2", Cluster: led, DataDir: engine.DirCluster, Control: replicaDir, Standby: true, PostgreSQL: engine.PGStandby},
			want: engine.ActReclone,
		},
		{
			name: "a directory that needs a reinit: re-cloned",
			obs:  engine.Observation{Member: "node2", Cluster: led, DataDir: engine.DirCluster, Control: clusterDir(pg.DBShutdowned, 1, 0x6000000), NeedsReinit: true},
			want: engine.ActReclone,
		},
		{
			name: "an empty directory: cloned",
			obs:  engine.Observation{Member: "node2", Cluster: led, Source: "node1"},
			want: engine.ActReclone,
		},
		{
			name:    "the leader: refused, kept running",
			obs:     engine.Observation{Member: "node1", Cluster: led, DataDir: engine.DirCluster, Control: clusterDir(pg.DBInProduction, 1, 0x5000000), PostgreSQL: engine.PGPrimary, Led: true},
			want:    engine.ActAdopt,
			refused: "leader key",
		},
		{
			name:    "a primary without the leader key: refused",
			obs:     engine.Observation{Member: "node2", Cluster: &dcs.Cluster{Initialize: str(sysidStr)}, DataDir: engine.DirCluster, Control: clusterDir(pg.DBInProduction, 1, 0x5000000), PostgreSQL: engine.PGPrimary, Led: true},
			refused: "primary",
		},
		{
			name:    "another cluster's directory: refused",
			obs:     engine.Observation{Member: "node2", Cluster: led, DataDir: engine.DirCluster, Control: foreign, Standby: true},
			want:    engine.ActRefuse,
			refused: "system identifier",
		},
		{
			name:    "files pgimaged did not create: refused",
			obs:     engine.Observation{Member: "node2", Cluster: led, DataDir: engine.DirForeign, DirProblem: "foreign files"},
			want:    engine.ActRefuse,
			refused: "foreign files",
		},
		{
			name:    "no cluster in the DCS: refused",
			obs:     engine.Observation{Member: "node2", Cluster: &dcs.Cluster{}},
			want:    engine.ActBootstrap,
			refused: "no cluster",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			without := engine.Decide(tc.obs)
			tc.obs.ReinitRequested = req
			got := engine.Decide(tc.obs)
			if tc.refused == "" {
				if got.Kind != engine.ActReclone || got.State != engine.StateReinitializing || got.ReinitRefused != "" {
					t.Fatalf("Decide = %s (state %q, refused %q), want a reclone", got.Kind, got.State, got.ReinitRefused)
				}
				return
			}
			if !strings.Contains(got.ReinitRefused, tc.refused) {
				t.Errorf("refusal %q does not say %q", got.ReinitRefused, tc.refused)
			}
			if got.Kind != without.Kind || got.Reason != without.Reason {
				t.Errorf("a refused request changed the decision: %s (%s), without it %s (%s)", got.Kind, got.Reason, without.Kind, without.Reason)
			}
			if tc.want != "" && got.Kind != tc.want {
				t.Errorf("Decide = %s, want %s", got.Kind, tc.want)
			}
		})
	}
}

// A refused reinit is published as a typed refusal in the member's detail, for the CLI that
// waits for the request; last_error still says it in words for readers that predate the field.
func TestStepPublishesReinitRefusal(t *testing.T) {
	node1 := running("node1", dcs.RolePrimary, 1, 0x5000000)
	led := &dcs.Cluster{Initialize: str(sysidStr), Leader: "node1", Members: []dcs.Member{node1}}
	obs := engine.Observation{Member: "node1", Cluster: led, DataDir: engine.DirCluster, Control: clusterDir(pg.DBInProduction, 1, 0x5000000),
		PostgreSQL: engine.PGPrimary, Led: true, ReinitRequested: &engine.ReinitRequest{Methods: []string{"basebackup"}}}
	_, effs := engine.Step(engine.State{Name: "node1", SysID: sysidStr}, obs)
	var refused *dcs.Refusal
	lastErr := ""
	for _, e := range effs {
		if p, ok := e.(engine.Publish); ok && p.Member.PGImaged != nil && p.Member.PGImaged.Refused != nil {
			refused, lastErr = p.Member.PGImaged.Refused, p.Member.PGImaged.LastError
		}
	}
	if refused == nil || refused.Request != dcs.RequestReinit || !strings.Contains(refused.Reason, "leader key") {
		t.Fatalf("published refusal %+v, want a reinit refused for the leader key (effects %s)", refused, kinds(effs))
	}
	if lastErr != "reinit refused: "+refused.Reason {
		t.Errorf("last_error %q does not say the refusal", lastErr)
	}
}
