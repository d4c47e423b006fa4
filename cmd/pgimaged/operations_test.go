package main_test

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/pgimaged/pgimaged/internal/pgtest"
)

// runbookCommand is one `pgimaged …` line of a sh block in docs/operations.md, or (shell set,
// args nil) one of its other commands, which the test carries out itself.
type runbookCommand struct {
	line  int
	args  []string
	exit  int
	env   []string // NAME=VALUE of the export lines before it
	shell string
}

var exitComment = regexp.MustCompile(`\s+#\s*exit\s+(\d+)\s*$`)

// runbookCommands extracts the pgimaged lines of the runbook's ```sh blocks, with the exit code
// each is documented to end with (a trailing "# exit N", else 0).
func runbookCommands(t *testing.T, file string) []runbookCommand {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []runbookCommand
	var env []string
	inSh := false
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "```"):
			inSh = !inSh && line == "```sh"
		case inSh && strings.HasPrefix(line, "export "):
			env = append(env, strings.Fields(strings.TrimPrefix(line, "export "))...)
		case inSh && strings.HasPrefix(line, "pgimaged "):
			c := runbookCommand{line: n, env: append([]string{}, env...)}
			if m := exitComment.FindStringSubmatch(line); m != nil {
				c.exit, _ = strconv.Atoi(m[1])
				line = line[:len(line)-len(m[0])]
			}
			c.args = strings.Fields(strings.TrimPrefix(line, "pgimaged "))
			out = append(out, c)
		case inSh && line != "":
			out = append(out, runbookCommand{line: n, shell: line})
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestOperationsRunbook runs every pgimaged command of docs/operations.md against a running
// two-member cluster, with the runbook's paths replaced by the test's, and checks that each
// exits as the runbook says.
func TestOperationsRunbook(t *testing.T) {
	cmds := runbookCommands(t, filepath.Join("..", "..", "docs", "operations.md"))
	if len(cmds) < 20 {
		t.Fatalf("found %d pgimaged commands in the runbook's sh blocks; the extraction is broken", len(cmds))
	}
	c := fileCluster(t)
	// reload --member goes through the member's API.
	n1, n2 := c.member(t, "node1", apiBlock(pgtest.FreePort(t))), c.member(t, "node2", apiBlock(pgtest.FreePort(t)))
	started := startInTurn(t, n1, n2)
	waitStreaming(t, n1, "node2")
	execOn(t, n1, "CREATE TABLE t (id int); INSERT INTO t VALUES (1)")
	nodes := map[string]*node{"node1": n1, "node2": n2}
	agents := map[string]*agentProc{"node1": started[0], "node2": started[1]}
	running := func() ([]*agentProc, []string) {
		var out []*agentProc
		var names []string
		for name, a := range agents {
			if !a.exited() {
				out, names = append(out, a), append(names, name)
			}
		}
		return out, names
	}
	rows := 1 // the rows of t the runbook's INSERTs add to
	var rotated rotation

	work := workDir(t)
	plugins := filepath.Join(work, "plugins")
	if err := os.Mkdir(plugins, 0o755); err != nil {
		t.Fatal(err)
	}
	lockDir := filepath.Join(work, "lock")
	if err := os.Mkdir(lockDir, 0o755); err != nil {
		t.Fatal(err)
	}
	patroniYAML := writeFile(t, work, "patroni.yml", fmt.Sprintf(`scope: %s
name: node3
restapi:
  listen: 127.0.0.1:8008
  connect_address: 127.0.0.1:8008
etcd3:
  hosts: 127.0.0.1:2379
bootstrap:
  dcs:
    ttl: 30
    loop_wait: 10
postgresql:
  listen: 127.0.0.1:5439
  connect_address: 127.0.0.1:5439
  data_dir: data/node3
  bin_dir: /usr/lib/postgresql/15/bin
  authentication:
    superuser:
      username: postgres
      password: Sup3r
    replication:
      username: replicator
      password: R3pl
  create_replica_methods: [basebackup]
  basebackup:
    checkpoint: fast
`, c.scope), 0o644)
	// The second site, a standby cluster of this one, made when the runbook first names it.
	siteB := backend{kind: "file"}.cluster(t, "site-b")
	siteB.superPass, siteB.replPass = c.superPass, c.replPass
	b1 := siteB.member(t, "b1", fmt.Sprintf("standby_cluster {\n  host = \"127.0.0.1,127.0.0.1\"\n  port = \"%d,%d\"\n}\n", n1.port, n2.port))
	followB := withBlock(t, n1, "follow-site-b.hcl", fmt.Sprintf("standby_cluster {\n  host = \"127.0.0.1\"\n  port = %d\n}\n", b1.port))
	startSiteB := func() {
		if _, ok := nodes["b1"]; ok {
			return
		}
		b1.replPass = n1.replPass // rotated above
		writeFile(t, b1.dir, "repl.pw", b1.replPass+"\n", 0o600)
		a := b1.start(t)
		stopAllAtCleanup(t, a)
		nodes["b1"], agents["b1"] = b1, a
		waitStandbyCluster(t, b1, []*agentProc{a}, "b1")
		waitRows(t, b1, rows)
	}
	replace := strings.NewReplacer(
		"/etc/pgimaged/site-b/b1.hcl", b1.config,
		"/etc/pgimaged/follow-site-b.hcl", followB,
		"/etc/pgimaged/node1.hcl", n1.config,
		"/etc/pgimaged/node2.hcl", n2.config,
		"/etc/pgimaged/imported.hcl", filepath.Join(work, "imported.hcl"),
		// Not beside imported.hcl: the packaged lock file records every packaged plugin, this one
		// only what the runbook installs.
		"/etc/pgimaged/plugins.lock.hcl", filepath.Join(lockDir, "plugins.lock.hcl"),
		"/usr/lib/pgimaged/plugins", plugins,
		"./pgimaged-plugin-basebackup", filepath.Join(pluginDir(t), "pgimaged-plugin-basebackup"),
		"/etc/patroni/patroni.yml", patroniYAML,
	)
	for _, cmd := range cmds {
		if all := cmd.shell + " " + strings.Join(cmd.args, " "); strings.Contains(all, "site-b") || strings.Contains(all, "-h b1 ") {
			startSiteB()
		}
		if cmd.args == nil {
			runbookShell(t, cmd, nodes, agents, &rows, &rotated)
			continue
		}
		if cmd.args[0] == "failover" { // as the runbook says: once status shows no leader
			eventually(t, guard, "the leader key to expire", func() bool {
				st, err := status(t, n2)
				return err == nil && st.Leader == ""
			})
		}
		args := make([]string, len(cmd.args))
		for i, a := range cmd.args {
			args[i] = replace.Replace(a)
		}
		r := runPgimaged(t, work, guard, append(append([]string{}, n1.env...), cmd.env...), args...)
		if r.code != cmd.exit {
			t.Errorf("docs/operations.md:%d: pgimaged %s: exit %d, the runbook says %d\n%s", cmd.line, strings.Join(cmd.args, " "), r.code, cmd.exit, r)
		}
		if cmd.args[0] == "restart" && r.code == 0 && !strings.Contains(r.stdout, "member node1: restarted successfully") {
			t.Errorf("docs/operations.md:%d: pgimaged %s: the primary, with a setting pending, was not restarted\n%s", cmd.line, strings.Join(cmd.args, " "), r)
		}
		if (cmd.args[0] == "switchover" || cmd.args[0] == "failover") && r.code == 0 {
			// The next step needs the members back: the old primary following the new one.
			up, names := running()
			st := waitCluster(t, n2, up, names...)
			var followers []string
			for _, name := range names {
				if name != st.Leader {
					followers = append(followers, name)
				}
			}
			waitStreaming(t, nodes[st.Leader], followers...)
		}
	}
}

// runbookShell carries out one of the runbook's shell commands other than pgimaged's on the
// test's cluster: an agent killed or started (systemctl), a PostgreSQL stopped as a crash would
// (pg_ctl stop -m immediate), SQL run on a member (psql; a SELECT of t waits until the member
// holds every row the runbook inserted). A command it does not know fails the test, so that
// every command of the runbook is run.
// rotation is the replication password the runbook's rotation replaced, and the new one.
type rotation struct{ old, new string }

func runbookShell(t *testing.T, cmd runbookCommand, nodes map[string]*node, agents map[string]*agentProc, rows *int, rot *rotation) {
	t.Helper()
	f := strings.Fields(cmd.shell)
	member := func(s string) *node {
		for name, n := range nodes {
			if strings.HasSuffix(s, name) {
				return n
			}
		}
		t.Fatalf("docs/operations.md:%d: %s: names no member", cmd.line, cmd.shell)
		return nil
	}
	switch {
	case len(f) == 4 && f[0] == "systemctl" && f[1] == "kill" && f[2] == "--signal=SIGKILL":
		agents[member(f[3]).name].kill()
	case len(f) == 3 && f[0] == "systemctl" && f[1] == "start":
		n := member(f[2])
		a := n.start(t)
		stopAllAtCleanup(t, a)
		agents[n.name] = a
	case f[0] == "install" && f[len(f)-1] == "/etc/pgimaged/replication.pw":
		// The new password, into the file every member's configuration reads.
		rot.old, rot.new = nodes["node1"].replPass, "R3pl-rotated-"+randomHex(t)
		for _, n := range nodes {
			writeFile(t, n.dir, "repl.pw", rot.new+"\n", 0o600)
			n.replPass = rot.new
		}
	case len(f) == 6 && f[0] == "pg_ctl" && f[1] == "stop" && f[3] == "immediate":
		stopImmediately(t, member(f[5]))
	case f[0] == "psql":
		n, sql := nodes["node1"], ""
		if m := regexp.MustCompile(`^psql (?:-h (\S+) )?-c "(.*)"$`).FindStringSubmatch(cmd.shell); m != nil {
			if m[1] != "" {
				n = member(m[1])
			}
			sql = m[2]
		}
		switch {
		case sql == "":
			t.Fatalf("docs/operations.md:%d: %s: not psql [-h member] -c \"SQL\"", cmd.line, cmd.shell)
		case sql == "SELECT * FROM t": // once the member runs again (a rejoin takes a moment)
			eventually(t, guard, n.name+" running", func() bool {
				st, err := status(t, n)
				m, ok := st.member(n.name)
				return err == nil && ok && m.State == "running"
			})
			waitRows(t, n, *rows)
		case strings.HasPrefix(sql, "SELECT pg_terminate_backend(pid) FROM pg_stat_replication"):
			// The replicas connect again and stream, with the rotated password if there is one.
			conn := connectTCP(t, n.port, "postgres", n.superPass, "postgres")
			before := queryString(t, conn, "SELECT count(*)::text FROM pg_stat_replication")
			pids := queryString(t, conn, "SELECT COALESCE(string_agg(pid::text, ','), '') FROM pg_stat_replication")
			execOn(t, n, sql)
			eventually(t, guard, "the replicas to stream again on new connections", func() bool {
				return queryString(t, conn, "SELECT count(*)::text FROM pg_stat_replication WHERE state = 'streaming' AND NOT pid::text = ANY (string_to_array($1, ','))", pids) == before
			})
			if rot.new != "" {
				if err := login(n.port, "replicator", rot.old); err == nil {
					t.Errorf("docs/operations.md:%d: the old replication password still logs in after the rotation", cmd.line)
				}
				if err := login(n.port, "replicator", rot.new); err != nil {
					t.Errorf("docs/operations.md:%d: the new replication password does not log in: %v", cmd.line, err)
				}
			}
		case strings.HasPrefix(sql, "INSERT INTO t VALUES"):
			execOn(t, n, sql)
			*rows++
		default:
			execOn(t, n, sql)
		}
	default:
		t.Errorf("docs/operations.md:%d: %s: the runbook test does not run this command; teach it (runbookShell)", cmd.line, cmd.shell)
	}
}
