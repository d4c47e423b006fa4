package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgimaged/pgimaged/core/pg"
	"github.com/pgimaged/pgimaged/internal/pgtest"
	"github.com/pgimaged/pgimaged/internal/testenv"
)

// secondSite is a standby cluster of two members, b1 and b2, each with an API of its own.
type secondSite struct {
	b1, b2     *node
	api1, api2 string // their API's base URL
}

// newSecondSite writes the members of a standby cluster on its own file DCS whose
// standby_cluster block names the remote servers at ports (libpq's multi-host form, host for
// each), with the remote's passwords.
func newSecondSite(t *testing.T, host string, ports []int, superPass, replPass string) *secondSite {
	t.Helper()
	b := backend{kind: "file"}.cluster(t, "site-b")
	b.superPass, b.replPass = superPass, replPass // the remote's roles
	hosts, list := make([]string, len(ports)), make([]string, len(ports))
	for i, p := range ports {
		hosts[i], list[i] = host, fmt.Sprint(p)
	}
	block := fmt.Sprintf("standby_cluster {\n  host = %q\n  port = %q\n}\n", strings.Join(hosts, ","), strings.Join(list, ","))
	s := &secondSite{}
	api := func(base *string) string {
		port := pgtest.FreePort(t)
		*base = fmt.Sprintf("http://127.0.0.1:%d", port)
		return fmt.Sprintf("api {\n  listen = \"127.0.0.1:%d\"\n  username = \"ops\"\n  password = \"s3cret-api\"\n}\n", port)
	}
	s.b1, s.b2 = b.member(t, "b1", block+api(&s.api1)), b.member(t, "b2", block+api(&s.api2))
	return s
}

// runStandbySite is what a standby cluster is for, from empty to the site's promotion, against a
// first site whose primary is p and whose standby is s (table t exists on it): b1 is made from
// the remote and leads the second site as standby_leader (in status and to the API:
// /standby-leader 200, /primary 503), b2 cascades from it (/replica 200), and a row written on
// p reaches both. whileStandby, when set, runs then. After switchover, which makes s the first
// site's primary, b1 streams from s on the new timeline, without a new copy, and rows written
// there reach both. `pgimaged standby promote` makes b1 writable, b2 follows it on its timeline
// and b1's writes reach b2.
func runStandbySite(t *testing.T, site *secondSite, p, s *node, whileStandby, switchover func()) {
	t.Helper()
	b1, b2 := site.b1, site.b2
	ag1 := b1.start(t)
	waitStandbyCluster(t, b1, []*agentProc{ag1}, "b1")
	agents := []*agentProc{ag1, b2.start(t)}
	stopAllAtCleanup(t, agents[1])
	waitStandbyCluster(t, b1, agents, "b1", "b2")
	waitStreaming(t, b1, "b2")
	_, tl := receiverOf(t, b1)
	waitReceiver(t, b1, p.port, tl)
	execOn(t, p, "INSERT INTO t VALUES (1)")
	for _, n := range []*node{b1, b2} {
		waitRows(t, n, 1)
	}
	st, _ := status(t, b1)
	if m, _ := st.member("b1"); st.Leader != "b1" || m.Role != "standby_leader" {
		t.Errorf("status: leader %q, b1's role %q, want b1 as standby_leader:\n%s", st.Leader, m.Role, st)
	}
	for url, want := range map[string]int{site.api1 + "/standby-leader": 200, site.api1 + "/primary": 503, site.api2 + "/replica": 200} {
		if got := httpStatus(url); got != want {
			t.Errorf("GET %s: %d, want %d", url, got, want)
		}
	}
	if whileStandby != nil {
		whileStandby()
	}

	switchover()
	execOn(t, s, "INSERT INTO t VALUES (2)")
	waitReceiver(t, b1, s.port, tl+1)
	for _, n := range []*node{b1, b2} {
		waitRows(t, n, 2)
	}
	waitStandbyCluster(t, b1, agents, "b1", "b2")
	if got := strings.Count(agents[0].out.String(), "creating the standby leader from the remote"); got != 1 {
		t.Errorf("the standby leader was made from the remote %d times, want once:\n%s", got, agents[0].out.String())
	}

	r := run(t, b1.env, "standby", "promote", "-config", b1.config, "--yes", "-json")
	var out struct {
		Leader   string `json:"leader"`
		Timeline int    `json:"timeline"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); r.code != 0 || err != nil || out.Leader != "b1" || out.Timeline != tl+2 {
		t.Fatalf("standby promote: %+v (%v), want b1 on timeline %d: %s", out, err, tl+2, r)
	}
	eventually(t, guard, "b1 accepting a write", func() bool { return insertOne(b1, 3) })
	waitLeader(t, b1, agents, "b1", "b2")
	waitReceiver(t, b2, b1.port, tl+2)
	waitRows(t, b2, 3)
	waitFor(t, guard, "GET /primary answering 200 on the promoted b1", agents, func() bool { return httpStatus(site.api1+"/primary") == 200 })
}

// withSuperuserTLS adds TLS settings (HCL attributes) to the superuser block of n's
// configuration.
func withSuperuserTLS(t *testing.T, n *node, attrs string) {
	t.Helper()
	editConfig(t, n, "    superuser {\n", "    superuser {\n"+attrs+"\n")
}

// sslStreaming reports whether application_name streams from n over TLS.
func sslStreaming(t *testing.T, n *node, application string) bool {
	t.Helper()
	conn := connectTCP(t, n.port, "postgres", n.superPass, "postgres")
	defer conn.Close(context.Background())
	var ssl bool
	err := conn.QueryRow(t.Context(), "SELECT coalesce(bool_and(s.ssl), false) FROM pg_stat_replication r JOIN pg_stat_ssl s USING (pid) WHERE r.application_name = $1 AND r.state = 'streaming'", application).Scan(&ssl)
	return err == nil && ssl
}

// TestStandbyClusterOverVerifiedTLS is a second site whose every connection verifies the server
// (sslmode verify-full against a CA made here): the first site's members serve TLS for
// localhost and refuse replication without it; the second site's replication and superuser
// connections carry sslmode = "verify-full" and the CA, its block names both first-site members
// by that host name, and its own members serve TLS too. The whole life of the standby cluster
// runs over it (see runStandbySite): its standby leader and its replica stream over TLS,
// primary_conninfo asks for verify-full, a switchover on the first site is followed and
// `pgimaged standby promote` makes the second writable.
func TestStandbyClusterOverVerifiedTLS(t *testing.T) {
	certs := workDir(t)
	cert, key := testenv.WriteCertificate(t, certs, "server")
	verify := fmt.Sprintf("      sslmode     = \"verify-full\"\n      sslrootcert = %q", cert)

	a := fileCluster(t)
	a1, a2 := a.member(t, "a1", ""), a.member(t, "a2", "")
	for _, n := range []*node{a1, a2} {
		serveReplicationTLS(t, n, cert, key)
	}
	siteA := startInTurn(t, a1, a2)
	execOn(t, a1, "CREATE TABLE t (id int)")

	site := newSecondSite(t, "localhost", []int{a2.port, a1.port}, a.superPass, a.replPass)
	for _, n := range []*node{site.b1, site.b2} {
		serveReplicationTLS(t, n, cert, key)
		withReplicationTLS(t, n, verify)
		withSuperuserTLS(t, n, verify)
	}
	if r := run(t, site.b1.env, "validate", "-config", site.b1.config); r.code != 0 {
		t.Fatalf("validate: %s", r)
	}
	runStandbySite(t, site, a1, a2, func() {
		if !sslStreaming(t, a1, "b1") || !sslStreaming(t, site.b1, "b2") {
			t.Errorf("b1 streams from a1 over TLS: %v, b2 from b1: %v; want both", sslStreaming(t, a1, "b1"), sslStreaming(t, site.b1, "b2"))
		}
		for _, n := range []*node{site.b1, site.b2} {
			auto, err := os.ReadFile(filepath.Join(n.dataDir, pg.RecoveryFile))
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{"host=localhost", "sslmode=verify-full", "sslrootcert=" + cert} {
				if !strings.Contains(string(auto), want) {
					t.Errorf("primary_conninfo of %s lacks %q:\n%s", n.name, want, auto)
				}
			}
		}
	}, func() {
		waitFor(t, guard, "a2 published streaming from a1", siteA, func() bool { return upstreamOf(t, a1, "a2") == "a1" })
		if r := run(t, a1.env, "switchover", "-config", a1.config, "--candidate", "a2", "--yes"); r.code != 0 {
			t.Fatalf("switchover on the first site: %s", r)
		}
		waitLeader(t, a2, siteA, "a2", "a1")
	})
}
