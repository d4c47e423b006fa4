package main_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgimaged/pgimaged/internal/pgtest"
	"github.com/pgimaged/pgimaged/internal/testenv"
)

// patroniMember is a Patroni configuration as Patroni's own examples write one: a relative
// data_dir, the socket in the directory above it, pg_hba and initdb in the bootstrap section,
// the cluster-wide parameters and timing in bootstrap.dcs, and settings pgimaged has no
// equivalent for. The replication password is left to PATRONI_REPLICATION_PASSWORD.
const patroniMember = `scope: imported
namespace: /imported-e2e/
name: %[1]s
restapi:
  listen: 127.0.0.1:%[4]d
etcd:
  hosts: %[5]s
bootstrap:
  dcs:
    ttl: 30
    loop_wait: 1
    retry_timeout: 10
    postgresql:
      use_pg_rewind: true
      parameters:
        fsync: off
        shared_buffers: 16MB
        max_connections: 30
  initdb:
  - encoding: UTF8
  - data-checksums
  pg_hba:
  - host all all 127.0.0.1/32 scram-sha-256
  - host replication replicator 127.0.0.1/32 scram-sha-256
postgresql:
  listen: 127.0.0.1:%[2]d
  connect_address: 127.0.0.1:%[2]d
  data_dir: data/%[1]s
  bin_dir: %[3]s
  authentication:
    superuser:
      username: postgres
      password: %[6]s
    replication:
      username: replicator
  parameters:
    unix_socket_directories: '..'
  create_replica_methods:
  - basebackup
  basebackup:
  - checkpoint: fast
watchdog:
  mode: off
`

// Two Patroni members converted by `pgimaged import patroni` bootstrap and clone for real under
// `pgimaged run`: one primary and one streaming replica, on etcd.
func TestImportPatroniCluster(t *testing.T) {
	e := startEtcd(t, 0)
	work := workDir(t)
	superPass, replPass := "Sup3r-"+randomHex(t), "R3pl-"+randomHex(t)
	var nodes []*node
	for _, name := range []string{"node1", "node2"} {
		port := pgtest.FreePort(t)
		yml := writeFile(t, work, name+".yml",
			fmt.Sprintf(patroniMember, name, port, testenv.PGBinDir(t), pgtest.FreePort(t), e.endpoint, superPass), 0o600)
		out := filepath.Join(work, name+".hcl")
		r := run(t, []string{"PATRONI_REPLICATION_PASSWORD=" + replPass},
			"import", "patroni", yml, "-o", out, "--base-dir", work, "--secrets=env")
		if r.code != 0 {
			t.Fatalf("import failed: %s", r)
		}
		for _, s := range []string{"PGIMAGED_SUPERUSER_PASSWORD", "PGIMAGED_REPLICATION_PASSWORD", "use_pg_rewind", "watchdog", "PATRONI_REPLICATION_PASSWORD"} {
			if !strings.Contains(r.stderr, s) {
				t.Errorf("import says nothing of %s:\n%s", s, r)
			}
		}
		hcl, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(hcl), "api {") {
			t.Errorf("restapi was not converted into the api block:\n%s", hcl)
		}
		if strings.Contains(string(hcl), superPass) || strings.Contains(string(hcl), replPass) ||
			strings.Contains(r.stderr, superPass) || strings.Contains(r.stderr, replPass) {
			t.Errorf("a password was written with --secrets=env:\n%s\n%s", hcl, r)
		}
		n := &node{name: name, dir: work, dataDir: filepath.Join(work, "data", name), config: out, port: port,
			superPass: superPass, replPass: replPass,
			env: []string{"PGIMAGED_SUPERUSER_PASSWORD=" + superPass, "PGIMAGED_REPLICATION_PASSWORD=" + replPass}}
		stopServerAtCleanup(t, n.dataDir)
		if r := run(t, n.env, "validate", "-config", out); r.code != 0 {
			t.Fatalf("the imported configuration does not validate: %s\n%s", r, hcl)
		}
		nodes = append(nodes, n)
	}
	startInTurn(t, nodes...)
	waitStreaming(t, nodes[0], "node2")
	if _, err := os.Stat(filepath.Join(work, "data", fmt.Sprintf(".s.PGSQL.%d", nodes[1].port))); err != nil {
		t.Errorf("the replica's socket is not in the directory above its data directory: %v", err)
	}
	// The members are where Patroni's namespace puts them.
	out, err := exec.Command(testenv.LookPath(t, "etcdctl"), "--endpoints="+e.endpoint,
		"get", "--prefix", "--keys-only", "/imported-e2e/imported/members/").CombinedOutput()
	if err != nil {
		t.Fatalf("etcdctl: %v\n%s", err, out)
	}
	for _, name := range []string{"node1", "node2"} {
		if !strings.Contains(string(out), "/imported-e2e/imported/members/"+name) {
			t.Errorf("member %s is not under the namespace /imported-e2e/:\n%s", name, out)
		}
	}
}

// validate on a YAML file says it is YAML and names the import command, instead of HCL's errors.
func TestValidateYAML(t *testing.T) {
	work := workDir(t)
	src := "scope: batman\nname: postgresql0\npostgresql:\n  data_dir: data/postgresql0\n"
	for _, name := range []string{"patroni.yml", "patroni.conf"} {
		f := writeFile(t, work, name, src, 0o600)
		r := run(t, nil, "validate", "-config", f)
		if r.code != 3 || !strings.Contains(r.stderr, "YAML") || !strings.Contains(r.stderr, "pgimaged import patroni "+f) {
			t.Errorf("validate %s: %s", name, r)
		}
		if strings.Contains(r.stderr, "Argument or block definition required") {
			t.Errorf("validate %s prints HCL's errors about YAML:\n%s", name, r)
		}
	}
}

// Every Patroni configuration of the conversion's tests, imported, passes `pgimaged validate`
// with the installed plugins checking their methods' options.
func TestImportPatroniValidates(t *testing.T) {
	testdata, err := filepath.Abs("../../core/patroni/testdata")
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(testdata, "*.yml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no Patroni configurations in %s: %v", testdata, err)
	}
	work := workDir(t)
	env := []string{"PGIMAGED_SUPERUSER_PASSWORD=s", "PGIMAGED_REPLICATION_PASSWORD=r", "PGIMAGED_ETCD_PASSWORD=e",
		"PGIMAGED_REPLICATION_SSLPASSWORD=k", "PGIMAGED_REWIND_PASSWORD=w", "PGIMAGED_API_PASSWORD=a"}
	// Git keeps no file mode but the executable bit; libpq, and so validate, wants a client key
	// that only its owner, the PostgreSQL OS user, can read: the TLS files are copied so.
	copied := filepath.Join(work, "testdata")
	if err := os.MkdirAll(filepath.Join(copied, "tls"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"ca.crt", "client.crt", "client.key"} {
		b, err := os.ReadFile(filepath.Join(testdata, "tls", name))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(copied, "tls"), name, string(b), 0o600)
	}
	for _, f := range files {
		out := filepath.Join(work, strings.TrimSuffix(filepath.Base(f), ".yml")+".hcl")
		// Some are weaker once converted (permanent slots, a watchdog): accepted, what is
		// written is what validate checks.
		r := run(t, nil, "import", "patroni", "--secrets=env", "--accept-weaker", "--base-dir", copied, f, "-o", out)
		if r.code != 0 {
			t.Errorf("import %s: %s", f, r)
			continue
		}
		hcl, _ := os.ReadFile(out)
		if r := run(t, env, "validate", "-config", out); r.code != 0 {
			t.Errorf("the import of %s does not validate: %s\n%s", f, r, hcl)
		}
	}
}

// import patroni's command line: the output on stdout with the passwords kept and a warning,
// usage errors and an unreadable file.
func TestImportPatroniCommandLine(t *testing.T) {
	work := workDir(t)
	yml := writeFile(t, work, "p.yml", "scope: s\nname: n\npostgresql:\n  data_dir: d\n  authentication:\n"+
		"    superuser:\n      username: postgres\n      password: Kept-Pw-1\n", 0o600)
	r := run(t, nil, "import", "patroni", yml, "--base-dir", work)
	if r.code != 0 || !strings.Contains(r.stdout, `"Kept-Pw-1"`) || !strings.Contains(r.stderr, "warning") ||
		!strings.Contains(r.stdout, filepath.Join(work, "d")) {
		t.Errorf("import to stdout: %s", r)
	}
	if strings.Contains(r.stderr, "Kept-Pw-1") {
		t.Errorf("the password appears on stderr:\n%s", r)
	}
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"import", "patroni", yml, "--secrets=file"}, 2},
		{[]string{"import", "patroni"}, 2},
		{[]string{"import", "consul", yml}, 2},
		{[]string{"import", "patroni", filepath.Join(work, "missing.yml")}, 1},
		{[]string{"import", "patroni", "-h"}, 0},
	} {
		if r := run(t, nil, tc.args...); r.code != tc.code {
			t.Errorf("%v: exit %d, want %d\n%s", tc.args, r.code, tc.code, r)
		}
	}
}
