package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"

	"github.com/pgimaged/pgimaged/core/config"
)

// TestRelativePathsStartAtTheConfigurationFile loads a configuration with relative paths from
// another working directory: every path is taken from the file's directory, made absolute.
func TestRelativePathsStartAtTheConfigurationFile(t *testing.T) {
	dir := t.TempDir()
	confDir := filepath.Join(dir, "etc")
	if err := os.MkdirAll(confDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(confDir, "ca.crt"), []byte("pem"), 0o600); err != nil {
		t.Fatal(err)
	}
	name := filepath.Join(confDir, "pgimaged.hcl")
	src := `scope      = "s"
name       = "n"
data_dir   = "../data/node1"
plugin_dir = "plugins"
dcs "file" { path = "./dcs" }
postgresql { bin_dir = "../pg/bin" }
plugin "custom" { path = "plugins/pgimaged-plugin-custom" }
`
	if err := os.WriteFile(name, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Chdir(t.TempDir())
	cfg, diags := config.Load(name)
	if diags.HasErrors() {
		t.Fatalf("diagnostics:%s", describe(diags))
	}
	for what, got := range map[string][2]string{
		"data_dir":           {cfg.DataDir, filepath.Join(dir, "data/node1")},
		"plugin_dir":         {cfg.PluginDir, filepath.Join(confDir, "plugins")},
		"dcs.path":           {cfg.DCS.Path, filepath.Join(confDir, "dcs")},
		"postgresql.bin_dir": {cfg.PostgreSQL.BinDir, filepath.Join(dir, "pg/bin")},
		"plugin.custom.path": {cfg.Plugins["custom"].Path, filepath.Join(confDir, "plugins/pgimaged-plugin-custom")},
	} {
		if got[0] != got[1] {
			t.Errorf("%s = %q, want %q", what, got[0], got[1])
		}
	}
}

func TestSystemDirectoryAsDataDir(t *testing.T) {
	for _, dir := range []string{"/", "//", "/etc", "/etc/", "/usr", "/bin", "/sbin", "/lib", "/lib64", "/boot", "/dev",
		"/proc", "/sys", "/var", "/var/lib", "/home", "/root", "/tmp", "/var/lib/../lib"} {
		src := "scope = \"s\"\nname = \"n\"\ndata_dir = \"" + dir + "\"\n"
		_, diags := config.Parse("sys.hcl", []byte(src))
		if len(diags) != 1 || diags[0].Summary != "System directory as data_dir" || diags[0].Subject == nil ||
			diags[0].Subject.Start.Line != 3 || diags[0].Subject.Start.Column != 12 {
			t.Errorf("data_dir = %q: want one error at 3:12, got:%s", dir, describe(diags))
		}
	}
	for _, dir := range []string{"/var/lib/postgresql/15/main", "/srv/pg", "/home/postgres/data", "/tmp/pgimaged-test"} {
		src := "scope = \"s\"\nname = \"n\"\ndata_dir = \"" + dir + "\"\n"
		if _, diags := config.Parse("ok.hcl", []byte(src)); diags.HasErrors() {
			t.Errorf("data_dir = %q refused:%s", dir, describe(diags))
		}
	}
}

// TestFunctionValuesNeverQuoted puts what file() and env() read into settings that are not
// secrets, with values that are wrong: the diagnostics say what is wrong without the value.
func TestFunctionValuesNeverQuoted(t *testing.T) {
	const secret = "Pr1vate-Content"
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "secret"), []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PGIMAGED_TEST_PRIVATE", secret)
	tests := []struct{ name, src string }{
		{"scope", `scope = "a b ${file("secret")}"`},
		{"scope from env", `scope = "x/${env("PGIMAGED_TEST_PRIVATE")}"`},
		{"log_level", `log_level = file("secret")`},
		{"loop_wait", `loop_wait = env("PGIMAGED_TEST_PRIVATE")`},
		{"listen", `postgresql { listen = file("secret") }`},
		{"data_dir", `data_dir = "/etc/${file("secret")}/.."`},
		{"endpoints", `dcs "etcd" {
  endpoints = ["https://a:2379", "http://${file("secret")}:2379"]
}`},
		{"ca_file", `dcs "etcd" {
  endpoints = ["a:2379"]
  ca_file   = "missing-${file("secret")}"
}`},
		{"options", `method "m" {
  command = "x"
  options = ["a=${file("secret")}"]
}`},
		{"replica method", `postgresql { create_replica_methods = [file("secret")] }`},
		// Type errors are hcl's ("a number is required"), which name types, never values.
		{"attempts", `method "m" {
  command  = "x"
  attempts = file("secret")
}`},
		{"pg_hba", `postgresql { pg_hba = file("secret") }`},
		{"no_params", `method "m" {
  command   = "x"
  no_params = file("secret")
}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var src strings.Builder
			for _, line := range []string{`scope = "s"`, `name = "n"`, `data_dir = "/d"`} {
				if key, _, _ := strings.Cut(line, " "); !strings.HasPrefix(tt.src, key+" ") {
					src.WriteString(line + "\n")
				}
			}
			name := filepath.Join(dir, "pgimaged.hcl")
			if err := os.WriteFile(name, []byte(src.String()+tt.src+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg, diags := config.Load(name)
			if !diags.HasErrors() {
				t.Fatal("want an error")
			}
			var out strings.Builder
			if err := config.WriteDiagnostics(&out, cfg.Files(), diags, false); err != nil {
				t.Fatal(err)
			}
			for _, d := range diags {
				if d.Severity == hcl.DiagError && strings.Contains(d.Summary+d.Detail, "Pr1vate") {
					t.Errorf("diagnostic shows the value: %s: %s", d.Summary, d.Detail)
				}
			}
		})
	}
}
