package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgimaged/pgimaged/core/config"
)

// loadWithPassword writes a configuration whose superuser password is expr into dir and loads it.
func loadWithPassword(t *testing.T, dir, expr string) (*config.Config, string) {
	t.Helper()
	name := filepath.Join(dir, "pgimaged.hcl")
	src := `scope = "s"
name = "n"
data_dir = "/d"
postgresql {
  authentication {
    superuser {
      username = "postgres"
      password = ` + expr + `
    }
  }
}
`
	if err := os.WriteFile(name, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, diags := config.Load(name)
	var msgs []string
	for _, d := range diags {
		msgs = append(msgs, d.Summary+": "+d.Detail)
	}
	return cfg, strings.Join(msgs, "\n")
}

func TestFileFunction(t *testing.T) {
	tests := []struct {
		name     string
		contents string // "" with dir=true makes a directory
		dir      bool
		want     string
		err      string
	}{
		{"one newline trimmed", "pw\n", false, "pw", ""},
		{"only one newline trimmed", "pw\n\n", false, "pw\n", ""},
		{"CRLF trimmed", "pw\r\n", false, "pw", ""},
		{"no newline", "pw", false, "pw", ""},
		{"spaces kept", " pw \n", false, " pw ", ""},
		{"empty file", "", false, "", ""},
		{"directory refused", "", true, "", "not a regular file"},
		{"binary refused", "\xff\xfe", false, "", "not UTF-8 text"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "secret")
			var err error
			if tt.dir {
				err = os.Mkdir(p, 0o700)
			} else {
				err = os.WriteFile(p, []byte(tt.contents), 0o600)
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, expr := range []string{`file("secret")`, `file("` + p + `")`} {
				cfg, diags := loadWithPassword(t, dir, expr)
				if tt.err != "" {
					if !strings.Contains(diags, tt.err) || !strings.Contains(diags, "secret") {
						t.Errorf("%s: diagnostics %q lack %q and the file name", expr, diags, tt.err)
					}
					continue
				}
				if diags != "" {
					t.Fatalf("%s: %s", expr, diags)
				}
				if got := cfg.PostgreSQL.Superuser.Password; got != tt.want {
					t.Errorf("%s: got %q, want %q", expr, got, tt.want)
				}
			}
		})
	}
}

func TestEnvFunction(t *testing.T) {
	const v = "PGIMAGED_TEST_ENV_FUNCTION"
	tests := []struct {
		name  string
		set   bool
		value string
		expr  string
		want  string
		err   string
	}{
		{"set", true, "from-env", `env("` + v + `")`, "from-env", ""},
		{"set but empty", true, "", `env("` + v + `", "fallback")`, "", ""},
		{"unset with default", false, "", `env("` + v + `", "fallback")`, "fallback", ""},
		{"unset", false, "", `env("` + v + `")`, "", `environment variable "` + v + `" is not set`},
		{"too many arguments", true, "x", `env("` + v + `", "a", "b")`, "", "at most one default"},
		{"no name", true, "x", `env("")`, "", "the variable name is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.set {
				t.Setenv(v, tt.value)
			} else {
				unsetEnv(t, v)
			}
			cfg, diags := loadWithPassword(t, t.TempDir(), tt.expr)
			if tt.err != "" {
				if !strings.Contains(diags, tt.err) {
					t.Errorf("diagnostics %q lack %q", diags, tt.err)
				}
				return
			}
			if diags != "" {
				t.Fatal(diags)
			}
			if got := cfg.PostgreSQL.Superuser.Password; got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
