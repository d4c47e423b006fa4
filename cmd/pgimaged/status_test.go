package main_test

import (
	"encoding/json"
	"strings"
	"testing"
)

// statusRow is the text row of member in `pgimaged status`, split on white space.
func statusRow(t *testing.T, n *node, member string) ([]string, result) {
	t.Helper()
	r := run(t, n.env, "status", "-config", n.config)
	if r.code != 0 {
		t.Fatalf("status failed: %s", r)
	}
	for _, l := range strings.Split(r.stdout, "\n") {
		if f := strings.Fields(l); len(f) > 0 && f[0] == member {
			return f, r
		}
	}
	return nil, r
}

// statusCell is the cell of member's row under the column named col in status's text output.
func statusCell(out, member, col string) string {
	lines := strings.Split(out, "\n")
	var header string
	for _, l := range lines {
		if strings.HasPrefix(l, "MEMBER ") {
			header = l
		}
	}
	start := strings.Index(header, " "+col+" ") + 1
	if start <= 0 {
		return "(no column " + col + ")"
	}
	end := start + len(col)
	for end < len(header) && header[end] == ' ' {
		end++
	}
	for _, l := range lines {
		if f := strings.Fields(l); len(f) > 0 && f[0] == member {
			if start >= len(l) {
				return ""
			}
			return strings.TrimSpace(l[start:min(end, len(l))])
		}
	}
	return "(no row " + member + ")"
}

// memberDetail is what `status -json` publishes of a member under pgimaged.
type memberDetail struct {
	Upstream     string `json:"upstream"`
	NotStreaming string `json:"not_streaming"`
}

// detailOf is what `status -json` says of member under pgimaged; empty when it says nothing.
func detailOf(t *testing.T, n *node, member string) memberDetail {
	t.Helper()
	r := run(t, n.env, "status", "-json", "-config", n.config)
	var s struct {
		Members []struct {
			Name     string        `json:"name"`
			PGImaged *memberDetail `json:"pgimaged"`
		} `json:"members"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
		t.Fatalf("status -json: %v\n%s", err, r)
	}
	for _, m := range s.Members {
		if m.Name == member && m.PGImaged != nil {
			return *m.PGImaged
		}
	}
	return memberDetail{}
}

// upstreamOf is the member that `status -json` says member streams from.
func upstreamOf(t *testing.T, n *node, member string) string {
	t.Helper()
	return detailOf(t, n, member).Upstream
}

// A replica whose replication password is wrong: status shows the root cause (PostgreSQL's
// "password authentication failed") on its one line, and -json carries the message once.
func TestStatusShowsRootCause(t *testing.T) {
	c := fileCluster(t)
	n1 := c.member(t, "node1", "")
	good := c.replPass
	c.replPass = "Wr0ng-" + randomHex(t)
	n2 := c.member(t, "node2", "")
	c.replPass = good
	a1 := startInTurn(t, n1)[0]
	a2 := n2.start(t)
	stopAllAtCleanup(t, a2)
	var st clusterStatus
	waitFor(t, guard, "node2 to publish a failed clone", []*agentProc{a1, a2}, func() bool {
		var err error
		st, err = status(t, n1)
		m, ok := st.member("node2")
		return err == nil && ok && m.PGImaged != nil && m.PGImaged.LastError != ""
	})
	m, _ := st.member("node2")
	const cause = "password authentication failed"
	if n := strings.Count(m.PGImaged.LastError, cause); n != 1 {
		t.Errorf("status -json's last_error carries the cause %d times, want once:\n%s", n, m.PGImaged.LastError)
	}
	row, r := statusRow(t, n1, "node2")
	line := strings.Join(row, " ")
	if !strings.Contains(line, cause) {
		t.Errorf("node2's status row does not show the root cause %q:\n%s", cause, r.stdout)
	}
	if i := strings.Index(line, cause); i >= 0 && strings.Contains(line[:i], "while ") {
		t.Errorf("node2's status row does not show the root cause first:\n%s", line)
	}
	for _, s := range append(n1.secrets(), n2.secrets()...) {
		if strings.Contains(r.stdout, s) {
			t.Errorf("a password appears in the status output")
		}
	}
}

// A replica copied by pg_basebackup that cannot start because its port is taken: status shows
// PostgreSQL's own reason on its line, though the copy (and the log in it) is removed, and the
// history keeps the failed attempt with PostgreSQL's log lines.
func TestStatusShowsWhyAReplicaCannotStart(t *testing.T) {
	n1, n2, _, agents := replicaWithPortTaken(t)
	a1, a2 := agents[0], agents[1]
	const cause = "Address already in use"
	var st clusterStatus
	waitFor(t, guard, "node2 to publish why its PostgreSQL did not start", []*agentProc{a1, a2}, func() bool {
		var err error
		st, err = status(t, n1)
		m, ok := st.member("node2")
		return err == nil && ok && m.PGImaged != nil && strings.Contains(m.PGImaged.LastError, cause)
	})
	row, r := statusRow(t, n1, "node2")
	if line := strings.Join(row, " "); !strings.Contains(line, cause) {
		t.Errorf("node2's status row does not show PostgreSQL's reason %q:\n%s", cause, r.stdout)
	}
	waitFor(t, guard, "node2's history to keep the failed attempt with PostgreSQL's log lines", []*agentProc{a1, a2}, func() bool {
		h := run(t, n2.env, "history", "-json", "-config", n2.config)
		var atts []struct {
			OK   bool     `json:"ok"`
			Tail []string `json:"tail"`
		}
		if h.code != 0 || json.Unmarshal([]byte(h.stdout), &atts) != nil {
			t.Fatalf("history -json: %s", h)
		}
		for _, a := range atts {
			if !a.OK && strings.Contains(strings.Join(a.Tail, "\n"), "could not bind") {
				return true
			}
		}
		return false
	})
}
