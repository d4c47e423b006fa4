package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgimaged/pgimaged/internal/pgtest"
)

// login tries a password login on port over TCP; nil when it succeeds.
func login(port int, user, password string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg, err := pgx.ParseConfig(fmt.Sprintf("host=127.0.0.1 port=%d user=%s dbname=postgres sslmode=disable", port, user))
	if err != nil {
		return err
	}
	cfg.Password = password
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	return conn.Close(ctx)
}

// apiBlock is a member's api block on port, with the credentials the tests use.
func apiBlock(port int) string {
	return fmt.Sprintf("api {\n  listen = \"127.0.0.1:%d\"\n  username = \"ops\"\n  password = \"s3cret-api\"\n}", port)
}

// diagnosticAt finds a diagnostic of node1's configuration with its place, file:line:col.
var diagnosticAt = regexp.MustCompile(`node1\.hcl:\d+:\d+: Error: `)

// diagnosticAt3 is diagnosticAt for node3.
var diagnosticAt3 = regexp.MustCompile(`node3\.hcl:\d+:\d+: Error: `)

// reloadOutcome is the JSON `pgimaged reload -json` prints.
type reloadOutcome struct {
	Changed        []string `json:"changed"`
	Refused        []string `json:"refused"`
	Errors         []string `json:"errors"`
	PendingRestart []string `json:"pending_restart"`
	Rotated        []string `json:"rotated"`
}

// TestReload changes a running three-member cluster's configuration and reloads it: a parameter
// applied live, one that needs a restart (pending_restart in status and GET /patroni), a pg_hba
// change, a pg_hba line PostgreSQL rejects, a file with a syntax error and a changed data_dir
// (both refused, the old configuration kept), SIGHUP to a member without an API, and a rotation of the replication
// password after which the replicas stream with the new one, and of the superuser's; on the file
// DCS and on etcd.
func TestReload(t *testing.T) {
	onEachBackend(t, testReload)
}

func testReload(t *testing.T, b backend) {
	c := b.cluster(t, "e2e-reload")
	api1, api2 := pgtest.FreePort(t), pgtest.FreePort(t)
	n1, n2 := c.member(t, "node1", apiBlock(api1)), c.member(t, "node2", apiBlock(api2))
	n3 := c.member(t, "node3", "") // no API: reload signals its agent
	agents := startInTurn(t, n1, n2, n3)
	waitStreaming(t, n1, "node2", "node3")
	execOn(t, n1, "CREATE TABLE t (id int); INSERT INTO t VALUES (1); CREATE ROLE alice LOGIN PASSWORD 'alice-pw'")
	show := func(n *node, setting string) string {
		return queryString(t, connectTCP(t, n.port, "postgres", n.superPass, "postgres"), "SHOW "+setting)
	}
	reload := func(n *node, args ...string) (result, reloadOutcome) {
		t.Helper()
		r := run(t, n.env, append([]string{"reload", "-json", "-config", n.config}, args...)...)
		var out reloadOutcome
		if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
			t.Fatalf("reload -json printed no outcome: %v\n%s", err, r)
		}
		return r, out
	}

	t.Run("parameter applied live", func(t *testing.T) {
		editConfig(t, n1, `max_connections = 30`, `max_connections = 30, work_mem = "7MB"`)
		r, out := reload(n1)
		if r.code != 0 || strings.Join(out.Changed, ",") != "postgresql.parameters.work_mem" {
			t.Fatalf("reload: want exit 0 and work_mem changed:\n%s", r)
		}
		if got := show(n1, "work_mem"); got != "7MB" {
			t.Errorf("work_mem is %s after the reload, want 7MB", got)
		}
	})

	t.Run("restart-only parameter is pending", func(t *testing.T) {
		editConfig(t, n1, `max_connections = 30`, `max_connections = 31`)
		r, out := reload(n1)
		if r.code != 0 || strings.Join(out.PendingRestart, ",") != "max_connections" {
			t.Fatalf("reload: want exit 0 and max_connections pending restart:\n%s", r)
		}
		if got := show(n1, "max_connections"); got != "30" {
			t.Errorf("max_connections is %s before a restart, want 30 still", got)
		}
		eventually(t, guard, "status to show node1 pending restart", func() bool {
			r := run(t, n1.env, "status", "-json", "-config", n1.config)
			var st struct {
				Members []struct {
					Name           string `json:"name"`
					PendingRestart bool   `json:"pending_restart"`
				} `json:"members"`
			}
			_ = json.Unmarshal([]byte(r.stdout), &st)
			for _, m := range st.Members {
				if m.Name == "node1" {
					return m.PendingRestart
				}
			}
			return false
		})
		if r := run(t, n1.env, "status", "-config", n1.config); !strings.Contains(r.stdout, "running (pending restart)") {
			t.Errorf("status does not show node1 pending restart:\n%s", r)
		}
		var body map[string]any
		getJSON(t, fmt.Sprintf("http://127.0.0.1:%d/patroni", api1), &body)
		if body["pending_restart"] != true {
			t.Errorf("GET /patroni: pending_restart %v, want true: %v", body["pending_restart"], body)
		}
	})

	t.Run("pg_hba change takes effect", func(t *testing.T) {
		if err := login(n1.port, "alice", "alice-pw"); err != nil {
			t.Fatalf("alice cannot log in before the change: %v", err)
		}
		editConfig(t, n1, `pg_hba = [`, `pg_hba = [
    "host all alice 127.0.0.1/32 reject",`)
		if r, _ := reload(n1); r.code != 0 {
			t.Fatalf("reload: want exit 0:\n%s", r)
		}
		if err := login(n1.port, "alice", "alice-pw"); err == nil || !strings.Contains(err.Error(), "pg_hba.conf rejects") {
			t.Errorf("alice logs in after pg_hba rejects her: %v", err)
		}
	})

	t.Run("pg_hba line PostgreSQL rejects", func(t *testing.T) {
		editConfig(t, n1, `"host all alice 127.0.0.1/32 reject",`, `"host all alice 127.0.0.1/32 reject",
    "host all bob 127.0.0.1/32 no-such-method",`)
		r, out := reload(n1)
		if r.code != 1 || len(out.Errors) == 0 || !strings.Contains(strings.Join(out.Errors, " "), "pg_hba.conf:") ||
			!strings.Contains(strings.Join(out.Errors, " "), "no-such-method") {
			t.Fatalf("reload: want exit 1 naming the pg_hba.conf line PostgreSQL rejects:\n%s", r)
		}
		// PostgreSQL keeps the rules it had: alice is still refused, the superuser still gets in.
		if err := login(n1.port, "alice", "alice-pw"); err == nil {
			t.Errorf("alice logs in: PostgreSQL dropped the rules it had")
		}
		_ = show(n1, "work_mem")
		eventually(t, guard, "status to report the rejected pg_hba line", func() bool {
			return strings.Contains(run(t, n1.env, "status", "-config", n1.config).stdout, "no-such-method")
		})
		editConfig(t, n1, `
    "host all bob 127.0.0.1/32 no-such-method",`, ``)
		if r, _ := reload(n1); r.code != 0 {
			t.Fatalf("reload after the fix: want exit 0:\n%s", r)
		}
	})

	t.Run("syntax error refused", func(t *testing.T) {
		editConfig(t, n1, `work_mem = "7MB"`, `work_mem = "9MB"`)
		editConfig(t, n1, `postgresql {`, `postgresql {{`)
		// On node1's host, reload checks the file itself; from node2's, node1's agent does.
		if r := run(t, n1.env, "reload", "-config", n1.config); r.code != 3 || !diagnosticAt.MatchString(r.stderr) {
			t.Errorf("reload of a file with a syntax error: want exit 3 with its diagnostics (file:line:col):\n%s", r)
		}
		r := run(t, n2.env, "reload", "-config", n2.config, "--member", "node1")
		if r.code != 3 || !diagnosticAt.MatchString(r.stderr) || !strings.Contains(r.stderr, "does not validate") {
			t.Errorf("reload of node1 with a syntax error in its file, through its agent: want exit 3 with the diagnostics (file:line:col):\n%s", r)
		}
		if got := show(n1, "work_mem"); got != "7MB" {
			t.Errorf("work_mem is %s after a refused reload, want 7MB still", got)
		}
		editConfig(t, n1, `postgresql {{`, `postgresql {`)
		editConfig(t, n1, `work_mem = "9MB"`, `work_mem = "7MB"`)
	})

	t.Run("data_dir change refused", func(t *testing.T) {
		editConfig(t, n1, `work_mem = "7MB"`, `work_mem = "9MB"`)
		editConfig(t, n1, fmt.Sprintf("data_dir   = %q", n1.dataDir), fmt.Sprintf("data_dir   = %q", n1.dataDir+"-moved"))
		r := run(t, n1.env, "reload", "-config", n1.config)
		if r.code != 4 || !strings.Contains(r.stderr, "data_dir cannot change while the agent runs") || !strings.Contains(r.stderr, "node1.hcl:3:") {
			t.Errorf("reload with a changed data_dir: want exit 4 with the reason, pointing at the setting:\n%s", r)
		}
		if got := show(n1, "work_mem"); got != "7MB" {
			t.Errorf("work_mem is %s after a refused reload, want 7MB still: the reload was half applied", got)
		}
		editConfig(t, n1, fmt.Sprintf("data_dir   = %q", n1.dataDir+"-moved"), fmt.Sprintf("data_dir   = %q", n1.dataDir))
		editConfig(t, n1, `work_mem = "9MB"`, `work_mem = "7MB"`)
	})

	t.Run("SIGHUP", func(t *testing.T) {
		// A file that does not validate: refused, with its diagnostics in status.
		editConfig(t, n3, `max_connections = 30`, `max_connections = 30, work_mem = "5MB"`)
		editConfig(t, n3, `postgresql {`, `postgresql {{`)
		if err := agents[2].cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		eventually(t, guard, "status to show node3's refused reload with its diagnostics", func() bool {
			return diagnosticAt3.MatchString(run(t, n1.env, "status", "-config", n1.config).stdout)
		})
		if got := show(n3, "work_mem"); got != "4MB" {
			t.Errorf("work_mem is %s after a refused reload, want 4MB still", got)
		}
		// Fixed, and reloaded with reload: node3 has no API, so reload signals its agent.
		editConfig(t, n3, `postgresql {{`, `postgresql {`)
		r, out := reload(n3)
		if r.code != 0 || strings.Join(out.Changed, ",") != "postgresql.parameters.work_mem" {
			t.Fatalf("reload of node3: want exit 0 and work_mem changed:\n%s", r)
		}
		if got := show(n3, "work_mem"); got != "5MB" {
			t.Errorf("work_mem is %s after the reload, want 5MB", got)
		}
	})

	t.Run("tags through another member's API", func(t *testing.T) {
		editConfig(t, n2, `api {`, "tags = { rotated = \"yes\" }\napi {")
		r, out := reload(n1, "--member", "node2")
		if r.code != 0 || strings.Join(out.Changed, ",") != "tags.rotated" {
			t.Fatalf("reload --member node2: want exit 0 and the tag changed:\n%s", r)
		}
		eventually(t, guard, "node2 to publish its new tag", func() bool {
			st, err := status(t, n1)
			m, ok := st.member("node2")
			return err == nil && ok && m.Tags["rotated"] == "yes"
		})
	})

	if b.kind == "etcd" {
		t.Run("patronictl list shows the pending restart", func(t *testing.T) {
			r := patronictl(t, patronictlConfig(t, c.scope, b.endpoint), "list", "-f", "json")
			var rows []map[string]any
			if r.code != 0 || json.Unmarshal([]byte(r.stdout), &rows) != nil {
				t.Fatalf("patronictl list: %s", r)
			}
			pending := map[string]any{}
			for _, row := range rows {
				pending[fmt.Sprint(row["Member"])] = row["Pending restart"]
			}
			if pending["node1"] != "*" || pending["node2"] != nil {
				t.Errorf("patronictl list: pending restart %v, want node1 only:\n%s", pending, r)
			}
		})
	}

	t.Run("replication password rotation", func(t *testing.T) {
		old, rotated := n1.replPass, "R3pl-rotated-"+randomHex(t)
		for _, n := range []*node{n1, n2, n3} {
			writeFile(t, n.dir, "repl.pw", rotated+"\n", 0o600)
		}
		// The replicas first: they keep streaming on their connections until the primary changed the role.
		if r, _ := reload(n1, "--member", "node2"); r.code != 0 {
			t.Fatalf("reload of node2: want exit 0:\n%s", r)
		}
		if r, _ := reload(n3); r.code != 0 {
			t.Fatalf("reload of node3: want exit 0:\n%s", r)
		}
		r, out := reload(n1)
		if r.code != 0 || !strings.Contains(strings.Join(out.Rotated, ","), "replicator") {
			t.Fatalf("reload of the primary: want exit 0 and the replicator's password set:\n%s", r)
		}
		if err := login(n1.port, "replicator", old); err == nil {
			t.Errorf("the old replication password still logs in")
		}
		if err := login(n1.port, "replicator", rotated); err != nil {
			t.Errorf("the new replication password does not log in: %v", err)
		}
		// Cut the replica's connection: it reconnects with the new password from its pgpass file.
		for _, n := range []*node{n2, n3} {
			if b, err := os.ReadFile(n.dataDir + ".pgpass"); err != nil || !strings.Contains(string(b), rotated) {
				t.Errorf("%s's pgpass file does not hold the new password (%v)", n.name, err)
			}
		}
		primary := connectTCP(t, n1.port, "postgres", n1.superPass, "postgres")
		before := queryString(t, primary, "SELECT string_agg(pid::text, ',') FROM pg_stat_replication")
		execOn(t, n1, "SELECT pg_terminate_backend(pid) FROM pg_stat_replication")
		eventually(t, guard, "node2 and node3 to stream again on new connections", func() bool {
			return queryString(t, primary, "SELECT COALESCE(string_agg(application_name, ',' ORDER BY application_name), '') FROM pg_stat_replication WHERE state = 'streaming' AND NOT pid::text = ANY (string_to_array($1, ','))", before) == "node2,node3"
		})
		execOn(t, n1, "INSERT INTO t VALUES (2)")
		waitRows(t, n2, 2)
		waitRows(t, n3, 2)
		for _, a := range agents {
			if strings.Contains(a.out.String(), rotated) || strings.Contains(a.out.String(), old) {
				t.Errorf("a replication password is in the log of %s", a.config)
			}
		}
		for _, n := range []*node{n1, n2} {
			if b, err := os.ReadFile(filepath.Join(n.dataDir, "postgresql.auto.conf")); err == nil && strings.Contains(string(b), rotated) {
				t.Errorf("the new password is in %s's data directory", n.name)
			}
		}
	})

	t.Run("superuser password rotation", func(t *testing.T) {
		old, rotated := n1.superPass, "Sup3r-rotated-"+randomHex(t)
		members := []*node{n2, n3, n1} // the replicas first, as for the replication password
		for _, n := range members {
			pw := writeFile(t, n.dir, "super.pw", rotated+"\n", 0o600)
			editConfig(t, n, `password = env("E2E_SUPERUSER_PASSWORD")`, fmt.Sprintf("password = file(%q)", pw))
			r, out := reload(n)
			if r.code != 0 || strings.Join(out.Changed, ",") != "postgresql.authentication.rewind.password,postgresql.authentication.superuser.password" {
				t.Fatalf("reload of %s: want exit 0 and the superuser's password changed:\n%s", n.name, r)
			}
			if n == n1 && !strings.Contains(strings.Join(out.Rotated, ","), "postgres") {
				t.Errorf("reload of the primary did not set the superuser's password: %v", out.Rotated)
			}
		}
		if err := login(n1.port, "postgres", old); err == nil {
			t.Errorf("the old superuser password still logs in")
		}
		for _, n := range members { // the role replicated to the standbys
			eventually(t, guard, n.name+" to take the new superuser password", func() bool { return login(n.port, "postgres", rotated) == nil })
			n.superPass = rotated
		}
		for _, a := range agents {
			if strings.Contains(a.out.String(), rotated) {
				t.Errorf("the new superuser password is in the log of %s", a.config)
			}
		}
	})
}

// TestReloadSetsTheRewindPassword: the rewind role the bootstrap created takes the password a
// reload of the primary's configuration gives it; the old one no longer logs in.
func TestReloadSetsTheRewindPassword(t *testing.T) {
	c := fileCluster(t)
	n1 := c.member(t, "node1", "")
	withRewindRole(t, n1, "rewinder", "Rw-first-1")
	startInTurn(t, n1)
	if err := login(n1.port, "rewinder", "Rw-first-1"); err != nil {
		t.Fatalf("the rewind role the bootstrap created: %v", err)
	}
	editConfig(t, n1, `password = "Rw-first-1"`, `password = "Rw-second-2"`)
	r := run(t, n1.env, "reload", "-json", "-config", n1.config)
	var out reloadOutcome
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || r.code != 0 || !slices.Contains(out.Rotated, "rewinder") {
		t.Fatalf("reload: %s\nwant exit 0 and the rewind role's password set (%v)", r, err)
	}
	if err := login(n1.port, "rewinder", "Rw-second-2"); err != nil {
		t.Errorf("the rewind role's new password: %v", err)
	}
	if err := login(n1.port, "rewinder", "Rw-first-1"); err == nil {
		t.Errorf("the rewind role's old password still logs in")
	}
}
