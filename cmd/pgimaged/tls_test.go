package main_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pgimaged/pgimaged/core/pg"
	"github.com/pgimaged/pgimaged/internal/pgtest"
	"github.com/pgimaged/pgimaged/internal/testenv"
)

// TestCloneFromTLSSource clones from a primary that accepts only TLS connections, with a
// source URL that asks pgimaged to verify the server against the operator's CA: pgimaged's
// own checks, pg_basebackup and the standby's WAL receiver all verify it, and a source whose
// certificate the CA did not sign is refused without leaving a data directory behind.
func TestCloneFromTLSSource(t *testing.T) {
	dir := workDir(t)
	serverCert, serverKey := testenv.WriteCertificate(t, dir, "server")
	otherCA, _ := testenv.WriteCertificate(t, dir, "other")
	p := pgtest.StartPrimary(t, pgtest.Options{
		Parameters: map[string]string{"ssl": "on", "ssl_cert_file": serverCert, "ssl_key_file": serverKey},
		HBA: []string{
			"hostnossl all all 0.0.0.0/0 reject",
			"hostnossl replication all 0.0.0.0/0 reject",
			"hostnossl all all ::/0 reject",
			"hostnossl replication all ::/0 reject",
		},
	})
	source := func(ca string) string {
		return "postgresql://replicator@localhost:" + strconv.Itoa(p.Port) + "/postgres?sslmode=verify-full&sslrootcert=" + ca
	}

	refused := replicaOf(t, p, "refused", `method "basebackup" { checkpoint = "fast" }`)
	r := run(t, refused.env, "clone", "-config", refused.config, "--connstring", source(otherCA))
	if r.code == 0 {
		t.Fatalf("clone from a server the CA did not sign succeeded: %s", r)
	}
	if !strings.Contains(r.stderr, "certificate") {
		t.Errorf("the refusal does not say the certificate is the cause: %s", r)
	}
	if _, err := os.Stat(refused.dataDir); !os.IsNotExist(err) {
		t.Errorf("the failed clone left %s behind (%v)", refused.dataDir, err)
	}

	n := replicaOf(t, p, "replica1", `method "basebackup" { checkpoint = "fast" }`)
	r = run(t, n.env, "clone", "-config", n.config, "-json", "--connstring", source(serverCert))
	if r.code != 0 {
		t.Fatalf("clone over TLS failed: %s\nserver log:\n%s", r, n.serverLog())
	}
	if c := parseClone(t, r); c.Method != "basebackup" || !c.Running {
		t.Errorf("clone result: %+v", c)
	}
	auto, err := os.ReadFile(filepath.Join(n.dataDir, pg.RecoveryFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"sslmode=verify-full", "sslrootcert=" + serverCert} {
		if !strings.Contains(string(auto), want) {
			t.Errorf("primary_conninfo lacks %q:\n%s", want, auto)
		}
	}
	eventually(t, time.Minute, "the replica streams over TLS", func() bool {
		return p.QueryString(t, "SELECT count(*)::text FROM pg_stat_replication r JOIN pg_stat_ssl s USING (pid) WHERE s.ssl AND r.state = 'streaming'") == "1"
	})
}
