package main_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pgimaged/pgimaged/internal/testenv"
	"github.com/pgimaged/pgimaged/sdk"
	"github.com/pgimaged/pgimaged/sdk/syncfs"
)

// TestPlanListAndMapOptions plans a clone whose methods take list and map options, one element
// of each read by env(): basebackup's tablespace-mapping becomes one -T per element, a script
// method gets one --name=element per list element and --name=key=value per map entry, and
// what env() read is masked in the plan.
func TestPlanListAndMapOptions(t *testing.T) {
	c := fileCluster(t)
	n1 := c.member(t, "node1", "")
	startInTurn(t, n1)

	secret := "/ts-s3cret-" + randomHex(t)
	n2 := writeNode(t, nodeSpec{
		scope: c.scope, name: "node2", nameInPath: true, top: c.dcs, superPass: c.superPass, replPass: c.replPass,
		extra: `
method "basebackup" {
  checkpoint         = "fast"
  tablespace-mapping = ["/srv/ts1=/data/ts1", "/srv/ts2=${env("E2E_TS_SECRET")}"]
}
method "custom" {
  command = "/bin/true"
  include = ["db1", "db 2"]
  env     = { REGION = "eu-west-1", TOKEN = env("E2E_TS_SECRET") }
}
` + c.shared,
	})
	// Both methods run, in this order.
	cfg, err := os.ReadFile(n2.config)
	if err != nil {
		t.Fatal(err)
	}
	cfg = []byte(strings.Replace(string(cfg), "postgresql {", "postgresql {\n  create_replica_methods = [\"basebackup\", \"custom\"]", 1))
	if err := os.WriteFile(n2.config, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	n2.env = append(n2.env, "E2E_TS_SECRET="+secret)

	p, r := plan(t, n2)
	if strings.Contains(r.stdout, secret) || strings.Contains(r.stderr, secret) {
		t.Errorf("the value read by env() appears in the plan:\n%s", r)
	}
	if p.Path != "clone" || len(p.Methods) != 2 || len(p.Methods[0].Commands) != 1 || len(p.Methods[1].Commands) != 1 {
		t.Fatalf("plan:\n%s", r)
	}
	dsn := fmt.Sprintf("host=127.0.0.1 port=%d user=replicator dbname=postgres", n1.port)
	want := []string{
		filepath.Join(testenv.PGBinDir(t), "pg_basebackup"),
		"--pgdata=" + n2.dataDir, "-X", "stream", "--dbname=" + dsn,
		"--checkpoint=fast", "-T", "/srv/ts1=/data/ts1", "-T", sdk.Mask, "--slot=node2", "--progress", // the whole element that reads env() is masked
	}
	if syncfs.Supported() { // the plugin syncs the copy itself
		want = slices.Insert(want, len(want)-1, "--no-sync")
	}
	if got := p.Methods[0].Commands[0].Argv; !slices.Equal(got, want) {
		t.Errorf("pg_basebackup argv:\n got %q\nwant %q", got, want)
	}
	want = []string{"--include=db1", "--include=db 2", "--env=REGION=eu-west-1", "--env=TOKEN=" + sdk.Mask,
		"--scope=" + c.scope, "--role=replica", "--datadir=" + n2.dataDir, "--connstring=" + dsn}
	if got := p.Methods[1].Commands[0].Argv; len(got) == 0 || !slices.Equal(got[1:], want) {
		t.Errorf("the script's argv:\n got %q\nwant the program then %q", got, want)
	}

	// The text form shows the same command lines.
	text := run(t, n2.env, "plan", "-config", n2.config)
	if text.code != 0 || !strings.Contains(text.stdout, "-T /srv/ts1=/data/ts1 -T '"+sdk.Mask+"'") || strings.Contains(text.stdout+text.stderr, secret) {
		t.Errorf("plan's text output:\n%s", text)
	}
}
