package engine_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/pgimaged/pgimaged/core/config"
	"github.com/pgimaged/pgimaged/core/dcs"
	"github.com/pgimaged/pgimaged/core/engine"
)

func testNode(name string) *engine.Node {
	cfg := &config.Config{Scope: "batman", Name: name, DataDir: "/var/lib/postgresql/15/" + name}
	cfg.PostgreSQL.Listen = "0.0.0.0:5432"
	cfg.PostgreSQL.Replication = config.Credentials{Username: "replicator", Password: "repl-secret"}
	cfg.ApplyDefaults()
	return &engine.Node{Config: cfg}
}

func member(name, state, role, url string, clonefrom bool) dcs.Member {
	m := dcs.Member{Name: name, State: state, Role: role, ConnURL: url}
	if clonefrom {
		m.Tags = map[string]any{"clonefrom": true}
	}
	return m
}

func withPosition(m dcs.Member, lsn int64) dcs.Member {
	m.XLogLocation = lsn
	return m
}

func TestCloneSource(t *testing.T) {
	cases := []struct {
		name    string
		cluster dcs.Cluster
		want    []string // acceptable source members; nil: no source
	}{
		{
			name: "leader when nobody is tagged",
			cluster: dcs.Cluster{Leader: "node1", Members: []dcs.Member{
				member("node1", "running", "primary", "postgres://10.0.0.1:5432/postgres", false),
				member("node2", "running", "replica", "postgres://10.0.0.2:5432/postgres", false),
			}},
			want: []string{"node1"},
		},
		{
			name: "a running clonefrom member before the leader",
			cluster: dcs.Cluster{Leader: "node1", Members: []dcs.Member{
				member("node1", "running", "primary", "postgres://10.0.0.1:5432/postgres", false),
				member("node2", "running", "replica", "postgres://10.0.0.2:5432/postgres", true),
				member("node4", "running", "replica", "postgres://10.0.0.4:5432/postgres", true),
			}},
			want: []string{"node2"},
		},
		{
			name: "of several clonefrom members, the highest WAL position, then the first name",
			cluster: dcs.Cluster{Leader: "node1", Members: []dcs.Member{
				member("node1", "running", "primary", "postgres://10.0.0.1:5432/postgres", false),
				withPosition(member("node2", "running", "replica", "postgres://10.0.0.2:5432/postgres", true), 100),
				withPosition(member("node4", "running", "replica", "postgres://10.0.0.4:5432/postgres", true), 300),
				withPosition(member("node5", "running", "replica", "postgres://10.0.0.5:5432/postgres", true), 300),
			}},
			want: []string{"node4"},
		},
		{
			name: "a clonefrom member whose conn_url cannot be read is passed over",
			cluster: dcs.Cluster{Leader: "node1", Members: []dcs.Member{
				member("node1", "running", "primary", "postgres://10.0.0.1:5432/postgres", false),
				member("node2", "running", "replica", "::not a url", true),
			}},
			want: []string{"node1"},
		},
		{
			name: "a tagged member that does not run is not a source",
			cluster: dcs.Cluster{Leader: "node1", Members: []dcs.Member{
				member("node1", "running", "primary", "postgres://10.0.0.1:5432/postgres", false),
				member("node2", "creating replica", "replica", "postgres://10.0.0.2:5432/postgres", true),
			}},
			want: []string{"node1"},
		},
		{
			name: "a leader that does not run is no source",
			cluster: dcs.Cluster{Leader: "node1", Members: []dcs.Member{
				member("node1", "stopped", "primary", "postgres://10.0.0.1:5432/postgres", false),
			}},
		},
		{
			name: "this member is never its own source",
			cluster: dcs.Cluster{Leader: "node3", Members: []dcs.Member{
				member("node3", "running", "primary", "postgres://10.0.0.3:5432/postgres", true),
			}},
		},
		{name: "no members at all", cluster: dcs.Cluster{}},
	}
	n := testNode("node3")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			seen := map[string]bool{}
			for range 20 {
				src := engine.CloneSource(n, tc.cluster)
				if src == nil {
					seen[""] = true
					continue
				}
				seen[src.Member] = true
				if src.Conn.User != "replicator" || src.Password != "repl-secret" || src.Conn.Database != "postgres" {
					t.Fatalf("source credentials: %+v", src.Conn)
				}
				if strings.Contains(src.Conn.DSN(), "repl-secret") || strings.Contains(src.Describe(), "repl-secret") {
					t.Fatalf("the connection string carries the password")
				}
			}
			if tc.want == nil {
				if len(seen) != 1 || !seen[""] {
					t.Fatalf("got sources %v, want none", seen)
				}
				return
			}
			if len(seen) != len(tc.want) {
				t.Fatalf("sources chosen %v, want only %v", seen, tc.want)
			}
			for _, w := range tc.want {
				if !seen[w] {
					t.Fatalf("source %s never chosen (chosen: %v)", w, seen)
				}
			}
		})
	}
}

func TestConnURL(t *testing.T) {
	cases := []struct{ listen, connect, want string }{
		{"127.0.0.1:5433", "", "postgres://127.0.0.1:5433/postgres"},
		{"0.0.0.0:5432", "10.0.0.5:5432", "postgres://10.0.0.5:5432/postgres"},
		{"*:5432", "", "postgres://127.0.0.1:5432/postgres"},
		{"[::1]:6432", "", "postgres://[::1]:6432/postgres"},
		{"[::]:6432", "", "postgres://[::1]:6432/postgres"},
		{"0.0.0.0:6432", "", "postgres://127.0.0.1:6432/postgres"},
	}
	for _, tc := range cases {
		n := testNode("node1")
		n.Config.PostgreSQL.Listen, n.Config.PostgreSQL.ConnectAddress = tc.listen, tc.connect
		if got := n.ConnURL(); got != tc.want {
			t.Errorf("listen %q connect %q: %s, want %s", tc.listen, tc.connect, got, tc.want)
		}
	}
}

func TestReplicaMethodsDefault(t *testing.T) {
	n := testNode("node1")
	if got := n.ReplicaMethods(); len(got) != 1 || got[0] != "basebackup" {
		t.Errorf("default methods %v", got)
	}
	n.Config.PostgreSQL.CreateReplicaMethods = []string{"wal_e", "basebackup"}
	if got := n.ReplicaMethods(); len(got) != 2 || got[0] != "wal_e" {
		t.Errorf("configured methods %v", got)
	}
	if got := n.BootstrapMethod(); got != "initdb" {
		t.Errorf("default bootstrap method %q", got)
	}
}

func TestStepErrorNamesStepAndTail(t *testing.T) {
	base := errors.New("pg_ctl: could not start server")
	err := error(&engine.StepError{Step: "start PostgreSQL", Err: base, LogTail: []string{"a", "b", "FATAL: bad setting"}})
	if !errors.Is(err, base) {
		t.Error("StepError does not wrap its cause")
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "start PostgreSQL: pg_ctl: could not start server") || !strings.Contains(msg, "FATAL: bad setting") {
		t.Errorf("message: %s", msg)
	}
}

func TestPaths(t *testing.T) {
	n := testNode("node1")
	if got := n.PgpassPath(); got != "/var/lib/postgresql/15/node1.pgpass" {
		t.Errorf("pgpass path %s: must sit beside the data directory, never in it", got)
	}
	if got := n.IncompletePath(); got != "/var/lib/postgresql/15/.node1.pgimaged-incomplete" {
		t.Errorf("incomplete marker path %s", got)
	}
}

// With several clonefrom members in any order and at any positions, `plan` names the source
// the agent's Step clones from.
func TestPlanAndRunNameTheSameSource(t *testing.T) {
	n := testNode("node9")
	n.Config.DataDir = t.TempDir() + "/data"
	n.Config.PostgreSQL.Listen = "127.0.0.1:1"
	n.Plugins = inProcess{t: t}
	id := "7300000000000000001"
	rapid.Check(t, func(rt *rapid.T) {
		cl := dcs.Cluster{Initialize: &id, Leader: "node1", Members: []dcs.Member{
			member("node1", "running", "primary", "postgres://10.0.0.1:5432/postgres", false),
		}}
		for i := range rapid.IntRange(2, 6).Draw(rt, "clonefrom members") {
			m := member(fmt.Sprintf("node%d", i+2), rapid.SampledFrom([]string{"running", "running", "starting"}).Draw(rt, "state"),
				"replica", fmt.Sprintf("postgres://10.0.0.%d:5432/postgres", i+2), true)
			m.XLogLocation = int64(rapid.IntRange(0, 3).Draw(rt, "position"))
			cl.Members = append(cl.Members, m)
		}
		rapid.Permutation(cl.Members).Draw(rt, "order")
		p := n.Plan(context.Background(), &cl, nil)
		_, effs := engine.Step(engine.State{Name: "node9", LoopWait: time.Second}, n.Observe(context.Background(), &cl, nil))
		var run *engine.RunChain
		for _, e := range effs {
			if rc, ok := e.(engine.RunChain); ok {
				run = &rc
			}
		}
		if p.Path != "clone" || run == nil {
			rt.Fatalf("plan %s, effects %v: want a clone from both", p.Path, effs)
		}
		if !strings.HasPrefix(p.Source, run.Plan.Source.Name+" (") || p.SourceWhy != run.Plan.SourceWhy {
			rt.Fatalf("plan names %s (%s), the agent clones from %s (%s)", p.Source, p.SourceWhy, run.Plan.Source.Name, run.Plan.SourceWhy)
		}
		want := engine.ChooseSource("node9", cl).Member
		for _, m := range cl.Members {
			if m.State == "running" && m.CloneFrom() && (m.XLogLocation > want.XLogLocation || m.XLogLocation == want.XLogLocation && m.Name < want.Name) {
				rt.Fatalf("source %s, but %s runs at a higher position or the same with a smaller name", want.Name, m.Name)
			}
		}
	})
}
