package dcs_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io/fs"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/pgimaged/pgimaged/core/dcs"
	"github.com/pgimaged/pgimaged/internal/testenv"
)

// testCA is a certificate authority made for one test; file holds its certificate in PEM.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	file string
}

func serialNumber(t *testing.T) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func writePEM(t *testing.T, name, blockType string, der []byte) {
	t.Helper()
	if err := os.WriteFile(name, pem.EncodeToMemory(&pem.Block{Type: blockType, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// newTestCA makes a self-signed CA and writes its certificate to dir/name.crt.
func newTestCA(t *testing.T, dir, name string) *testCA {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          serialNumber(t),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	ca := &testCA{cert: cert, key: key, file: filepath.Join(dir, name+".crt")}
	writePEM(t, ca.file, "CERTIFICATE", der)
	return ca
}

// issue signs a certificate made from tmpl and writes it and its key to dir/name.crt and
// dir/name.key.
func (ca *testCA) issue(t *testing.T, dir, name string, tmpl *x509.Certificate) (certFile, keyFile string) {
	t.Helper()
	key := newKey(t)
	tmpl.SerialNumber = serialNumber(t)
	tmpl.Subject = pkix.Name{CommonName: name}
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "PRIVATE KEY", keyDER)
	return certFile, keyFile
}

// tlsFiles are the files of one test's PKI: a CA that signs etcd's server certificate and a
// client certificate, and a second CA that signs neither.
type tlsFiles struct {
	ca, otherCA       string
	server, serverKey string
	client, clientKey string
	clientTLS         *tls.Config // trusts ca and presents the client certificate
	otherKey          string      // the key of a certificate other than client
	notPEM            string      // a file without a PEM block
	absent            string      // a path to no file
}

func makeTLSFiles(t *testing.T) tlsFiles {
	t.Helper()
	dir := t.TempDir()
	ca := newTestCA(t, dir, "ca")
	other := newTestCA(t, dir, "other-ca")
	f := tlsFiles{ca: ca.file, otherCA: other.file}
	// etcd also presents its server certificate as a client to itself (its gRPC gateway).
	f.server, f.serverKey = ca.issue(t, dir, "server", &x509.Certificate{
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:    []string{"localhost"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	})
	f.client, f.clientKey = ca.issue(t, dir, "pgimaged", &x509.Certificate{
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	pair, err := tls.LoadX509KeyPair(f.client, f.clientKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	f.clientTLS = &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}

	_, f.otherKey = other.issue(t, dir, "unrelated", &x509.Certificate{})
	f.notPEM = filepath.Join(dir, "not-pem.crt")
	if err := os.WriteFile(f.notPEM, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f.absent = filepath.Join(dir, "absent.crt")
	return f
}

// startTLSEtcd runs an etcd of the test's own that serves clients over TLS and requires a client
// certificate signed by f.ca.
func startTLSEtcd(t *testing.T, f tlsFiles) string {
	t.Helper()
	bin := testenv.LookPath(t, "etcd")
	transport := &http.Transport{TLSClientConfig: f.clientTLS}
	t.Cleanup(transport.CloseIdleConnections)
	p, err := launchEtcd(bin, etcdOptions{
		scheme: "https",
		flags: []string{
			"--cert-file=" + f.server, "--key-file=" + f.serverKey,
			"--trusted-ca-file=" + f.ca, "--client-cert-auth",
		},
		health: &http.Client{Transport: transport},
	})
	if err != nil {
		t.Fatalf("starting etcd with TLS: %v", err)
	}
	t.Cleanup(p.stop)
	return p.endpoint
}

// TestEtcdTLS runs stores against an etcd that serves clients over TLS with client-cert-auth.
func TestEtcdTLS(t *testing.T) {
	f := makeTLSFiles(t)
	endpoint := startTLSEtcd(t, f)
	raw, err := clientv3.New(clientv3.Config{
		Endpoints: []string{endpoint}, DialTimeout: 5 * time.Second, TLS: f.clientTLS, Logger: zap.NewNop(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })

	cases := []struct {
		name    string
		cfg     dcs.EtcdConfig
		refused bool
		// why is in the error of the last call, Cluster, when the TLS client gives a reason that
		// does not depend on timing.
		why string
	}{
		{name: "CA and client certificate", cfg: dcs.EtcdConfig{CAFile: f.ca, CertFile: f.client, KeyFile: f.clientKey}},
		{name: "no client certificate", cfg: dcs.EtcdConfig{CAFile: f.ca}, refused: true},
		{
			name: "another CA", cfg: dcs.EtcdConfig{CAFile: f.otherCA, CertFile: f.client, KeyFile: f.clientKey}, refused: true,
			why: "certificate signed by unknown authority",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			scope := uniqueScope(t)
			cfg := tc.cfg
			cfg.Endpoints = []string{endpoint}
			cfg.DialTimeout, cfg.RequestTimeout = 2*time.Second, 2*time.Second
			s, err := dcs.OpenEtcd(t.Context(), cfg, scope, testLogger(t))
			if err != nil {
				t.Fatalf("OpenEtcd: %v", err)
			}
			defer s.Close()

			won, initErr := s.TryInitialize(t.Context())
			putErr := s.PutMember(t.Context(), dcs.Member{Name: "node1", State: "stopped"})
			c, clusterErr := s.Cluster(t.Context())
			if tc.refused {
				if won {
					t.Error("TryInitialize won without a TLS session etcd accepts")
				}
				for what, err := range map[string]error{"TryInitialize": initErr, "PutMember": putErr, "Cluster": clusterErr} {
					if !errors.Is(err, dcs.ErrUnavailable) {
						t.Errorf("%s: %v, want ErrUnavailable", what, err)
					} else {
						t.Logf("%s: %v", what, err)
					}
				}
				if clusterErr != nil && !strings.Contains(clusterErr.Error(), tc.why) {
					t.Errorf("Cluster: %v; want the reason %q", clusterErr, tc.why)
				}
			} else {
				if initErr != nil || !won {
					t.Fatalf("TryInitialize: %v, %v; want a win", won, initErr)
				}
				if putErr != nil {
					t.Fatalf("PutMember: %v", putErr)
				}
				if clusterErr != nil {
					t.Fatalf("Cluster: %v", clusterErr)
				}
				if got := initializeState(c); got != "bootstrapping" {
					t.Errorf("initialize: %s, want bootstrapping", got)
				}
				if got := memberNames(c); strings.Join(got, ",") != "node1" {
					t.Errorf("members: %v, want node1", got)
				}
			}

			resp, err := raw.Get(t.Context(), "/service/"+scope+"/", clientv3.WithPrefix(), clientv3.WithCountOnly())
			if err != nil {
				t.Fatal(err)
			}
			if want := map[bool]int64{false: 2, true: 0}[tc.refused]; resp.Count != want {
				t.Errorf("etcd holds %d keys of the scope, want %d", resp.Count, want)
			}
			if err := s.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	}
}

// TestOpenEtcdRefusesTLSFiles checks that TLS files that cannot be used stop OpenEtcd with an
// error that names them, before any attempt to reach etcd.
func TestOpenEtcdRefusesTLSFiles(t *testing.T) {
	f := makeTLSFiles(t)
	cases := []struct {
		name     string
		cfg      dcs.EtcdConfig
		mentions string   // in the error
		is       error    // the error wraps it, when not nil
		endpoint []string // default: one host:port endpoint
	}{
		{name: "certificate without key", cfg: dcs.EtcdConfig{CertFile: f.client}, mentions: "one is set without the other"},
		{name: "key without certificate", cfg: dcs.EtcdConfig{KeyFile: f.clientKey}, mentions: "one is set without the other"},
		{name: "missing CA file", cfg: dcs.EtcdConfig{CAFile: f.absent}, mentions: f.absent, is: fs.ErrNotExist},
		{name: "CA file without a certificate", cfg: dcs.EtcdConfig{CAFile: f.notPEM}, mentions: f.notPEM},
		{name: "missing client certificate", cfg: dcs.EtcdConfig{CertFile: f.absent, KeyFile: f.clientKey}, mentions: f.absent, is: fs.ErrNotExist},
		{name: "key of another certificate", cfg: dcs.EtcdConfig{CertFile: f.client, KeyFile: f.otherKey}, mentions: f.otherKey},
		{
			name: "http endpoint with a CA file", cfg: dcs.EtcdConfig{CAFile: f.ca}, mentions: "plain HTTP",
			endpoint: []string{"http://127.0.0.1:2379"},
		},
		{
			name: "http endpoint beside an https one", mentions: "plain HTTP",
			endpoint: []string{"https://127.0.0.1:2379", "http://127.0.0.2:2379"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.Endpoints = tc.endpoint
			if cfg.Endpoints == nil {
				cfg.Endpoints = []string{"127.0.0.1:2379"}
			}
			s, err := dcs.OpenEtcd(t.Context(), cfg, "batman", nil)
			if err == nil {
				s.Close()
				t.Fatal("OpenEtcd succeeded")
			}
			t.Logf("%v", err)
			if !strings.Contains(err.Error(), tc.mentions) {
				t.Errorf("error does not mention %q: %v", tc.mentions, err)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error does not wrap %v: %v", tc.is, err)
			}
			if errors.Is(err, dcs.ErrUnavailable) {
				t.Errorf("unusable TLS files are no unavailability: %v", err)
			}
		})
	}
}

// TestOpenEtcdAcceptsTLSFiles opens a store with usable files; its configuration shows them but
// not the password.
func TestOpenEtcdAcceptsTLSFiles(t *testing.T) {
	f := makeTLSFiles(t)
	cfg := dcs.EtcdConfig{Endpoints: []string{"https://127.0.0.1:2379"}, CAFile: f.ca, CertFile: f.client, KeyFile: f.clientKey,
		Username: "root", Password: "s3cret-pw"}
	s, err := dcs.OpenEtcd(t.Context(), cfg, "batman", nil)
	if err != nil {
		t.Fatalf("OpenEtcd with usable TLS files: %v", err)
	}
	s.Close()
	got := cfg.String()
	for _, want := range []string{f.ca, f.client, f.clientKey} {
		if !strings.Contains(got, want) {
			t.Errorf("String() lacks %q: %s", want, got)
		}
	}
	if strings.Contains(got, "s3cret-pw") || strings.Contains(cfg.GoString(), "s3cret-pw") {
		t.Errorf("the password shows: %s", got)
	}
}
