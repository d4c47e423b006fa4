package main_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestValidateChecksOptionSchemas: `pgimaged validate` checks every method block against its
// plugin's option schema, and each mistake is a diagnostic at the option's file:line:col.
func TestValidateChecksOptionSchemas(t *testing.T) {
	dir := workDir(t)
	body := fmt.Sprintf(`scope      = "schema"
name       = "m1"
data_dir   = "data"
plugin_dir = %q

dcs "file" { path = "dcs" }

postgresql {
  bin_dir         = "/usr/lib/postgresql/15/bin"
  listen          = "*:6543"
  connect_address = "127.0.0.1:6543"
  parameters      = { unix_socket_directories = "sock" }
  authentication {
    superuser   { username = "admin" }
    replication { username = "rep" }
  }
  create_replica_methods = ["basebackup", "fromscript"]
}

bootstrap {
  initdb = ["data-checksums", { pgdata = "/elsewhere" }]
}

method "basebackup" {
  checkpoint = "fastest"
  max_rate   = "100M"
  label      = "ok"
  verbose    = "maybe"
  format     = "tar"
}

method "fromscript" {
  command  = "/bin/true"
  anything = "passes"
}
`, pluginDir(t))
	cfg := writeFile(t, dir, "schema.hcl", body, 0o600)
	r := run(t, nil, "validate", "-config", cfg)
	if r.code != 3 {
		t.Fatalf("validate: exit %d, want 3 (a configuration error)\n%s", r.code, r)
	}
	lines := strings.Split(body, "\n")
	at := func(text string) string { // file:line:col of text's first occurrence
		for i, l := range lines {
			if c := strings.Index(l, text); c >= 0 {
				return fmt.Sprintf("%s:%d:%d", filepath.Base(cfg), i+1, c+1)
			}
		}
		t.Fatalf("%q is not in the configuration", text)
		return ""
	}
	for _, want := range []struct{ where, says string }{
		{at(`checkpoint = "fastest"`), `"fast"`},
		{at(`max_rate`), `max-rate`},
		{at(`verbose    = "maybe"`), `true or false`},
		{at(`format     = "tar"`), `format`},
		{at(`pgdata = "/elsewhere"`), `pgdata`},
	} {
		re := regexp.MustCompile(regexp.QuoteMeta(want.where) + `[^\n]*(\n[^\n]*){0,8}`)
		m := re.FindString(r.stderr)
		if m == "" {
			t.Errorf("no diagnostic at %s\n%s", want.where, r.stderr)
			continue
		}
		if !strings.Contains(m, want.says) {
			t.Errorf("the diagnostic at %s does not mention %s:\n%s", want.where, want.says, m)
		}
	}
	if strings.Contains(r.stderr, at(`anything = "passes"`)) || strings.Contains(r.stderr, at(`label      = "ok"`)) {
		t.Errorf("a valid option was reported:\n%s", r.stderr)
	}
}

// TestValidateRefusedByPluginSchemas: the options a plugin's schema refuses are diagnostics at
// their place, whichever form the configuration writes them in. Each file under
// testdata/schema says what it expects in "# expect: LINE:COL text" lines.
func TestValidateRefusedByPluginSchemas(t *testing.T) {
	files, err := filepath.Glob("testdata/schema/*.hcl")
	if err != nil || len(files) == 0 {
		t.Fatalf("testdata/schema: %v %v", files, err)
	}
	expect := regexp.MustCompile(`(?m)^# expect: (\d+:\d+) (.*)$`)
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".hcl"), func(t *testing.T) {
			abs, err := filepath.Abs(f)
			if err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(abs)
			if err != nil {
				t.Fatal(err)
			}
			src := string(b)
			r := run(t, nil, "validate", "-config", abs)
			if r.code != 3 {
				t.Fatalf("validate: exit %d, want 3\n%s", r.code, r)
			}
			wants := expect.FindAllStringSubmatch(src, -1)
			if len(wants) == 0 {
				t.Fatalf("%s expects nothing", f)
			}
			for _, w := range wants {
				m := regexp.MustCompile(regexp.QuoteMeta(filepath.Base(f)+":"+w[1]+": Error: ") + `[^\n]*(\n[^\n]*){0,8}`).FindString(r.stderr)
				if m == "" || !strings.Contains(m, w[2]) {
					t.Errorf("no error at %s mentioning %s:\n%s", w[1], w[2], r.stderr)
				}
			}
		})
	}
}

// TestPluginsShow: `pgimaged plugins show NAME` documents the plugin's options, as text and as
// JSON, from the schema the plugin describes.
func TestPluginsShow(t *testing.T) {
	r := run(t, nil, "plugins", "show", "basebackup", "-plugin-dir", pluginDir(t), "-json")
	if r.code != 0 {
		t.Fatalf("plugins show -json: %s", r)
	}
	var doc struct {
		Name    string
		Options []struct {
			Name       string
			Type       string
			EnumValues []string `json:"enum_values"`
			Refused    string
			Min, Max   string
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatalf("plugins show -json printed no JSON: %v\n%s", err, r.stdout)
	}
	found := map[string]bool{}
	for _, o := range doc.Options {
		found[o.Name] = true
		switch o.Name {
		case "checkpoint":
			if o.Type != "enum" || strings.Join(o.EnumValues, ",") != "fast,spread" {
				t.Errorf("checkpoint: %+v", o)
			}
		case "max-rate":
			if o.Type != "size" || o.Min != "32kB" || o.Max != "1GB" {
				t.Errorf("max-rate: %+v", o)
			}
		case "pgdata", "wal-method", "format":
			if o.Refused == "" {
				t.Errorf("%s is not documented as refused: %+v", o.Name, o)
			}
		}
	}
	for _, n := range []string{"checkpoint", "max-rate", "pgdata", "wal-method", "format"} {
		if !found[n] {
			t.Errorf("option %s is not documented", n)
		}
	}
	r = run(t, nil, "plugins", "show", "initdb", "-plugin-dir", pluginDir(t))
	if r.code != 0 || !strings.Contains(r.stdout, "data-checksums (bool)") || !strings.Contains(r.stdout, "REFUSED") ||
		!strings.Contains(r.stdout, "no-sync, nosync:") {
		t.Errorf("plugins show initdb:\n%s", r)
	}
}
