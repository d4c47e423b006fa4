package main_test

import (
	"strings"
	"testing"
)

// notStreamingOf is why `status -json` says member does not stream, "" when it does not say.
func notStreamingOf(t *testing.T, n *node, member string) string {
	t.Helper()
	return detailOf(t, n, member).NotStreaming
}

// A replica whose password its upstream refuses streams no more: status, status -json, the
// member key and GET /patroni say it does not stream, with libpq's reason; GET /replica still
// answers 200 (it runs and replays), but /replica?lag=1MB answers 503 once the primary wrote
// more than that since, as Patroni's. Its upstream's host lost, the reason says so.
func TestReplicaNotStreaming(t *testing.T) {
	c := fileCluster(t)
	n1, n2, agents, _, base2 := apiPair(t, c)
	if why := notStreamingOf(t, n1, "node2"); why != "" {
		t.Fatalf("status says the streaming node2 does not stream: %s", why)
	}
	execOn(t, n1, "ALTER ROLE replicator PASSWORD 'An0ther-"+randomHex(t)+"'")
	execOn(t, n1, "SELECT pg_terminate_backend(pid) FROM pg_stat_replication")
	const cause = "password authentication failed"
	waitFor(t, guard, "status -json to say node2 does not stream, with libpq's reason", agents, func() bool {
		return strings.Contains(notStreamingOf(t, n1, "node2"), cause)
	})
	if why := notStreamingOf(t, n1, "node2"); !strings.Contains(why, "could not connect to the primary server") {
		t.Errorf("not_streaming %q does not say the WAL receiver could not connect", why)
	}
	row, r := statusRow(t, n1, "node2")
	line := strings.Join(row, " ")
	if !strings.Contains(line, "not streaming") || !strings.Contains(line, cause) {
		t.Errorf("node2's status row does not say it does not stream, and why:\n%s", r.stdout)
	}
	if got := statusCell(r.stdout, "node2", "STATE"); got != "not streaming" {
		t.Errorf("node2's STATE is %q, want \"not streaming\":\n%s", got, r.stdout)
	}
	var body struct {
		State        string `json:"state"`
		NotStreaming string `json:"not_streaming"`
	}
	getJSON(t, base2+"/patroni", &body)
	if !strings.Contains(body.NotStreaming, cause) || body.State != "running" {
		t.Errorf("GET /patroni on node2: state %q, not_streaming %q; want running, with %q", body.State, body.NotStreaming, cause)
	}
	if code := httpStatus(base2 + "/replica"); code != 200 {
		t.Errorf("GET /replica on the replica that replays but does not stream: %d, want 200", code)
	}
	// About 8 MB of WAL on the primary that node2 does not receive.
	execOn(t, n1, "CREATE TABLE behind AS SELECT repeat('x', 1000) AS filler FROM generate_series(1, 8000)")
	waitFor(t, guard, "GET /replica?lag=1MB on node2 to answer 503", agents, func() bool {
		return httpStatus(base2+"/replica?lag=1MB") == 503
	})
	if code := httpStatus(base2 + "/replica?lag=1GB"); code != 200 {
		t.Errorf("GET /replica?lag=1GB on node2, a few MB behind: %d, want 200", code)
	}
	if code := httpStatus(base2 + "/replica?lag=1048576"); code != 503 {
		t.Errorf("GET /replica?lag=1048576 on node2, more than 1 MB behind: %d, want 503", code)
	}

	// Its upstream gone: libpq's reason changes with it.
	loseHost(t, agents[0], n1, n2)
	waitFor(t, guard, "status -json to say node2 cannot reach its upstream", agents[1:], func() bool {
		return strings.Contains(notStreamingOf(t, n2, "node2"), "Connection refused")
	})
	// Still behind the lost leader's last position, as Patroni's optime key keeps it.
	if code := httpStatus(base2 + "/replica?lag=1MB"); code != 503 {
		t.Errorf("GET /replica?lag=1MB on node2, behind the lost leader's last position: %d, want 503", code)
	}
	if code := httpStatus(base2 + "/replica"); code != 200 {
		t.Errorf("GET /replica on node2 without a leader: %d, want 200", code)
	}
}

// TestReplicaNotStreamingWithTheLoggingCollector: with logging_collector = on the server's
// messages go to the collector's files in log_directory, not to the file pg_ctl was given; the
// replica's WAL receiver failure is still found there, in the csvlog format node2 logs in, and
// shown with libpq's reason.
func TestReplicaNotStreamingWithTheLoggingCollector(t *testing.T) {
	c := fileCluster(t)
	n1, n2 := c.member(t, "node1", ""), c.member(t, "node2", "")
	editConfig(t, n1, "max_connections = 30", `max_connections = 30, logging_collector = "on", log_filename = "postgresql-%a.log"`)
	editConfig(t, n2, "max_connections = 30", `max_connections = 30, logging_collector = "on", log_destination = "csvlog"`)
	agents := startInTurn(t, n1, n2)
	waitStreaming(t, n1, "node2")
	execOn(t, n1, "ALTER ROLE replicator PASSWORD 'An0ther-"+randomHex(t)+"'")
	execOn(t, n1, "SELECT pg_terminate_backend(pid) FROM pg_stat_replication")
	const cause = "password authentication failed"
	waitFor(t, guard, "status -json to say node2 does not stream, with libpq's reason", agents, func() bool {
		return strings.Contains(notStreamingOf(t, n1, "node2"), cause)
	})
}
