package config_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgimaged/pgimaged/core/config"
	"github.com/pgimaged/pgimaged/sdk"
)

// TestSecretsNeverShown reads passwords through env() and file() in configurations with and
// without mistakes around them, and looks for the passwords in every diagnostic and in every
// fmt rendering of the decoded configuration.
func TestSecretsNeverShown(t *testing.T) {
	const (
		superuserPW   = "Su-s3cret-from-env"
		replicationPW = "Repl-s3cret-from-file"
		dcsPW         = "Dcs-s3cret-from-env"
	)
	t.Setenv("PGIMAGED_TEST_SECRET_SU", superuserPW)
	t.Setenv("PGIMAGED_TEST_SECRET_DCS", dcsPW)
	secrets := []string{superuserPW, replicationPW, dcsPW}

	tests := []struct {
		name   string
		src    string
		errors bool
	}{
		{"clean", `
scope    = "batman"
name     = "node1"
data_dir = "/data"
dcs "etcd" {
  endpoints = ["127.0.0.1:2379"]
  username  = "root"
  password  = env("PGIMAGED_TEST_SECRET_DCS")
}
postgresql {
  listen = "127.0.0.1:5432"
  authentication {
    superuser   { 
      username = "postgres"
      password = env("PGIMAGED_TEST_SECRET_SU")
    }
    replication {
      username = "replicator"
      password = file("replication.pw")
    }
  }
}
method "restore" {
  command            = "/usr/local/bin/restore"
  tablespace-mapping = ["/a=/b", env("PGIMAGED_TEST_SECRET_SU"), "/x=${file("replication.pw")}"]
  env                = { AWS_REGION = "eu-west-1", TOKEN = env("PGIMAGED_TEST_SECRET_DCS") }
}
`, false},
		{"mistakes around the secrets", `
scope    = "batman"
name     = "node1"
data_dir = "/data"
source   = "postgres://replicator:${file("replication.pw")}@10.0.0.1/postgres"
dcs "etcd" {
  endpoints    = ["127.0.0.1:2379"]
  username     = "root"
  password     = env("PGIMAGED_TEST_SECRET_DCS")
  dial_timeout = "soon"
}
postgresql {
  listen     = "nowhere"
  parameters = { password_encryption = { nested = env("PGIMAGED_TEST_SECRET_SU") } }
  authentication {
    superuser {
      username = "postgres"
      password = env("PGIMAGED_TEST_SECRET_SU")
      role     = "admin"
    }
    replication {
      username = "replicator"
      password = file("replication.pw")
    }
  }
}
method "restore" {
  command  = "/usr/local/bin/restore"
  attempts = 0
  secret   = [env("PGIMAGED_TEST_SECRET_SU")]
  nested   = [env("PGIMAGED_TEST_SECRET_SU"), [file("replication.pw")]]
  env      = { TOKEN = env("PGIMAGED_TEST_SECRET_DCS"), BAD = { x = file("replication.pw") } }
  label    = { A = env("PGIMAGED_TEST_SECRET_SU") }
  rate     = [env("PGIMAGED_TEST_SECRET_DCS")]
}
`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "replication.pw"), []byte(replicationPW+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			name := filepath.Join(dir, "pgimaged.hcl")
			if err := os.WriteFile(name, []byte(tt.src), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg, diags := config.Load(name)
			if diags.HasErrors() != tt.errors {
				t.Fatalf("errors: got %v, want %v:%s", diags.HasErrors(), tt.errors, describe(diags))
			}
			// The secrets were read: otherwise the test could not fail.
			if cfg.PostgreSQL.Superuser.Password != superuserPW || cfg.PostgreSQL.Replication.Password != replicationPW ||
				cfg.DCS.Password != dcsPW {
				t.Fatal("the passwords were not decoded, so nothing is tested")
			}

			// The options are checked against a schema that refuses the lists and maps given.
			method := cfg.Methods["restore"]
			if method == nil || len(method.OptionSecrets) == 0 {
				t.Fatal("the method's secrets were not decoded, so nothing is tested about them")
			}
			diags = append(diags, method.CheckOptions(sdk.Schema{Options: []sdk.OptionSpec{
				{Name: "label", Type: sdk.TypeString}, {Name: "rate", Type: sdk.TypeSize},
				{Name: "secret", Type: sdk.TypeMap}, {Name: "tablespace-mapping", Type: sdk.TypeMap},
				{Name: "env", Type: sdk.TypeList},
			}}, "testplugin")...)

			var written bytes.Buffer
			if err := config.WriteDiagnostics(&written, cfg.Files(), diags, false); err != nil {
				t.Fatal(err)
			}
			renderings := map[string]string{"written diagnostics": written.String()}
			for i, d := range diags {
				renderings[fmt.Sprintf("diagnostic %d", i)] = d.Summary + " " + d.Detail + " " + d.Error()
			}
			for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
				for what, v := range map[string]any{
					"*Config": cfg, "Config": *cfg, "PostgreSQL": cfg.PostgreSQL, "DCS": cfg.DCS,
					"Superuser": cfg.PostgreSQL.Superuser, "*Credentials": &cfg.PostgreSQL.Replication, "*DCS": &cfg.DCS,
					"*Method": method, "Method": *method, "Methods": cfg.Methods,
				} {
					renderings[verb+" of "+what] = fmt.Sprintf(verb, v)
				}
			}
			effective, err := json.Marshal(cfg.Effective())
			if err != nil {
				t.Fatal(err)
			}
			renderings["Effective as JSON"] = string(effective)
			for where, text := range renderings {
				for _, s := range secrets {
					if i := strings.Index(text, s); i >= 0 {
						t.Errorf("%s shows a password: …%s…", where, text[max(0, i-60):min(len(text), i+len(s)+20)])
					}
				}
			}
			if !strings.Contains(renderings["%v of *Method"], "********") || !tt.errors && !strings.Contains(renderings["%v of *Method"], "/a=/b") {
				t.Errorf("the method's options are not masked element by element: %s", renderings["%v of *Method"])
			}
			if !tt.errors && (!strings.Contains(string(effective), `"password":"********"`) || !strings.Contains(string(effective), "/a=/b")) {
				t.Errorf("Effective masks too little or too much: %s", effective)
			}
			if !strings.Contains(renderings["%#v of Superuser"], "********") || !strings.Contains(renderings["%v of DCS"], "********") {
				t.Errorf("passwords are not shown as masked: %s / %s", renderings["%#v of Superuser"], renderings["%v of DCS"])
			}
		})
	}
}

// Effective shows the configuration in effect under the HCL's names, defaults included.
func TestEffectiveConfiguration(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "pgimaged.hcl")
	src := `
scope    = "batman"
name     = "node1"
data_dir = "/data"
tags     = { clonefrom = true }
postgresql {
  listen     = "127.0.0.1:5432"
  parameters = { max_connections = 50 }
}
method "basebackup" {
  checkpoint = "fast"
}
`
	if err := os.WriteFile(name, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, diags := config.Load(name)
	if diags.HasErrors() {
		t.Fatal(describe(diags))
	}
	b, err := json.Marshal(cfg.Effective())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"scope":"batman"`, `"name":"node1"`, `"loop_wait":10`, `"ttl":30`,
		`"tags":{"clonefrom":true}`, `"parameters":{"max_connections":"50"}`, `"create_replica_methods":["basebackup"]`,
		`"connect_address":"127.0.0.1:5432"`, `"options":[{"checkpoint":"fast"}]`, `"method":"initdb"`, `"kind":"file"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("the effective configuration lacks %s:\n%s", want, b)
		}
	}
}
