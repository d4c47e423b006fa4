package main_test

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
)

// `plan --connstring C` shows the chain a one-shot `pgimaged clone --connstring C` would run,
// with each method's exact command line and no password in it, whatever the DCS holds (an empty
// one shows only a bootstrap).
func TestPlanShowsAOneShotClone(t *testing.T) {
	const password = "Pl4n-s3cret"
	n := newNode(t, "replica1", `method "basebackup" { checkpoint = "fast" }`, "")
	conn := "postgres://replicator:" + password + "@127.0.0.1:5999/postgres"

	r := run(t, n.env, "plan", "-config", n.config)
	if !strings.Contains(r.stdout, "Would: BOOTSTRAP") {
		t.Fatalf("plan with an empty DCS: %s", r)
	}
	r = run(t, n.env, "plan", "-config", n.config, "--connstring", conn)
	if r.code != 0 || !strings.Contains(r.stdout, "Would: CLONE") ||
		!regexp.MustCompile(`(?m)^\s+\$ \S*pg_basebackup --pgdata=\S+ -X stream '--dbname=[^']*host=127\.0\.0\.1[^']*port=5999[^']*' --checkpoint=fast`).MatchString(r.stdout) {
		t.Errorf("plan --connstring does not show the clone's chain with its command line:\n%s", r)
	}
	if strings.Contains(r.stdout+r.stderr, password) {
		t.Errorf("the password appears in plan's output:\n%s", r)
	}

	r = run(t, n.env, "plan", "-config", n.config, "-json", "--connstring", conn)
	var p struct {
		Path    string `json:"path"`
		Source  string `json:"source"`
		Methods []struct {
			Method   string `json:"method"`
			Commands []struct {
				Argv []string `json:"Argv"`
			} `json:"commands"`
		} `json:"methods"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &p); err != nil || r.code != 0 {
		t.Fatalf("plan -json --connstring: %v\n%s", err, r)
	}
	if p.Path != "clone" || !strings.Contains(p.Source, "port=5999") || len(p.Methods) != 1 || p.Methods[0].Method != "basebackup" ||
		len(p.Methods[0].Commands) == 0 || !strings.Contains(strings.Join(p.Methods[0].Commands[0].Argv, " "), "port=5999") {
		t.Errorf("plan -json --connstring: %+v\n%s", p, r.stdout)
	}
	if strings.Contains(r.stdout, password) {
		t.Errorf("the password appears in plan -json")
	}
}
