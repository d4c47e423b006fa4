package main_test

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/pgimaged/pgimaged/internal/pgtest"
)

// In synchronous mode the members that are synchronous are shown: status's ROLE says
// sync_standby, status -json marks them sync_standby, GET /cluster gives them Patroni's role
// sync_standby, and GET /sync answers 200 on them (503 elsewhere), GET /async 200 on the other
// replicas, as Patroni's; patronictl list shows node2 as its Sync Standby.
func TestSynchronousSetShown(t *testing.T) {
	e := startEtcd(t, 0)
	b := backend{kind: "etcd", endpoint: e.endpoint}
	scope := "sync-shown-" + randomHex(t)[:8]
	c := b.cluster(t, scope)
	const mode = "synchronous_mode = true\n"
	ports := map[string]int{}
	block := func(name string) string {
		ports[name] = pgtest.FreePort(t)
		return fmt.Sprintf("api {\n  listen = \"127.0.0.1:%d\"\n}\n", ports[name])
	}
	n1, n2 := c.member(t, "node1", mode+block("node1")), c.member(t, "node2", mode+block("node2"))
	n3 := c.member(t, "node3", mode+block("node3")+"tags = { nosync = true }\n")
	agents := startInTurn(t, n1, n2, n3)
	waitStreaming(t, n1, "node2", "node3")
	waitSync(t, b, c, agents, n1, "node2")
	api := func(name, path string) string { return fmt.Sprintf("http://127.0.0.1:%d%s", ports[name], path) }

	// The agents read the sync key once a cycle.
	waitFor(t, guard, "GET /sync on node2 to answer 200", agents, func() bool { return httpStatus(api("node2", "/sync")) == 200 })
	for _, c := range []struct {
		member, path string
		want         int
	}{
		{"node2", "/synchronous", 200}, {"node2", "/async", 503}, {"node2", "/asynchronous", 503},
		{"node3", "/sync", 503}, {"node3", "/async", 200},
		{"node1", "/sync", 503}, {"node1", "/async", 503},
	} {
		if got := httpStatus(api(c.member, c.path)); got != c.want {
			t.Errorf("GET %s on %s: %d, want %d", c.path, c.member, got, c.want)
		}
	}

	_, r := statusRow(t, n1, "node2")
	if got := statusCell(r.stdout, "node2", "ROLE"); got != "sync_standby" {
		t.Errorf("status shows node2's role as %q, want sync_standby:\n%s", got, r.stdout)
	}
	if got := statusCell(r.stdout, "node3", "ROLE"); got != "replica" {
		t.Errorf("status shows the asynchronous node3's role as %q, want replica:\n%s", got, r.stdout)
	}
	r = run(t, n1.env, "status", "-json", "-config", n1.config)
	var st struct {
		Members []struct {
			Name        string `json:"name"`
			Role        string `json:"role"`
			SyncStandby bool   `json:"sync_standby"`
		} `json:"members"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("status -json: %v\n%s", err, r)
	}
	for _, m := range st.Members {
		if m.SyncStandby != (m.Name == "node2") {
			t.Errorf("status -json: %s sync_standby %v, want %v", m.Name, m.SyncStandby, m.Name == "node2")
		}
	}
	var cl struct {
		Members []struct {
			Name string `json:"name"`
			Role string `json:"role"`
		} `json:"members"`
	}
	getJSON(t, api("node3", "/cluster"), &cl)
	roles := map[string]string{}
	for _, m := range cl.Members {
		roles[m.Name] = m.Role
	}
	if roles["node2"] != "sync_standby" || roles["node3"] != "replica" || roles["node1"] != "primary" {
		t.Errorf("GET /cluster roles %v, want node1 primary, node2 sync_standby, node3 replica", roles)
	}

	// Patroni's own patronictl reads the same from the sync and config keys.
	var rows []patronictlRow
	r = patronictl(t, patronictlConfig(t, scope, e.endpoint), "list", "-f", "json")
	if err := json.Unmarshal([]byte(r.stdout), &rows); r.code != 0 || err != nil {
		t.Fatalf("patronictl list: %s", r)
	}
	roles = map[string]string{}
	for _, m := range rows {
		roles[m.Member] = m.Role
	}
	if roles["node1"] != "Leader" || roles["node2"] != "Sync Standby" || roles["node3"] != "Replica" {
		t.Errorf("patronictl list roles %v, want node1 Leader, node2 Sync Standby, node3 Replica", roles)
	}
}
