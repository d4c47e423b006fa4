package engine_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/pgimaged/pgimaged/core/config"
	"github.com/pgimaged/pgimaged/core/dcs"
	"github.com/pgimaged/pgimaged/core/engine"
	"github.com/pgimaged/pgimaged/sdk"
)

// copyFixture puts the PostgreSQL 15 cluster fixture (PG_VERSION and pg_control, state "shut
// down") into dir.
func copyFixture(t *testing.T, dir string) {
	t.Helper()
	src := "../pg/testdata/pg15-cluster"
	for _, f := range []string{"PG_VERSION", "global/pg_control"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, f)), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func fixtureSysidText(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../pg/testdata/pg15-cluster.sysid")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// Plan reports the decision `run` would take, with the methods of that path asked of the
// plugins (served in-process here).
func TestPlanReportsTheDecision(t *testing.T) {
	newNode := func(t *testing.T) *engine.Node {
		c := config.Config{Scope: "batman", Name: "node2", DataDir: filepath.Join(t.TempDir(), "data")}
		c.PostgreSQL.Listen = "127.0.0.1:1"
		cfg := config.New(c)
		return &engine.Node{Config: cfg, Logger: hclog.NewNullLogger(),
			Plugins: inProcess{t: t, plugins: map[string]sdk.Plugin{"initdb": initdbPlugin{}}}}
	}
	leader := dcs.Member{Name: "node1", State: dcs.StateRunning, Role: dcs.RolePrimary, ConnURL: "postgres://127.0.0.1:5432/postgres", Timeline: 1, XLogLocation: 1 << 40}

	t.Run("bootstrap, with the method's commands", func(t *testing.T) {
		n := newNode(t)
		p := n.Plan(t.Context(), &dcs.Cluster{}, nil)
		if p.Path != "bootstrap" || len(p.Methods) != 1 || len(p.Methods[0].Commands) != 1 {
			t.Fatalf("plan: %+v", p)
		}
		if argv := p.Methods[0].Commands[0].Argv; !strings.HasSuffix(argv[0], "initdb") {
			t.Errorf("planned command %q", argv)
		}
	})
	t.Run("a copy of the primary while another member leads needs reinit", func(t *testing.T) {
		n := newNode(t)
		copyFixture(t, n.Config.DataDir)
		id := fixtureSysidText(t)
		p := n.Plan(t.Context(), &dcs.Cluster{Initialize: &id, Leader: "node1", Members: []dcs.Member{leader}}, nil)
		if p.Path != "reinit" || p.SystemIdentifier != id {
			t.Errorf("plan: path %q (%s), system identifier %q; want reinit of %s", p.Path, p.Reason, p.SystemIdentifier, id)
		}
		if n.MarkedNeedsReinit() {
			t.Error("planning marked the directory")
		}
	})
	t.Run("pgimaged's own leftover is cleaned first, then the path after it", func(t *testing.T) {
		n := newNode(t)
		copyFixture(t, n.Config.DataDir)
		if err := os.WriteFile(n.IncompletePath(), []byte("clone\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		p := n.Plan(t.Context(), &dcs.Cluster{}, nil)
		if p.Path != "bootstrap" || !strings.Contains(p.Reason, "half-made") {
			t.Errorf("plan: path %q, reason %q; want bootstrap after cleaning", p.Path, p.Reason)
		}
		if _, err := os.Stat(filepath.Join(n.Config.DataDir, "PG_VERSION")); err != nil {
			t.Errorf("planning touched the leftover: %v", err)
		}
	})
	t.Run("a pending reinit is planned with the methods it asks for", func(t *testing.T) {
		n := newNode(t)
		id := fixtureSysidText(t)
		cl := &dcs.Cluster{Initialize: &id, Leader: "node1", Members: []dcs.Member{leader}}
		p := n.PlanReinit(t.Context(), cl, nil, &engine.ReinitRequest{Methods: []string{"archive"}})
		if p.Path != "reclone" || p.Reinit == nil || len(p.Methods) != 1 || p.Methods[0].Method != "archive" {
			t.Fatalf("plan: %+v", p)
		}
		if p.Source == "" || p.SourceWhy == "" || !strings.HasPrefix(p.Source, "node1 ") {
			t.Errorf("source %q (%s), want node1 and why", p.Source, p.SourceWhy)
		}
		if got := n.Config.PostgreSQL.CreateReplicaMethods; len(got) != 1 || got[0] != "basebackup" {
			t.Errorf("planning changed the configured methods: %v", got)
		}
		if p := n.Plan(t.Context(), cl, nil); p.Path != "clone" || p.Methods[0].Method != "basebackup" {
			t.Errorf("without the request: %+v", p)
		}
	})
}
