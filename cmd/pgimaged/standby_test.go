package main_test

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// TestValidateStandbyCluster: validate checks standby_cluster's methods against their plugins
// as it checks postgresql's, says which it leaves out when the block has no host, refuses a
// block with no method that could make its leader, and shows the remote as the source, with
// the replication role and its TLS settings.
func TestValidateStandbyCluster(t *testing.T) {
	dir := workDir(t)
	ca := writeFile(t, dir, "ca.crt", "x", 0o644)
	write := func(name, block string) string {
		return writeFile(t, dir, name+".hcl", fmt.Sprintf(`scope      = "site-b"
name       = "b1"
data_dir   = %q
plugin_dir = %q
postgresql {
  authentication {
    replication {
      username    = "replicator"
      sslmode     = "verify-full"
      sslrootcert = %q
    }
  }
}
method "restore" {
  plugin = "pgbackrest"
  stanza = "main"
}
method "copy" {
  plugin = "basebackup"
  pgdata = "/elsewhere"
}
standby_cluster {
%s
}
`, filepath.Join(dir, name), pluginDir(t), ca, block), 0o600)
	}

	archive := write("archive", `  restore_command        = "cp /archive/%f %p"
  create_replica_methods = ["restore", "basebackup"]`)
	r := run(t, nil, "validate", "-config", archive)
	if r.code != 0 || !strings.Contains(r.stdout, "no remote primary") {
		t.Errorf("archive-only standby cluster: %s", r)
	}
	if !strings.Contains(r.stderr, "archive.hcl:24:40: Warning: Method left out of the standby cluster") || strings.Contains(r.stderr, `method "restore"`) {
		t.Errorf("validate does not say that basebackup (and only it) is left out without a host: %s", r)
	}

	none := write("none", `  restore_command = "cp /archive/%f %p"`)
	if r := run(t, nil, "validate", "-config", none); r.code != 3 || !strings.Contains(r.stderr, "none.hcl:22:1: Error: No method for the standby leader") {
		t.Errorf("no method could make the standby leader: %s", r)
	}

	refused := write("refused", `  host                   = "10.1.0.5,10.1.0.6"
  port                   = "5432,5433"
  create_replica_methods = ["copy"]`)
	if r := run(t, nil, "validate", "-config", refused); r.code != 3 || !strings.Contains(r.stderr, "refused.hcl:20:3:") || !strings.Contains(r.stderr, "pgdata") {
		t.Errorf("a refused option of a standby_cluster method is not reported at its place: %s", r)
	}

	remote := write("remote", `  host                   = "10.1.0.5,10.1.0.6"
  port                   = "5432,5433"
  primary_slot_name      = "site_b"
  create_replica_methods = ["restore", "basebackup"]`)
	r = run(t, nil, "validate", "-json", "-config", remote)
	var out struct {
		Valid   bool `json:"valid"`
		Standby struct {
			Source   string            `json:"source"`
			Methods  []string          `json:"create_replica_methods"`
			Recovery map[string]string `json:"recovery"`
		} `json:"standby_cluster"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || r.code != 0 || !out.Valid {
		t.Fatalf("validate -json: %v\n%s", err, r)
	}
	// Several hosts: the connection asks for the one that takes writes, the remote primary.
	want := "host=10.1.0.5,10.1.0.6 port=5432,5433 user=replicator dbname=postgres sslmode=verify-full sslrootcert=" + ca + " target_session_attrs=read-write"
	if out.Standby.Source != want || strings.Join(out.Standby.Methods, ",") != "restore,basebackup" || out.Standby.Recovery["primary_slot_name"] != "site_b" {
		t.Errorf("standby_cluster shown as %+v, want source %q", out.Standby, want)
	}
	if strings.Contains(r.stderr, "Warning") {
		t.Errorf("with a host no method is left out: %s", r)
	}
}
