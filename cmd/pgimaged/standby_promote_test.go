package main_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pgimaged/pgimaged/internal/pgtest"
)

// TestStandbyClusterPromotes is the second site taking over: `pgimaged standby promote` makes
// the standby leader the cluster's primary (the leader key stays with it), the other member
// follows it on the new timeline without a new copy, the DCS records the promotion and the
// timeline switch, and a member whose configuration still holds standby_cluster says that the
// block is ignored, at start and in status. POST /standby/promote needs the API's credentials
// and is refused once the cluster is promoted. The time from the command to the first write
// the new primary accepts is printed.
func TestStandbyClusterPromotes(t *testing.T) {
	a := fileCluster(t)
	a1 := a.member(t, "a1", "")
	startInTurn(t, a1)
	execOn(t, a1, "CREATE TABLE t (id int)")

	b := backend{kind: "file"}.cluster(t, "site-b")
	b.superPass, b.replPass = a.superPass, a.replPass
	api := pgtest.FreePort(t)
	block := fmt.Sprintf("standby_cluster {\n  host = \"127.0.0.1\"\n  port = %d\n}\n", a1.port)
	b1 := b.member(t, "b1", block+fmt.Sprintf("api {\n  listen = \"127.0.0.1:%d\"\n  username = \"ops\"\n  password = \"s3cret-api\"\n}", api))
	b2 := b.member(t, "b2", block)
	ag1 := b1.start(t)
	waitStandbyCluster(t, b1, []*agentProc{ag1}, "b1")
	siteB := []*agentProc{ag1, b2.start(t)}
	stopAllAtCleanup(t, siteB[1])
	waitStandbyCluster(t, b1, siteB, "b1", "b2")
	execOn(t, a1, "INSERT INTO t VALUES (1)")
	waitRows(t, b2, 1)
	// status heads the cluster with its remote and the standby leader's lag behind it; the
	// metrics say who is the standby leader and how far behind it is.
	waitFor(t, guard, "b1 publishing its lag behind the remote", siteB, func() bool {
		var js struct {
			Standby struct {
				Lag *struct {
					LagBytes *int64 `json:"lag_bytes"`
				} `json:"lag"`
			} `json:"standby_cluster"`
		}
		r := run(t, b1.env, "status", "-json", "-config", b1.config)
		return json.Unmarshal([]byte(r.stdout), &js) == nil && js.Standby.Lag != nil && js.Standby.Lag.LagBytes != nil && *js.Standby.Lag.LagBytes < 16<<20
	})
	if r := run(t, b1.env, "status", "-config", b1.config); !strings.Contains(r.stdout, "Standby cluster of host=127.0.0.1 port="+fmt.Sprint(a1.port)) ||
		!strings.Contains(r.stdout, "standby leader: b1   behind the remote: ") {
		t.Errorf("status does not head the standby cluster with its remote and lag:\n%s", r.stdout)
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", api)
	metric := func(name string) string { return metricValue(t, base, name) }
	if got := metric("pgimaged_standby_leader"); got != "1" {
		t.Errorf("pgimaged_standby_leader on the standby leader: %q, want 1", got)
	}
	if got := metric("pgimaged_remote_lag_bytes"); got == "" {
		t.Error("no pgimaged_remote_lag_bytes on the standby leader")
	}

	if code, _ := post(t, base+"/standby/promote", "", "", ""); code != 401 {
		t.Errorf("POST /standby/promote without credentials: %d, want 401", code)
	}

	// The promotion, timed from the command to the first write accepted.
	started := time.Now()
	promoted := make(chan result, 1)
	go func() { promoted <- run(t, b1.env, "standby", "promote", "-config", b1.config, "--yes", "-json") }()
	for !insertOne(b1, 2) {
		time.Sleep(5 * time.Millisecond)
		if time.Since(started) > guard {
			t.Fatalf("b1 accepts no write after the promotion:\n%s", siteB[0].out.String())
		}
	}
	writable := time.Since(started)
	r := <-promoted
	if r.code != 0 {
		t.Fatalf("standby promote: %s", r)
	}
	var out struct {
		Leader   string  `json:"leader"`
		Timeline int     `json:"timeline"`
		Seconds  float64 `json:"seconds"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || out.Leader != "b1" || out.Timeline != 2 {
		t.Fatalf("standby promote -json: %+v (%v): %s", out, err, r.stdout)
	}
	t.Logf("promotion: %s from the command to the first write accepted on b1 (the command reports %.3f s)", writable.Round(time.Millisecond), out.Seconds)

	waitLeader(t, b1, siteB, "b1", "b2")
	waitStreaming(t, b1, "b2")
	waitRows(t, b2, 2)
	if got := metric("pgimaged_standby_leader"); got != "0" {
		t.Errorf("pgimaged_standby_leader on the promoted primary: %q, want 0", got)
	}
	waitReceiver(t, b2, b1.port, 2)
	if got := strings.Count(siteB[1].out.String(), "replica created"); got != 1 {
		t.Errorf("b2 made %d copies, want one:\n%s", got, siteB[1].out.String())
	}
	st, _ := status(t, b1)
	if lead, _ := st.member("b1"); lead.Role != "master" && lead.Role != "primary" {
		t.Errorf("b1 publishes role %q after the promotion", lead.Role)
	}
	sr := run(t, b1.env, "status", "-json", "-config", b1.config)
	var js struct {
		History []json.RawMessage `json:"history"`
		Standby struct {
			Promoted bool `json:"promoted"`
			Ignored  bool `json:"ignored"`
		} `json:"standby_cluster"`
	}
	if err := json.Unmarshal([]byte(sr.stdout), &js); err != nil || !js.Standby.Promoted || !js.Standby.Ignored || len(js.History) != 1 {
		t.Errorf("status -json after the promotion: %+v (%v):\n%s", js, err, sr.stdout)
	}
	if r := run(t, b1.env, "status", "-config", b1.config); !strings.Contains(r.stdout, "the standby_cluster block of this configuration is ignored") {
		t.Errorf("status does not say that the block is ignored:\n%s", r.stdout)
	}
	// Promoted: the remote no longer reaches it.
	execOn(t, a1, "INSERT INTO t VALUES (100)")
	execOn(t, b1, "INSERT INTO t VALUES (3)")
	waitRows(t, b2, 3)

	// b2's agent restarts with the block still in its configuration: it says the block is
	// ignored and follows b1.
	sigterm(t, siteB[1])
	siteB[1] = b2.start(t)
	waitLeader(t, b1, siteB, "b1", "b2")
	waitFor(t, guard, "b2 saying that its standby_cluster block is ignored", siteB, func() bool {
		return strings.Contains(siteB[1].out.String(), "the standby_cluster block of this configuration is ignored")
	})
	execOn(t, b1, "INSERT INTO t VALUES (4)")
	waitRows(t, b2, 4)

	if code, text := post(t, base+"/standby/promote", "ops", "s3cret-api", ""); code != 412 || !strings.Contains(text, "not possible") {
		t.Errorf("POST /standby/promote on a promoted cluster: %d %q, want 412", code, text)
	}

	// plan says what the DCS says: a new member whose configuration still holds the block
	// would clone from the primary b1 like any replica, and the block is ignored.
	b3 := b.member(t, "b3", block)
	p, pr := plan(t, b3)
	var note struct {
		Standby string `json:"standby_cluster"`
	}
	_ = json.Unmarshal([]byte(pr.stdout), &note)
	if p.Path != "clone" || !strings.Contains(p.Source, fmt.Sprintf("port=%d", b1.port)) || strings.Contains(p.Reason+p.Source, "remote") ||
		!strings.HasPrefix(note.Standby, "the standby_cluster block of this configuration is ignored: the DCS records that the cluster was promoted") {
		t.Errorf("plan of a new member of the promoted cluster: %+v, standby_cluster %q", p, note.Standby)
	}
	if r := run(t, b3.env, "plan", "-config", b3.config); !strings.Contains(r.stdout, "Standby cluster: the standby_cluster block of this configuration is ignored") {
		t.Errorf("plan does not say that the block is ignored:\n%s", r.stdout)
	}
}
