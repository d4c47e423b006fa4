package config_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/pgimaged/pgimaged/core/config"
)

const header = "scope = \"s\"\nname = \"n\"\ndata_dir = \"/d\"\n"

// manyErrors is a configuration with n unknown attributes, one error each.
func manyErrors(n int) []byte {
	var b bytes.Buffer
	b.WriteString(header)
	for i := range n {
		fmt.Fprintf(&b, "unknown_%d = %d\n", i, i)
	}
	return b.Bytes()
}

func TestConfigurationTooLarge(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "big.hcl")
	src := append([]byte(header), bytes.Repeat([]byte("# padding\n"), config.MaxConfigSize/10+1)...)
	if err := os.WriteFile(name, src, 0o600); err != nil {
		t.Fatal(err)
	}
	for what, load := range map[string]func() (*config.Config, hcl.Diagnostics){
		"Load":  func() (*config.Config, hcl.Diagnostics) { return config.Load(name) },
		"Parse": func() (*config.Config, hcl.Diagnostics) { return config.Parse(name, src) },
	} {
		cfg, diags := load()
		if cfg == nil || len(diags) != 1 || diags[0].Summary != "Configuration file too large" ||
			!strings.Contains(diags[0].Detail, "1 MiB") {
			t.Errorf("%s: want one diagnostic about the size, got:%s", what, describe(diags))
		}
	}
}

func TestNestingTooDeep(t *testing.T) {
	tests := []struct {
		name      string
		value     string
		line, col int
	}{
		{"list 100000 deep", strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000), 4, 13 + config.MaxNesting},
		{"object", strings.Repeat("{a=", 65) + "1" + strings.Repeat("}", 65), 4, 11 + 3*config.MaxNesting},
		{"template", strings.Repeat(`"${`, 100) + "1" + strings.Repeat(`}"`, 100), 4, 0},
		{"unary operators", strings.Repeat("!", 100_000) + "true", 4, 0},
		{"conditionals", strings.Repeat("true ? 1 : ", 10_000) + "2", 4, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := header + "tags = { x = " + tt.value + " }\n"
			_, diags := config.Parse("deep.hcl", []byte(src))
			if len(diags) != 1 || diags[0].Summary != "Nesting too deep" || diags[0].Subject == nil {
				t.Fatalf("want one diagnostic about nesting, got:%s", describe(diags))
			}
			if s := diags[0].Subject.Start; s.Line != tt.line || (tt.col != 0 && s.Column != tt.col) {
				t.Errorf("points at %d:%d, want %d:%d", s.Line, s.Column, tt.line, tt.col)
			}
			// The offending line is shown as a window around the place, not whole.
			f, _ := hclsyntax.ParseConfig([]byte(header), "deep.hcl", hcl.InitialPos)
			f.Bytes = []byte(src)
			var out bytes.Buffer
			if err := config.WriteDiagnostics(&out, map[string]*hcl.File{"deep.hcl": f}, diags, false); err != nil {
				t.Fatal(err)
			}
			if out.Len() > 2048 {
				t.Errorf("the diagnostic takes %d bytes to print a %d-byte line", out.Len(), len(src))
			}
		})
	}
	// The limit itself is allowed.
	ok := header + "tags = { x = " + strings.Repeat("[", config.MaxNesting-1) + strings.Repeat("]", config.MaxNesting-1) + " }\n"
	if _, diags := config.Parse("ok.hcl", []byte(ok)); diags.HasErrors() {
		t.Errorf("nesting at the limit refused:%s", describe(diags))
	}
}

func TestDiagnosticsShownAreCapped(t *testing.T) {
	const n = 250
	cfg, diags := config.Parse("many.hcl", manyErrors(n))
	if len(diags) != n {
		t.Fatalf("got %d diagnostics, want %d", len(diags), n)
	}
	var out bytes.Buffer
	if err := config.WriteDiagnostics(&out, cfg.Files(), diags, false); err != nil {
		t.Fatal(err)
	}
	shown := regexp.MustCompile(`(?m)^many\.hcl:\d+:\d+: Error: `).FindAllIndex(out.Bytes(), -1)
	if len(shown) != config.MaxDiagnosticsShown {
		t.Errorf("%d diagnostics shown, want %d", len(shown), config.MaxDiagnosticsShown)
	}
	if want := fmt.Sprintf("and %d more", n-config.MaxDiagnosticsShown); !strings.Contains(out.String(), want) {
		t.Errorf("output lacks %q:\n…%s", want, out.String()[max(0, out.Len()-300):])
	}
}

// TestDiagnosticsWrittenWithSourceLines checks the writer on ranges over several lines, at the
// end of the file and without a source.
func TestDiagnosticsWrittenWithSourceLines(t *testing.T) {
	src := "a = 1\nb = [\n  2,\n]\nc = 3"
	f := &hcl.File{Bytes: []byte(src)}
	rng := func(l1, c1, b1, l2, c2, b2 int) *hcl.Range {
		return &hcl.Range{Filename: "x.hcl", Start: hcl.Pos{Line: l1, Column: c1, Byte: b1}, End: hcl.Pos{Line: l2, Column: c2, Byte: b2}}
	}
	diags := hcl.Diagnostics{
		{Severity: hcl.DiagError, Summary: "multi", Detail: "d1", Subject: rng(2, 5, 10, 4, 2, 18)},
		{Severity: hcl.DiagWarning, Summary: "last", Detail: "d2", Subject: rng(5, 5, 22, 5, 6, 23)},
		{Severity: hcl.DiagError, Summary: "empty", Subject: rng(1, 1, 0, 1, 1, 0)},
		{Severity: hcl.DiagError, Summary: "elsewhere", Subject: &hcl.Range{Filename: "other.hcl", Start: hcl.Pos{Line: 3, Column: 1}}},
	}
	var out bytes.Buffer
	if err := config.WriteDiagnostics(&out, map[string]*hcl.File{"x.hcl": f}, diags, false); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"x.hcl:2:5: Error: multi\n\n  on x.hcl line 2:\n   2: b = [\n   3:   2,\n   4: ]\n\nd1\n\n",
		"x.hcl:5:5: Warning: last\n\n  on x.hcl line 5:\n   5: c = 3\n\nd2\n\n",
		"x.hcl:1:1: Error: empty\n\n  on x.hcl line 1:\n   1: a = 1\n\n",
		"other.hcl:3:1: Error: elsewhere\n\n  on other.hcl line 3:\n  (source code not available)\n\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

// BenchmarkParse measures Parse and WriteDiagnostics against the size of the input: a file of
// errors, each size four times the one before. The time per error should stay flat.
func BenchmarkParse(b *testing.B) {
	for _, n := range []int{250, 1000, 4000, 16000} {
		src := manyErrors(n)
		b.Run(fmt.Sprintf("errors=%d/bytes=%d", n, len(src)), func(b *testing.B) {
			for b.Loop() {
				cfg, diags := config.Parse("bench.hcl", src)
				if err := config.WriteDiagnostics(&bytes.Buffer{}, cfg.Files(), diags, false); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestDiagnosticsClipLongLines: a long source line is shown as a window around the mark, so
// that a file of one huge line does not print it once per diagnostic.
func TestDiagnosticsClipLongLines(t *testing.T) {
	src := header + `tags = { a = "` + strings.Repeat("x", 5000) + `" }` + ` loop_wait = "soon"` + "\n"
	cfg, diags := config.Parse("long.hcl", []byte(src))
	if !diags.HasErrors() {
		t.Fatal("want an error")
	}
	var out bytes.Buffer
	if err := config.WriteDiagnostics(&out, cfg.Files(), diags, false); err != nil {
		t.Fatal(err)
	}
	if out.Len() > 2000 {
		t.Errorf("%d bytes written for %d diagnostics of one long line:\n%s", out.Len(), len(diags), out.String())
	}
	if !strings.Contains(out.String(), "   4: …") {
		t.Errorf("the long line is not shown clipped:\n%s", out.String())
	}
}
