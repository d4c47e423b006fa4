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
)

// runbookCommand is one `pgimaged …` line of a sh block in docs/operations.md.
type runbookCommand struct {
	line int
	args []string
	exit int
	env  []string // NAME=VALUE of the export lines before it
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
	if len(cmds) < 10 {
		t.Fatalf("found %d pgimaged commands in the runbook's sh blocks; the extraction is broken", len(cmds))
	}
	c := fileCluster(t)
	n1, n2 := c.member(t, "node1", ""), c.member(t, "node2", "")
	startInTurn(t, n1, n2)
	waitStreaming(t, n1, "node2")

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
	replace := strings.NewReplacer(
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
		args := make([]string, len(cmd.args))
		for i, a := range cmd.args {
			args[i] = replace.Replace(a)
		}
		r := runPgimaged(t, work, guard, append(append([]string{}, n1.env...), cmd.env...), args...)
		if r.code != cmd.exit {
			t.Errorf("docs/operations.md:%d: pgimaged %s: exit %d, the runbook says %d\n%s", cmd.line, strings.Join(cmd.args, " "), r.code, cmd.exit, r)
		}
	}
}
