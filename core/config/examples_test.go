package config_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/pgimaged/pgimaged/core/config"
)

// hclBlocks returns the ```hcl blocks of a Markdown file with their first line, indented
// blocks (inside a list) unindented.
func hclBlocks(t *testing.T, name string) map[int]string {
	t.Helper()
	src, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	blocks := map[int]string{}
	var cur []string
	indent, start := "", 0
	for i, line := range strings.Split(string(src), "\n") {
		trimmed := strings.TrimLeft(line, " ")
		switch {
		case start == 0 && trimmed == "```hcl":
			indent, start, cur = line[:len(line)-len(trimmed)], i+2, nil
		case start != 0 && trimmed == "```":
			blocks[start] = strings.Join(cur, "\n") + "\n"
			start = 0
		case start != 0:
			cur = append(cur, strings.TrimPrefix(line, indent))
		}
	}
	return blocks
}

// TestDocumentedConfigurations decodes every ```hcl block of README.md and of the examples'
// READMEs. A block may be a fragment: scope, name and data_dir are supplied when it leaves them
// out. Placeholders are filled in: sha256 = "…" gets a digest, env() its variables, and file()
// of an absolute path a file of the test's own. Files that only the example's host has (TLS
// certificates) are the one diagnostic tolerated.
func TestDocumentedConfigurations(t *testing.T) {
	for _, v := range []string{"PGIMAGED_SUPERUSER_PASSWORD", "PGIMAGED_REPLICATION_PASSWORD", "PGIMAGED_ETCD_PASSWORD"} {
		t.Setenv(v, "documented-"+v)
	}
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	placeholders := strings.NewReplacer(`sha256 = "…"`, `sha256 = "`+strings.Repeat("0", 64)+`"`)
	absFile := regexp.MustCompile(`file\("/[^"]*"\)`)

	files, err := filepath.Glob("../../examples/*/README.md")
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, "../../README.md")
	total := 0
	for _, md := range files {
		for line, block := range hclBlocks(t, md) {
			total++
			name := strings.TrimPrefix(md, "../../") + ":" + itoa(line)
			t.Run(name, func(t *testing.T) {
				src := absFile.ReplaceAllString(placeholders.Replace(block), `file("`+secret+`")`)
				for _, required := range []string{`scope = "doc"`, `name = "node1"`, `data_dir = "/var/lib/postgresql/15/node1"`} {
					key, _, _ := strings.Cut(required, " ")
					if !regexp.MustCompile(`(?m)^` + key + `\s*=`).MatchString(src) {
						src = required + "\n" + src
					}
				}
				_, diags := config.Parse(name, []byte(src))
				for _, d := range diags {
					if d.Summary == "Unreadable file" && strings.Contains(d.Detail, "/etc/pgimaged/") {
						continue
					}
					t.Errorf("%s: %s\n%s", d.Summary, d.Detail, src)
				}
			})
		}
	}
	if total < 4 {
		t.Errorf("found %d hcl blocks, want README.md's and the examples'", total)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
