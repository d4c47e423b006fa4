package config_test

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"

	"github.com/pgimaged/pgimaged/core/config"
	"github.com/pgimaged/pgimaged/core/pg"
)

// tlsFiles writes a CA, a client certificate and its key (0600) into dir/tls.
func tlsFiles(t *testing.T, dir string) (ca, cert, key string) {
	t.Helper()
	tlsDir := filepath.Join(dir, "tls")
	if err := os.MkdirAll(tlsDir, 0o755); err != nil {
		t.Fatal(err)
	}
	ca, cert, key = filepath.Join(tlsDir, "ca.crt"), filepath.Join(tlsDir, "client.crt"), filepath.Join(tlsDir, "client.key")
	for _, f := range []string{ca, cert, filepath.Join(tlsDir, "root.crl")} {
		if err := os.WriteFile(f, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(key, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 { // root checks the files for postgres, which PostgreSQL runs as
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("no postgres OS user to read the TLS files: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		for _, d := range []string{filepath.Dir(dir), dir} {
			if err := os.Chmod(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Chown(key, uid, -1); err != nil {
			t.Fatal(err)
		}
	}
	return ca, cert, key
}

// parseIn writes src as dir/pgimaged.hcl and loads it.
func parseIn(t *testing.T, dir, src string) (*config.Config, hcl.Diagnostics) {
	t.Helper()
	name := filepath.Join(dir, "pgimaged.hcl")
	if err := os.WriteFile(name, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return config.Load(name)
}

// TestAuthenticationTLS: the authentication blocks take libpq's TLS settings under Patroni's
// names, paths relative to the configuration file made absolute; rewind is the superuser
// unless given; sslpassword is never shown.
func TestAuthenticationTLS(t *testing.T) {
	dir := t.TempDir()
	ca, cert, key := tlsFiles(t, dir)
	const passphrase = "key-passphrase-s3cret"
	t.Setenv("PGIMAGED_TEST_SSLPASSWORD", passphrase)
	cfg, diags := parseIn(t, dir, `scope = "s"
name = "n"
data_dir = "/data/pg"
postgresql {
  authentication {
    superuser {
      username = "postgres"
      password = "su"
      sslmode  = "require"
    }
    replication {
      username    = "replicator"
      sslmode     = "verify-full"
      sslrootcert = "tls/ca.crt"
      sslcert     = "tls/client.crt"
      sslkey      = "tls/client.key"
      sslcrl      = "tls/root.crl"
      sslpassword = env("PGIMAGED_TEST_SSLPASSWORD")
    }
  }
}
`)
	if diags.HasErrors() {
		t.Fatal(describe(diags))
	}
	want := pg.TLS{Mode: "verify-full", RootCert: ca, Cert: cert, Key: key, CRL: filepath.Join(dir, "tls", "root.crl"), Password: passphrase}
	if got := cfg.PostgreSQL.Replication.TLS; got != want {
		t.Errorf("replication TLS = %#v, want %#v", got, want)
	}
	if su := cfg.PostgreSQL.Superuser; su.TLS != (pg.TLS{Mode: "require"}) {
		t.Errorf("superuser TLS = %#v", su.TLS)
	}
	if cfg.PostgreSQL.Rewind != cfg.PostgreSQL.Superuser {
		t.Errorf("rewind = %#v, want the superuser's credentials", cfg.PostgreSQL.Rewind)
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		if s := fmt.Sprintf(verb, cfg.PostgreSQL); strings.Contains(s, passphrase) || strings.Contains(s, `"su"`) {
			t.Errorf("%s shows a secret: %s", verb, s)
		}
	}
	if got := cfg.PostgreSQL.Replication.Secrets(); len(got) != 1 || got[0] != passphrase {
		t.Errorf("Secrets = %d values, want the passphrase", len(got))
	}

	cfg, diags = parseIn(t, dir, `scope = "s"
name = "n"
data_dir = "/data/pg"
postgresql {
  authentication {
    superuser { username = "postgres" }
    rewind {
      username    = "rewind_user"
      password    = "rw"
      sslmode     = "verify-ca"
      sslrootcert = "system"
    }
  }
}
`)
	if diags.HasErrors() {
		t.Fatal(describe(diags))
	}
	if rw := cfg.PostgreSQL.Rewind; rw.Username != "rewind_user" || rw.Password != "rw" || rw.TLS != (pg.TLS{Mode: "verify-ca", RootCert: "system"}) {
		t.Errorf("rewind = %#v", rw)
	}
}

// TestAuthenticationTLSMistakes: each mistake is a diagnostic at the setting, file:line:col.
func TestAuthenticationTLSMistakes(t *testing.T) {
	dir := t.TempDir()
	tlsFiles(t, dir)
	open := filepath.Join(dir, "tls", "open.key")
	if err := os.WriteFile(open, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	const passphrase = "never-in-a-diagnostic"
	cases := []struct {
		name, block, at, text string
	}{
		{"sslmode", `sslmode = "verify"`, `"verify"`, "verify-full"},
		{"missing CA", `sslrootcert = "tls/none.crt"`, `"tls/none.crt"`, "cannot read"},
		{"key others can read", "sslcert = \"tls/client.crt\"\nsslkey = \"tls/open.key\"", `"tls/open.key"`, "0600"},
		{"certificate without key", `sslcert = "tls/client.crt"`, `sslcert`, "sslkey"},
		{"key without certificate", `sslkey = "tls/client.key"`, `sslkey`, "sslcert"},
		{"passphrase without key", `sslpassword = "` + passphrase + `"`, `sslpassword`, "sslkey"},
		{"files with TLS off", "sslmode = \"disable\"\nsslrootcert = \"tls/ca.crt\"", `"disable"`, "disable"},
		{"unknown key", `sslcompression = "1"`, `sslcompression`, "sslcompression"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := "scope = \"s\"\nname = \"n\"\ndata_dir = \"/data/pg\"\npostgresql {\n  authentication {\n    replication {\n" +
				"username = \"replicator\"\n" + tc.block + "\n    }\n  }\n}\n"
			_, diags := parseIn(t, dir, src)
			line, col := lineCol(t, src, tc.at)
			found := false
			for _, d := range diags {
				if strings.Contains(d.Detail+d.Summary, passphrase) {
					t.Errorf("a diagnostic shows the passphrase: %s", d.Detail)
				}
				if d.Severity == hcl.DiagError && d.Subject != nil && d.Subject.Start.Line == line && d.Subject.Start.Column == col &&
					strings.Contains(d.Summary+" "+d.Detail, tc.text) {
					found = true
				}
			}
			if !found {
				t.Errorf("no error at %d:%d mentioning %q; got:%s", line, col, tc.text, describe(diags))
			}
		})
	}
}

// TestAuthenticationTLSReadableByPostgres: when root checks the configuration, the TLS files
// must be readable by the OS user PostgreSQL runs as (data_dir's owner), not only by root.
// Run as another user, a file that user cannot read is refused the same way.
func TestAuthenticationTLSReadableByPostgres(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ca, _, _ := tlsFiles(t, dir)
	if err := os.Chmod(ca, 0o600); err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(dir, "data")
	if err := os.Mkdir(dataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	who := "this user"
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("no postgres OS user to own the data directory: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dataDir, uid, gid); err != nil {
			t.Fatal(err)
		}
		who = "postgres"
		if err := os.Chmod(filepath.Dir(dir), 0o755); err != nil { // t.TempDir's parent
			t.Fatal(err)
		}
	} else if err := os.Chmod(ca, 0); err != nil {
		t.Fatal(err)
	}
	src := "scope = \"s\"\nname = \"n\"\ndata_dir = \"" + dataDir + "\"\npostgresql {\n  authentication {\n    replication {\n" +
		"      username    = \"replicator\"\n      sslrootcert = \"tls/ca.crt\"\n    }\n  }\n}\n"
	_, diags := parseIn(t, dir, src)
	line, col := lineCol(t, src, `"tls/ca.crt"`)
	if len(diags) != 1 || diags[0].Subject.Start.Line != line || diags[0].Subject.Start.Column != col || !strings.Contains(diags[0].Detail, "read") {
		t.Fatalf("want one error at %d:%d that %s cannot read the CA; got:%s", line, col, who, describe(diags))
	}
	if os.Geteuid() == 0 && !strings.Contains(diags[0].Detail, "postgres") {
		t.Errorf("the diagnostic does not name the PostgreSQL OS user: %s", diags[0].Detail)
	}
	if err := os.Chmod(ca, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, diags := parseIn(t, dir, src); len(diags) != 0 {
		t.Errorf("a CA every user can read is refused:%s", describe(diags))
	}
}
