package cli

import (
	"strings"
	"testing"

	"github.com/pgimaged/pgimaged/core/dcs"
	"github.com/pgimaged/pgimaged/core/engine"
)

func TestPlanRestart(t *testing.T) {
	m := func(name, role, state string, pending bool) dcs.Member {
		return dcs.Member{Name: name, Role: role, State: state, PendingRestart: pending}
	}
	cl := func(ms ...dcs.Member) dcs.Cluster { return dcs.Cluster{Leader: "b", Members: ms} }
	healthy := cl(m("b", dcs.RolePrimary, dcs.StateRunning, true), m("c", dcs.RoleReplica, dcs.StateRunning, false),
		m("a", dcs.RoleReplica, dcs.StateRunning, true))
	cases := []struct {
		name    string
		cl      dcs.Cluster
		f       restartFilter
		want    string // the members in order, comma-separated
		refused string // in the refusal; "" for none
	}{
		{"every member: replicas by name, the leader last", healthy, restartFilter{Known: true}, "a,c,b", ""},
		{"replicas only", healthy, restartFilter{Known: true, Role: dcs.RoleReplica}, "a,c", ""},
		{"one member", healthy, restartFilter{Member: "c", Known: true}, "c", ""},
		{"an unknown member", healthy, restartFilter{Member: "zz"}, "", "knows no member zz"},
		{"a member whose agent is down", healthy, restartFilter{Member: "zz", Known: true}, "", "does not run"},
		{"a member mid-clone", cl(m("b", dcs.RolePrimary, dcs.StateRunning, false), m("c", dcs.RoleReplica, dcs.StateCreatingReplica, false)),
			restartFilter{Member: "c", Known: true}, "", "creating replica"},
		{"every member while one is reinitializing", cl(m("b", dcs.RolePrimary, dcs.StateRunning, false), m("c", dcs.RoleReplica, engine.StateReinitializing, false)),
			restartFilter{Known: true}, "", "reinitializing"},
		{"a member whose PostgreSQL is stopped", cl(m("b", dcs.RolePrimary, dcs.StateRunning, false), m("c", dcs.RoleReplica, dcs.StateStopped, false)),
			restartFilter{Member: "c", Known: true}, "", "does not run"},
		{"every member, one stopped: skipped", cl(m("b", dcs.RolePrimary, dcs.StateRunning, false), m("c", dcs.RoleReplica, dcs.StateStopped, false)),
			restartFilter{Known: true}, "b", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			plan, err := planRestart(c.cl, c.f)
			switch {
			case c.refused != "":
				if err == nil || !strings.Contains(err.Error(), c.refused) {
					t.Fatalf("refusal %v, want one saying %q", err, c.refused)
				}
			case err != nil:
				t.Fatalf("refused: %v", err)
			case strings.Join(plan.Members, ",") != c.want:
				t.Fatalf("order %v, want %s (skipped %v)", plan.Members, c.want, plan.Skipped)
			}
		})
	}
}
