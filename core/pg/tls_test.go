package pg_test

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/pgimaged/pgimaged/core/pg"
)

// TestConnWithTLS: the credentials' TLS settings replace a member's (override) or fill what an
// operator's connection string leaves out; the passphrase never reaches the DSN or a format,
// only primary_conninfo and the service file.
func TestConnWithTLS(t *testing.T) {
	tls := pg.TLS{Mode: "verify-full", RootCert: "/etc/ca.crt", Cert: "/etc/c.crt", Key: "/etc/c.key", CRL: "/etc/r.crl", Password: "key-passphrase"}
	base := pg.Conn{Host: "db1", Port: 5432, User: "replicator", Params: map[string]string{"sslmode": "require", "application_name": "x"}}

	over := base.WithTLS(tls, true)
	want := map[string]string{"sslmode": "verify-full", "sslrootcert": "/etc/ca.crt", "sslcert": "/etc/c.crt", "sslkey": "/etc/c.key", "sslcrl": "/etc/r.crl", "application_name": "x"}
	if !reflect.DeepEqual(over.Params, want) || over.SSLPassword != "key-passphrase" {
		t.Errorf("override: %v, %q; want %v", over.Params, over.SSLPassword, want)
	}
	if base.Params["sslmode"] != "require" {
		t.Errorf("WithTLS changed the Conn it was called on: %v", base.Params)
	}
	fill := base.WithTLS(tls, false)
	if fill.Params["sslmode"] != "require" || fill.Params["sslrootcert"] != "/etc/ca.crt" {
		t.Errorf("fill: %v; want the string's sslmode kept and sslrootcert added", fill.Params)
	}
	for name, s := range map[string]string{"DSN": over.DSN(), "String": over.String(), "%v": fmt.Sprintf("%v", over),
		"%+v": fmt.Sprintf("%+v", over), "%#v": fmt.Sprintf("%#v", over), "TLS %+v": fmt.Sprintf("%+v", tls), "TLS %#v": fmt.Sprintf("%#v", tls)} {
		if strings.Contains(s, "key-passphrase") {
			t.Errorf("%s shows the passphrase: %s", name, s)
		}
	}
	if ci := over.Conninfo(); !strings.Contains(ci, "sslpassword=key-passphrase") || !strings.HasPrefix(ci, over.DSN()) {
		t.Errorf("Conninfo = %q, want the DSN and the passphrase", ci)
	}
	if sf, err := over.ServiceFile("pgimaged"); err != nil || sf != "[pgimaged]\nsslpassword=key-passphrase\n" {
		t.Errorf("ServiceFile = %q, %v", sf, err)
	}
	if sf, err := base.ServiceFile("pgimaged"); err != nil || sf != "" {
		t.Errorf("ServiceFile without a passphrase = %q, %v; want none", sf, err)
	}
	if _, err := over.WithTLS(pg.TLS{Password: "a\nb"}, true).ServiceFile("pgimaged"); err == nil {
		t.Error("a passphrase with a line break is written into a service file")
	}
}

// TestConnMultiHost: a remote given as several hosts and ports (libpq's form) keeps them in the
// DSN, parses for pgx, and gets one pgpass line per host.
func TestConnMultiHost(t *testing.T) {
	c := pg.Conn{Host: "10.1.0.5,10.1.0.6", Ports: []int{5432, 5433}, User: "replicator", Database: "postgres"}
	if got, want := c.DSN(), "host=10.1.0.5,10.1.0.6 port=5432,5433 user=replicator dbname=postgres"; got != want {
		t.Errorf("DSN = %q, want %q", got, want)
	}
	cfg, err := c.Config()
	if err != nil || cfg.Host != "10.1.0.5" || cfg.Port != 5432 || len(cfg.Fallbacks) == 0 || cfg.Fallbacks[len(cfg.Fallbacks)-1].Port != 5433 {
		t.Errorf("Config = %+v, %v", cfg, err)
	}
	got := c.PassEntries("pw")
	want := []pg.PassEntry{{Host: "10.1.0.5", Port: "5432", Database: "*", User: "replicator", Password: "pw"},
		{Host: "10.1.0.6", Port: "5433", Database: "*", User: "replicator", Password: "pw"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("PassEntries = %v, want %v", got, want)
	}
	one := pg.Conn{Host: "a,b", Ports: []int{6000}, User: "u"}.PassEntries("pw")
	if len(one) != 2 || one[1].Port != "6000" {
		t.Errorf("one port for two hosts: %v", one)
	}
	if any := (pg.Conn{User: "u"}).PassEntries("pw"); len(any) != 1 || any[0].Host != "*" || any[0].Port != "*" {
		t.Errorf("no host: %v", any)
	}
}

// TestCheckKeyFile: libpq's rule for a client key: 0600 or less, 0640 or less owned by root.
func TestCheckKeyFile(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		mode os.FileMode
		uid  int
		ok   bool
	}{{0o600, 0, true}, {0o400, 0, true}, {0o640, 0, true}, {0o644, 0, false}, {0o660, 0, false},
		{0o600, 70000, true}, {0o640, 70000, false}, {0o604, 70000, false}} {
		p := filepath.Join(dir, fmt.Sprintf("k%o-%d", tc.mode, tc.uid))
		if err := os.WriteFile(p, []byte("key"), tc.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, tc.mode); err != nil {
			t.Fatal(err)
		}
		if os.Geteuid() == 0 {
			if err := os.Chown(p, tc.uid, tc.uid); err != nil {
				t.Fatal(err)
			}
		} else if tc.uid == 0 {
			continue
		}
		if err := pg.CheckKeyFile(p); (err == nil) != tc.ok {
			t.Errorf("mode %04o owner %d: err = %v, want ok %v", tc.mode, tc.uid, err, tc.ok)
		}
	}
	if err := pg.CheckKeyFile(dir); err == nil {
		t.Error("a directory is accepted as a key file")
	}
}

// TestReadableBy: read permission for another OS user, by the file's mode and the directories
// on the way.
func TestReadableBy(t *testing.T) {
	dir, err := os.MkdirTemp("", "readable") // t.TempDir's parent lets only its owner in
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	other := os.Geteuid() + 4242
	if err := pg.ReadableBy(p, other, nil); err == nil {
		t.Error("a 0600 file of another user is readable")
	}
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := pg.ReadableBy(p, other, nil); err != nil {
		t.Errorf("a 0644 file: %v", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := pg.ReadableBy(p, other, nil); err == nil || !strings.Contains(err.Error(), dir) {
		t.Errorf("behind a 0700 directory: err = %v, want one naming %s", err, dir)
	}
	if err := pg.ReadableBy(p, os.Geteuid(), nil); err != nil {
		t.Errorf("the owner: %v", err)
	}
}

// TestServerConnCarriesSuperuserTLS: pgimaged's connections to its own server carry the
// superuser's TLS settings (used over TCP; libpq and pgx ignore them on a unix socket), the
// passphrase only in the parse options.
func TestServerConnCarriesSuperuserTLS(t *testing.T) {
	dir := t.TempDir()
	s := &pg.Server{DataDir: dir, Port: 5499, User: "postgres", TLS: pg.TLS{Mode: "require", Password: "su-key-passphrase"}}
	c := s.Conn()
	if c.Params["sslmode"] != "require" || c.Params["application_name"] != "pgimaged" || c.SSLPassword != "su-key-passphrase" {
		t.Errorf("Conn = %#v, params %v", c, c.Params)
	}
	if strings.Contains(c.DSN(), "su-key-passphrase") {
		t.Errorf("the DSN shows the passphrase: %s", c.DSN())
	}
	if got := c.ParseOptions().GetSSLPassword(t.Context()); got != "su-key-passphrase" {
		t.Errorf("pgx gets passphrase %q", got)
	}
	if plain := (&pg.Server{DataDir: dir, Port: 5499}).Conn(); plain.Params["sslmode"] != "" || plain.SSLPassword != "" {
		t.Errorf("without TLS settings: %#v", plain)
	}
}
