package config_test

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"

	"github.com/pgimaged/pgimaged/core/config"
)

// expectation is one "# expect: LINE:COL TEXT" header line of a file in testdata/invalid: an
// error diagnostic must start at LINE:COL and carry TEXT in its summary or detail.
type expectation struct {
	line, col int
	text      string
}

func readExpectations(t *testing.T, name string) []expectation {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []expectation
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "# expect: ")
		if !ok {
			continue
		}
		pos, text, _ := strings.Cut(rest, " ")
		ls, cs, _ := strings.Cut(pos, ":")
		line, err1 := strconv.Atoi(ls)
		col, err2 := strconv.Atoi(cs)
		if err1 != nil || err2 != nil || text == "" {
			t.Fatalf("%s: malformed expectation %q", name, sc.Text())
		}
		out = append(out, expectation{line: line, col: col, text: text})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatalf("%s has no \"# expect:\" line", name)
	}
	return out
}

// unsetEnv makes sure the variables are unset for the test and restored afterwards.
func unsetEnv(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		t.Setenv(n, "")
		if err := os.Unsetenv(n); err != nil {
			t.Fatal(err)
		}
	}
}

func describe(diags hcl.Diagnostics) string {
	var b strings.Builder
	for _, d := range diags {
		if d.Subject != nil {
			fmt.Fprintf(&b, "\n  %d:%d ", d.Subject.Start.Line, d.Subject.Start.Column)
		} else {
			b.WriteString("\n  -:- ")
		}
		fmt.Fprintf(&b, "%s: %s", d.Summary, d.Detail)
	}
	return b.String()
}

func TestInvalidConfigs(t *testing.T) {
	unsetEnv(t, "PGIMAGED_TEST_SURELY_UNSET", "PGIMAGED_TEST_SOURCE_PW")
	files, err := filepath.Glob("testdata/invalid/*.hcl")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 20 {
		t.Fatalf("found %d files in testdata/invalid, want the whole corpus", len(files))
	}
	for _, name := range files {
		t.Run(strings.TrimSuffix(filepath.Base(name), ".hcl"), func(t *testing.T) {
			want := readExpectations(t, name)
			cfg, diags := config.Load(name)
			if cfg == nil {
				t.Fatal("Load returned a nil Config")
			}
			var errs hcl.Diagnostics
			for _, d := range diags {
				if d.Severity == hcl.DiagError {
					errs = append(errs, d)
				}
			}
			if len(errs) != len(want) {
				t.Errorf("got %d errors, want %d:%s", len(errs), len(want), describe(diags))
			}
			for _, w := range want {
				found := false
				for _, d := range errs {
					if d.Subject != nil && d.Subject.Start.Line == w.line && d.Subject.Start.Column == w.col &&
						strings.Contains(d.Summary+"\n"+d.Detail, w.text) {
						found = true
						break
					}
				}
				if !found {
					t.Errorf("no error at %d:%d mentioning %q; got:%s", w.line, w.col, w.text, describe(diags))
				}
			}

			var out bytes.Buffer
			if err := config.WriteDiagnostics(&out, cfg.Files(), diags, false); err != nil {
				t.Fatal(err)
			}
			for _, w := range want {
				if place := fmt.Sprintf("%s:%d:%d: Error: ", name, w.line, w.col); !strings.Contains(out.String(), place) {
					t.Errorf("written diagnostics lack %q:\n%s", place, out.String())
				}
			}
		})
	}
}

func TestWriteDiagnosticsShowsPlaceAndSource(t *testing.T) {
	src := "scope    = \"batman\"\nname     = \"node1\"\ndata_dir = \"/data\"\ndatadir  = \"/data\"\n"
	tests := []struct {
		name  string
		color bool
		want  []string
	}{
		{"plain", false, []string{
			"x.hcl:4:1: Error: Unsupported argument",
			`   4: datadir  = "/data"`,
			`An argument named "datadir" is not expected here.`,
		}},
		{"colour", true, []string{"x.hcl:4:1: \x1b[31mError\x1b[0m: Unsupported argument"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, diags := config.Parse("x.hcl", []byte(src))
			if !diags.HasErrors() {
				t.Fatal("want an error for the unknown attribute")
			}
			var out bytes.Buffer
			if err := config.WriteDiagnostics(&out, cfg.Files(), diags, tt.color); err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	name := filepath.Join(t.TempDir(), "absent.hcl")
	cfg, diags := config.Load(name)
	if cfg == nil || cfg.Files() == nil {
		t.Fatal("Load must return a Config with its files even when the file cannot be read")
	}
	if len(diags) != 1 || diags[0].Summary != "Failed to read configuration file" ||
		!strings.Contains(diags[0].Detail, name) || !strings.Contains(diags[0].Detail, "no such file") {
		t.Fatalf("got:%s", describe(diags))
	}
	var out bytes.Buffer
	if err := config.WriteDiagnostics(&out, cfg.Files(), diags, false); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "Error: Failed to read configuration file") {
		t.Errorf("output:\n%s", out.String())
	}
}
