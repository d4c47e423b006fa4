package main_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
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

// writeEncryptedClientCert writes a self-signed client certificate (its own CA) and its RSA key
// encrypted with passphrase (the PEM encryption both libpq and pgx read), owned by the
// PostgreSQL OS user.
func writeEncryptedClientCert(t *testing.T, dir, passphrase string) (cert, key string) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		Subject: pkix.Name{CommonName: "replicator"}, SerialNumber: big.NewInt(time.Now().UnixNano()),
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	//lint:ignore SA1019 libpq and pgx both read this legacy PEM encryption; pgx reads no other
	block, err := x509.EncryptPEMBlock(rand.Reader, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(k), []byte(passphrase), x509.PEMCipherAES256) //nolint:staticcheck
	if err != nil {
		t.Fatal(err)
	}
	cert = writeFile(t, dir, "client.crt", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), 0o644)
	key = writeFile(t, dir, "client.key", string(pem.EncodeToMemory(block)), 0o600)
	testenv.PostgresUser(t).Chown(t, cert)
	testenv.PostgresUser(t).Chown(t, key)
	return cert, key
}

// withReplicationTLS adds TLS settings (HCL attributes) to the replication block of n's
// configuration.
func withReplicationTLS(t *testing.T, n *node, attrs string) {
	t.Helper()
	b, err := os.ReadFile(n.config)
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(string(b), "    replication {\n")
	if i < 0 {
		t.Fatalf("no replication block in %s", b)
	}
	i += len("    replication {\n")
	if err := os.WriteFile(n.config, []byte(string(b[:i])+attrs+"\n"+string(b[i:])), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestCloneVerifiedByReplicationTLS: with sslmode = "verify-full", the CA and a client
// certificate whose key has a passphrase in postgresql.authentication.replication, and a
// source that says nothing of TLS, pg_basebackup, pgimaged's own check and the standby's WAL
// receiver all verify the server and present the certificate; the passphrase is never on a
// command line nor left in a file outside the data directory. A wrong CA, or a host name the
// certificate does not name, fails with libpq's reason and leaves no data directory.
func TestCloneVerifiedByReplicationTLS(t *testing.T) {
	dir := workDir(t)
	const passphrase = "Cl1ent-key-passphrase"
	serverCert, serverKey := testenv.WriteCertificate(t, dir, "server")
	otherCA, _ := testenv.WriteCertificate(t, dir, "other")
	clientCert, clientKey := writeEncryptedClientCert(t, dir, passphrase)
	p := pgtest.StartPrimary(t, pgtest.Options{
		Parameters: map[string]string{"ssl": "on", "ssl_cert_file": serverCert, "ssl_key_file": serverKey, "ssl_ca_file": clientCert},
		HBA: []string{
			"hostnossl all all 0.0.0.0/0 reject",
			"hostnossl replication all 0.0.0.0/0 reject",
			"hostssl replication replicator 127.0.0.1/32 scram-sha-256 clientcert=verify-ca",
		},
	})
	tlsAttrs := func(ca string) string {
		return fmt.Sprintf("      sslmode = \"verify-full\"\n      sslrootcert = %q\n      sslcert = %q\n      sslkey = %q\n      sslpassword = env(\"PGIMAGED_TEST_SSLPASSWORD\")", ca, clientCert, clientKey)
	}
	env := func(n *node) []string { return append(n.env, "PGIMAGED_TEST_SSLPASSWORD="+passphrase) }
	byName := "postgresql://localhost:" + strconv.Itoa(p.Port) + "/postgres"
	byAddress := "postgresql://127.0.0.1:" + strconv.Itoa(p.Port) + "/postgres"

	for _, tc := range []struct{ name, ca, source, reason string }{
		{"wrong CA", otherCA, byName, "certificate verify failed"},
		{"wrong host name", serverCert, byAddress, `does not match host name "127.0.0.1"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := replicaOf(t, p, "refused", `method "basebackup" { checkpoint = "fast" }`)
			withReplicationTLS(t, n, tlsAttrs(tc.ca))
			r := run(t, env(n), "clone", "-config", n.config, "--connstring", tc.source)
			if r.code == 0 {
				t.Fatalf("clone succeeded: %s", r)
			}
			if !strings.Contains(r.stderr, tc.reason) {
				t.Errorf("the failure does not give libpq's reason %q: %s", tc.reason, r)
			}
			if _, err := os.Stat(n.dataDir); !os.IsNotExist(err) {
				t.Errorf("the failed clone left %s behind (%v)", n.dataDir, err)
			}
			if left, _ := filepath.Glob(filepath.Join(filepath.Dir(n.dataDir), ".*pg_service*")); len(left) > 0 {
				t.Errorf("the failed clone left %v behind", left)
			}
		})
	}

	n := replicaOf(t, p, "replica1", `method "basebackup" { checkpoint = "fast" }`)
	withReplicationTLS(t, n, tlsAttrs(serverCert))
	if r := run(t, env(n), "validate", "-config", n.config); r.code != 0 {
		t.Fatalf("validate: %s", r)
	}
	w := watchArgv(passphrase)
	r := run(t, env(n), "clone", "-config", n.config, "-json", "--connstring", byName, "-log-level", "debug")
	leaked, _ := w.Stop()
	if r.code != 0 {
		t.Fatalf("clone over verified TLS failed: %s\nserver log:\n%s", r, n.serverLog())
	}
	if len(leaked) > 0 {
		t.Errorf("the passphrase was on a command line: %v", leaked)
	}
	if strings.Contains(r.stdout+r.stderr, passphrase) {
		t.Errorf("the passphrase is in pgimaged's output")
	}
	if c := parseClone(t, r); c.Method != "basebackup" || !c.Running {
		t.Errorf("clone result: %+v", c)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(n.dataDir), ".*pg_service*")); len(left) > 0 {
		t.Errorf("the service file with the passphrase stays after the clone: %v", left)
	}
	conf := filepath.Join(n.dataDir, pg.RecoveryFile)
	auto, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"sslmode=verify-full", "sslrootcert=" + serverCert, "sslcert=" + clientCert, "sslkey=" + clientKey, "sslpassword="} {
		if !strings.Contains(string(auto), want) {
			t.Errorf("primary_conninfo lacks %q:\n%s", want, auto)
		}
	}
	if fi, err := os.Stat(conf); err != nil || fi.Mode().Perm()&0o077 != 0 {
		t.Errorf("%s, which holds the passphrase, has mode %v (%v)", conf, fi.Mode(), err)
	}
	eventually(t, time.Minute, "the replica streams over TLS with its client certificate", func() bool {
		return p.QueryString(t, "SELECT count(*)::text FROM pg_stat_replication r JOIN pg_stat_ssl s USING (pid) WHERE s.ssl AND s.client_dn = '/CN=replicator' AND r.state = 'streaming'") == "1"
	})
}

// editConfig replaces old by new in n's configuration, which must hold old.
func editConfig(t *testing.T, n *node, old, new string) {
	t.Helper()
	b, err := os.ReadFile(n.config)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), old) {
		t.Fatalf("%s does not hold %q:\n%s", n.config, old, b)
	}
	if err := os.WriteFile(n.config, []byte(strings.Replace(string(b), old, new, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
}

// serveReplicationTLS makes n's server offer TLS with cert and key and refuse replication
// connections without it, and names n as localhost:port (the host name cert is for) in its
// conn_url.
func serveReplicationTLS(t *testing.T, n *node, cert, key string) {
	t.Helper()
	editConfig(t, n, "max_connections = 30", fmt.Sprintf("max_connections = 30, ssl = \"on\", ssl_cert_file = %q, ssl_key_file = %q", cert, key))
	editConfig(t, n, "pg_hba = [", "pg_hba = [\n    \"hostnossl replication all 0.0.0.0/0 reject\",")
	editConfig(t, n, fmt.Sprintf("listen     = \"127.0.0.1:%d\"", n.port), fmt.Sprintf("listen     = \"127.0.0.1:%d\"\n  connect_address = \"localhost:%d\"", n.port, n.port))
}

// TestAgentReplicaOverVerifiedTLS: members that accept replication only over TLS, with
// sslmode = "verify-full" and the CA in postgresql.authentication.replication: the agent's
// replica clones from the leader and streams from it, both verifying the leader's certificate
// for the host name its conn_url names.
func TestAgentReplicaOverVerifiedTLS(t *testing.T) {
	c := fileCluster(t)
	n1, n2 := c.member(t, "node1", ""), c.member(t, "node2", "")
	for _, n := range []*node{n1, n2} {
		cert, key := testenv.WriteCertificate(t, n.dir, "server")
		serveReplicationTLS(t, n, cert, key)
		withReplicationTLS(t, n, fmt.Sprintf("      sslmode     = \"verify-full\"\n      sslrootcert = %q", cert))
	}
	// Each member's certificate is its own CA; the replica verifies the leader's.
	ca := filepath.Join(n1.dir, "server.crt")
	editConfig(t, n2, filepath.Join(n2.dir, "server.crt")+"\"\n", ca+"\"\n")
	startInTurn(t, n1, n2)
	waitStreaming(t, n1, "node2")
	conn := connectTCP(t, n1.port, "postgres", n1.superPass, "postgres")
	var ssl bool
	if err := conn.QueryRow(t.Context(), "SELECT s.ssl FROM pg_stat_replication r JOIN pg_stat_ssl s USING (pid) WHERE r.application_name = 'node2'").Scan(&ssl); err != nil || !ssl {
		t.Errorf("node2 streams without TLS (%v)", err)
	}
	auto, err := os.ReadFile(filepath.Join(n2.dataDir, pg.RecoveryFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"host=localhost", "sslmode=verify-full", "sslrootcert=" + ca} {
		if !strings.Contains(string(auto), want) {
			t.Errorf("primary_conninfo lacks %q:\n%s", want, auto)
		}
	}
}
