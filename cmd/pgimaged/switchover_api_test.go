package main_test

import (
	"bufio"
	"fmt"
	"io"
	"maps"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pgimaged/pgimaged/internal/pgtest"
)

// postChange sends a POST /switchover or /failover to the API at base with the API's
// credentials, waiting as long as the agents may take, and returns the status code and body.
func postChange(t *testing.T, base, path, user, password, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(user, password)
	resp, err := (&http.Client{Timeout: 2 * time.Minute}).Do(req)
	if err != nil {
		t.Fatalf("POST %s%s: %v", base, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// metricValue is the value of the first series name on the API at base's /metrics whose labels
// include every one of labels (`method="rewind"`), "" when there is none.
func metricValue(t *testing.T, base, name string, labels ...string) string {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatalf("GET %s/metrics: %v", base, err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
next:
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		for _, l := range labels {
			if !strings.Contains(line, l) {
				continue next
			}
		}
		return line[strings.LastIndexByte(line, ' ')+1:]
	}
	return ""
}

// apiPair starts node1 (the primary) and node2 (its replica) on c, each with an API that
// takes the credentials ops / s3cret-api, and waits until the DCS shows node2 as node1's
// running replica; it returns the members, their agents and the APIs' base URLs.
func apiPair(t *testing.T, c *agentCluster) (n1, n2 *node, agents []*agentProc, base1, base2 string) {
	t.Helper()
	api1, api2 := pgtest.FreePort(t), pgtest.FreePort(t)
	block := func(port int) string {
		return fmt.Sprintf("api {\n  listen = \"127.0.0.1:%d\"\n  username = \"ops\"\n  password = \"s3cret-api\"\n}", port)
	}
	n1, n2 = c.member(t, "node1", block(api1)), c.member(t, "node2", block(api2))
	agents = startInTurn(t, n1, n2)
	waitStreaming(t, n1, "node2")
	waitLeader(t, n1, agents, "node1", "node2")
	return n1, n2, agents, fmt.Sprintf("http://127.0.0.1:%d", api1), fmt.Sprintf("http://127.0.0.1:%d", api2)
}

// patronictlConfig writes a patronictl configuration for scope on the etcd at endpoint, with the
// API's credentials ops / s3cret-api, and returns its path.
func patronictlConfig(t *testing.T, scope, endpoint string) string {
	t.Helper()
	return writeFile(t, workDir(t), "patronictl.yml", fmt.Sprintf(`scope: %s
namespace: /service/
etcd3:
  hosts: %s
ctl:
  auth: "ops:s3cret-api"
`, scope, endpoint), 0o600)
}

// TestSwitchoverThroughTheAPI: POST /switchover, as Patroni's API takes it, refuses what Patroni
// refuses with its status codes and messages, and with the API's credentials hands the primary
// role to the candidate: the answer comes once the candidate leads, the old primary follows it,
// and the new leader's /metrics counts the switchover. On the file DCS and on etcd.
func TestSwitchoverThroughTheAPI(t *testing.T) {
	onEachBackend(t, func(t *testing.T, b backend) {
		n1, n2, agents, base1, base2 := apiPair(t, b.cluster(t, "api-switch-"+b.kind))
		execOn(t, n1, "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1)")
		for _, tc := range []struct {
			user, password, body string
			code                 int
			text                 string
		}{
			{"ops", "wrong", `{"leader": "node1", "candidate": "node2"}`, http.StatusUnauthorized, "credentials"},
			{"ops", "s3cret-api", `{"candidate": "node2"}`, http.StatusBadRequest, "Switchover could be performed only from a specific leader"},
			{"ops", "s3cret-api", `{"leader": "node2", "candidate": "node1"}`, http.StatusPreconditionFailed, "leader name does not match"},
			{"ops", "s3cret-api", `{"leader": "node1", "candidate": "node3"}`, http.StatusPreconditionFailed, "candidate does not exists"},
		} {
			if code, text := postChange(t, base2, "/switchover", tc.user, tc.password, tc.body); code != tc.code || !strings.Contains(text, tc.text) {
				t.Errorf("POST /switchover %s: %d %q, want %d %q", tc.body, code, text, tc.code, tc.text)
			}
		}
		if st, _ := status(t, n1); st.Leader != "node1" {
			t.Fatalf("a refused switchover changed the leader: %s", st)
		}

		asked := time.Now()
		code, text := postChange(t, base1, "/switchover", "ops", "s3cret-api", `{"leader": "node1", "candidate": "node2"}`)
		t.Logf("POST /switchover answered %d after %s", code, time.Since(asked).Round(time.Millisecond))
		if code != http.StatusOK || text != `Successfully switched over to "node2"` {
			t.Fatalf("POST /switchover to node2: %d %q, want 200\n%s\n%s", code, text, agents[0].out.String(), agents[1].out.String())
		}
		waitLeader(t, n2, agents, "node2", "node1")
		waitStreaming(t, n2, "node1")
		execOn(t, n2, "INSERT INTO t VALUES (2)")
		waitRows(t, n1, 2)
		waitFor(t, guard, "node2's API to answer /primary with 200", agents, func() bool { return httpStatus(base2+"/primary") == 200 })
		for _, m := range []struct{ base, series, want string }{
			{base2, "pgimaged_switchovers_total", "1"}, // the member that took over counts it
			{base1, "pgimaged_switchovers_total", "0"},
			{base2, "pgimaged_failovers_total", "0"},
		} {
			if got := metricValue(t, m.base, m.series); got != m.want {
				t.Errorf("%s on %s: %q, want %s", m.series, m.base, got, m.want)
			}
		}
	})
}

// TestPatronictlSwitchover: Patroni's own `patronictl switchover`, configured for the cluster's
// etcd and the API's credentials, hands the primary role over through the leader's POST
// /switchover and prints Patroni's answer; `patronictl switchover --scheduled` back to node1
// is carried out at its time, not before.
func TestPatronictlSwitchover(t *testing.T) {
	e := startEtcd(t, 0)
	scope := "ctl-switch-" + randomHex(t)[:8]
	n1, n2, agents, _, base2 := apiPair(t, backend{kind: "etcd", endpoint: e.endpoint}.cluster(t, scope))
	r := patronictl(t, patronictlConfig(t, scope, e.endpoint), "switchover", scope, "--leader", "node1", "--candidate", "node2", "--force")
	if r.code != 0 || !strings.Contains(r.stdout, `Successfully switched over to "node2"`) {
		t.Fatalf("patronictl switchover: %s\n%s\n%s", r, agents[0].out.String(), agents[1].out.String())
	}
	waitLeader(t, n2, agents, "node2", "node1")
	waitStreaming(t, n2, "node1")
	if got := metricValue(t, base2, "pgimaged_switchovers_total"); got != "1" {
		t.Errorf("pgimaged_switchovers_total on the new leader: %q, want 1", got)
	}

	// Scheduled for later, as `patronictl switchover --scheduled` asks: patronictl list shows
	// it, and patronictl flush cancels it.
	ctl := patronictlConfig(t, scope, e.endpoint)
	later := time.Now().Add(time.Hour).Truncate(time.Second)
	if r := patronictl(t, ctl, "switchover", scope, "--leader", "node2", "--scheduled", later.Format(time.RFC3339), "--force"); r.code != 0 || !strings.Contains(r.stdout, "Switchover scheduled") {
		t.Fatalf("patronictl switchover --scheduled: %s", r)
	}
	if r := patronictl(t, ctl, "list"); !strings.Contains(r.stdout, "Switchover scheduled at: "+later.UTC().Format("2006-01-02T15:04:05+00:00")) {
		t.Errorf("patronictl list does not show the scheduled switchover:\n%s", r)
	}
	if r := patronictl(t, ctl, "flush", scope, "switchover", "--force"); r.code != 0 || !strings.Contains(r.stdout, "Success: scheduled switchover deleted") {
		t.Errorf("patronictl flush switchover: %s", r)
	}
	if r := patronictl(t, ctl, "list"); strings.Contains(r.stdout, "Switchover scheduled") {
		t.Errorf("patronictl list still shows the cancelled switchover:\n%s", r)
	}
	if st := run(t, n2.env, "status", "-config", n2.config); strings.Contains(st.stdout, "Switchover scheduled") {
		t.Errorf("status still shows the cancelled switchover:\n%s", st.stdout)
	}

	// node2 leads on until its time, status shows it, and at its time node1 takes over; the
	// rows written before and after are on both members.
	execOn(t, n2, "CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 10)")
	at := time.Now().Add(12 * time.Second).Truncate(time.Second)
	r = patronictl(t, ctl, "switchover", scope, "--leader", "node2", "--candidate", "node1",
		"--scheduled", at.Format(time.RFC3339), "--force")
	if r.code != 0 || !strings.Contains(r.stdout, "Switchover scheduled") {
		t.Fatalf("patronictl switchover --scheduled: %s", r)
	}
	if st := run(t, n2.env, "status", "-config", n2.config); !strings.Contains(st.stdout, "Switchover scheduled: switchover from node2 to node1 scheduled at "+at.UTC().Format(time.RFC3339)) {
		t.Errorf("status does not show the scheduled switchover:\n%s", st.stdout)
	}
	if st, err := status(t, n2); err != nil || st.Leader != "node2" {
		t.Errorf("right after scheduling, the leader is %q (%v), want node2 until %s", st.Leader, err, at)
	}
	// GET /cluster shows it once node2's agent has read it (its next cycle).
	want := map[string]string{"at": at.UTC().Format("2006-01-02T15:04:05+00:00"), "from": "node2", "to": "node1"}
	var shown map[string]string
	waitFor(t, guard, "GET /cluster to show the scheduled switchover", agents, func() bool {
		var body struct {
			Scheduled map[string]string `json:"scheduled_switchover"`
		}
		getJSON(t, base2+"/cluster", &body)
		shown = body.Scheduled
		return maps.Equal(shown, want) || !time.Now().Before(at)
	})
	if !maps.Equal(shown, want) {
		t.Errorf("GET /cluster's scheduled_switchover before its time: %v, want %v", shown, want)
	}
	waitFor(t, guard, "node1 leading after the scheduled switchover", agents, func() bool {
		st, err := status(t, n2)
		return err == nil && st.Leader == "node1"
	})
	if now := time.Now(); now.Before(at) {
		t.Errorf("node1 leads at %s, before the switchover's scheduled time %s", now, at)
	}
	waitStreaming(t, n1, "node2")
	execOn(t, n1, "INSERT INTO t SELECT generate_series(11, 20)")
	waitRows(t, n1, 20)
	waitRows(t, n2, 20)
	if st := run(t, n2.env, "status", "-config", n2.config); strings.Contains(st.stdout, "Switchover scheduled") {
		t.Errorf("status still shows a scheduled switchover after it happened:\n%s", st.stdout)
	}
	waitFor(t, guard, "patronictl list to show no scheduled switchover once it happened", agents, func() bool {
		return !strings.Contains(patronictl(t, ctl, "list").stdout, "Switchover scheduled")
	})
}

// TestScheduledSwitchoverCancelled: `pgimaged switchover --scheduled` records a switchover for
// later, which status shows and `pgimaged switchover --cancel` cancels; a time without its zone
// or in the past is refused; one whose candidate is gone at its time is aborted; one whose
// candidate streams is carried out then, keeping every row. On the file DCS.
func TestScheduledSwitchoverCancelled(t *testing.T) {
	n1, n2, agents, _, base1 := apiPair(t, fileCluster(t))
	for _, bad := range []struct{ at, says string }{
		{"2030-01-01T00:00:00", "time zone"},
		{"2020-01-01T00:00:00Z", "has passed"},
		{"tomorrow", "ISO 8601"},
	} {
		if r := run(t, n1.env, "switchover", "-config", n1.config, "--scheduled", bad.at, "--yes"); r.code != 2 || !strings.Contains(r.stderr, bad.says) {
			t.Errorf("switchover --scheduled %s: %s, want exit 2 saying %q", bad.at, r, bad.says)
		}
	}
	at := time.Now().Add(time.Hour).UTC().Truncate(time.Second).Format(time.RFC3339)
	if r := run(t, n1.env, "switchover", "-config", n1.config, "--scheduled", at, "--yes"); r.code != 0 || !strings.Contains(r.stdout, "scheduled at "+at) {
		t.Fatalf("switchover --scheduled: %s", r)
	}
	if r := run(t, n2.env, "status", "-config", n2.config); !strings.Contains(r.stdout, "Switchover scheduled: switchover from node1 to the most advanced healthy replica scheduled at "+at) {
		t.Errorf("status does not show the scheduled switchover:\n%s", r.stdout)
	}
	// A member restarted meanwhile is not held up by it.
	if r := run(t, n1.env, "restart", "-config", n1.config, "--member", "node2", "--force"); r.code != 0 {
		t.Errorf("restart of node2 while a switchover is scheduled for later: %s", r)
	}
	if r := run(t, n1.env, "switchover", "-config", n1.config, "--cancel"); r.code != 0 || !strings.Contains(r.stdout, "cancelled: switchover from node1") {
		t.Fatalf("switchover --cancel: %s", r)
	}
	if r := run(t, n1.env, "switchover", "-config", n1.config, "--cancel"); r.code != 4 || !strings.Contains(r.stderr, "no switchover is scheduled") {
		t.Errorf("switchover --cancel with none scheduled: %s, want exit 4", r)
	}
	if r := run(t, n2.env, "status", "-config", n2.config); strings.Contains(r.stdout, "Switchover scheduled") {
		t.Errorf("status still shows the cancelled switchover:\n%s", r.stdout)
	}
	if code, text := deleteAsOps(t, base1+"/switchover"); code != 404 || !strings.Contains(text, "no switchover is scheduled") {
		t.Errorf("DELETE /switchover with none scheduled: %d %q, want 404", code, text)
	}
	if st, err := status(t, n1); err != nil || st.Leader != "node1" {
		t.Errorf("the leader is %q (%v), want node1 still", st.Leader, err)
	}

	// Its candidate gone when the time comes: the leader aborts it, saying why, and leads on.
	soon := time.Now().Add(6 * time.Second).UTC().Truncate(time.Second).Format(time.RFC3339)
	if r := run(t, n1.env, "switchover", "-config", n1.config, "--candidate", "node2", "--scheduled", soon, "--yes"); r.code != 0 {
		t.Fatalf("switchover --scheduled: %s", r)
	}
	sigterm(t, agents[1])
	waitFor(t, guard, "node1's agent aborting the scheduled switchover", agents[:1], func() bool {
		return strings.Contains(agents[0].out.String(), "at its scheduled time: member node2")
	})
	if got := primariesAmong(t, n1); len(got) != 1 || got[0] != n1.port {
		t.Errorf("after the aborted switchover the primaries are %v, want node1's %d", got, n1.port)
	}
	if st, err := status(t, n1); err != nil || st.Leader != "node1" {
		t.Errorf("the leader is %q (%v), want node1 still", st.Leader, err)
	}

	// node2 back, a switchover scheduled to it is carried out at its time: the rows written
	// before and after are on both members, and one primary runs.
	agents[1] = n2.start(t)
	stopAllAtCleanup(t, agents[1])
	waitStreaming(t, n1, "node2")
	execOn(t, n1, "CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 10)")
	soon = time.Now().Add(5 * time.Second).UTC().Truncate(time.Second).Format(time.RFC3339)
	if r := run(t, n1.env, "switchover", "-config", n1.config, "--candidate", "node2", "--scheduled", soon, "--yes"); r.code != 0 {
		t.Fatalf("switchover --scheduled: %s", r)
	}
	waitFor(t, guard, "node2 leading after the scheduled switchover", agents, func() bool {
		st, err := status(t, n1)
		return err == nil && st.Leader == "node2"
	})
	waitStreaming(t, n2, "node1")
	execOn(t, n2, "INSERT INTO t SELECT generate_series(11, 20)")
	waitRows(t, n1, 20)
	waitRows(t, n2, 20)
	if got := primariesAmong(t, n1, n2); len(got) != 1 || got[0] != n2.port {
		t.Errorf("after the scheduled switchover the primaries are %v, want node2's %d", got, n2.port)
	}
}

// deleteAsOps sends DELETE url with the API's credentials ops / s3cret-api.
func deleteAsOps(t *testing.T, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodDelete, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("ops", "s3cret-api")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("DELETE %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// loseHost is the primary n's host going down: its agent a killed, its PostgreSQL stopped
// immediately; it returns once status through via shows no leader key.
func loseHost(t *testing.T, a *agentProc, n, via *node) {
	t.Helper()
	a.kill()
	stopImmediately(t, n)
	eventually(t, guard, "the leader key to expire", func() bool {
		st, err := status(t, via)
		return err == nil && st.Leader == ""
	})
}

// TestFailoverThroughTheAPI: the primary's host goes down; POST /failover to the replica's API
// makes it the primary, and the old primary, back, rejoins by pg_rewind. The new leader's
// /metrics counts the failover, the old primary's the rewind that succeeded.
func TestFailoverThroughTheAPI(t *testing.T) {
	n1, n2, agents, base1, base2 := apiPair(t, fileCluster(t))
	execOn(t, n1, "CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 100)")
	waitRows(t, n2, 100)
	loseHost(t, agents[0], n1, n2)
	if code, text := postChange(t, base2, "/failover", "ops", "s3cret-api", `{"leader": "node1", "candidate": "node2"}`); code != http.StatusPreconditionFailed ||
		text != "leader name does not match" {
		t.Errorf("POST /failover from a leader that holds no key: %d %q, want 412", code, text)
	}
	code, text := postChange(t, base2, "/failover", "ops", "s3cret-api", `{"candidate": "node2"}`)
	if code != http.StatusOK || text != `Successfully failed over to "node2"` {
		t.Fatalf("POST /failover to node2: %d %q, want 200\n%s", code, text, agents[1].out.String())
	}
	execOn(t, n2, "INSERT INTO t SELECT generate_series(101, 110)")
	again := n1.start(t)
	stopAllAtCleanup(t, again)
	agents[0] = again
	waitLeader(t, n2, agents, "node2", "node1")
	waitStreaming(t, n2, "node1")
	waitRows(t, n1, 110)
	waitFor(t, guard, "node1's API to answer", agents, func() bool { return httpStatus(base1+"/health") == 200 })
	for _, m := range []struct {
		base, series string
		labels       []string
		want         string
	}{
		{base2, "pgimaged_failovers_total", nil, "1"},
		{base2, "pgimaged_switchovers_total", nil, "0"},
		{base1, "pgimaged_rejoins_total", []string{`method="rewind"`, `outcome="success"`}, "1"},
		{base1, "pgimaged_rejoins_total", []string{`outcome="failure"`}, ""},
		{base1, "pgimaged_rejoin_duration_seconds_count", []string{`method="rewind"`}, "1"},
	} {
		if got := metricValue(t, m.base, m.series, m.labels...); got != m.want {
			t.Errorf("%s%v on %s: %q, want %q", m.series, m.labels, m.base, got, m.want)
		}
	}
}
