package config_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgimaged/pgimaged/core/config"
)

func TestAPIBlock(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "tls"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"ca.crt", "server.crt", "server.key"} {
		if err := os.WriteFile(filepath.Join(dir, "tls", f), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	const secret = "api-s3cret-value"
	t.Setenv("PGIMAGED_TEST_API_PASSWORD", secret)
	src := `scope = "s"
name = "n"
data_dir = "/data/pg"
api {
  listen          = "0.0.0.0:8008"
  connect_address = "10.0.0.1:8008"
  ca_file         = "tls/ca.crt"
  cert_file       = "tls/server.crt"
  key_file        = "tls/server.key"
  username        = "admin"
  password        = env("PGIMAGED_TEST_API_PASSWORD")
}
`
	name := filepath.Join(dir, "pgimaged.hcl")
	if err := os.WriteFile(name, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, diags := config.Load(name)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	a := cfg.API
	if !a.Enabled() || a.Listen != "0.0.0.0:8008" || a.Address() != "10.0.0.1:8008" || !a.TLS() {
		t.Errorf("api = %v", a)
	}
	if a.CAFile != filepath.Join(dir, "tls", "ca.crt") || a.KeyFile != filepath.Join(dir, "tls", "server.key") {
		t.Errorf("relative TLS paths not resolved against the configuration's directory: %v", a)
	}
	if a.Username != "admin" || a.Password != secret {
		t.Errorf("credentials = %q/%q", a.Username, a.Password)
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		if s := fmt.Sprintf(verb, cfg.API); strings.Contains(s, secret) {
			t.Errorf("%s shows the password: %s", verb, s)
		}
	}
}

func TestAPIBlockAbsent(t *testing.T) {
	cfg, diags := config.Parse("x.hcl", []byte("scope = \"s\"\nname = \"n\"\ndata_dir = \"/data/pg\"\n"))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if cfg.API.Enabled() {
		t.Errorf("api enabled without a block: %v", cfg.API)
	}
}
