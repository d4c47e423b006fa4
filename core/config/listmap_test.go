package config_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"

	"github.com/pgimaged/pgimaged/core/config"
	"github.com/pgimaged/pgimaged/sdk"
)

// lineCol finds where text first appears in src, as 1-based line and column.
func lineCol(t *testing.T, src, text string) (int, int) {
	t.Helper()
	i := strings.Index(src, text)
	if i < 0 {
		t.Fatalf("%q not in the source", text)
	}
	line := strings.Count(src[:i], "\n") + 1
	return line, i - strings.LastIndex(src[:i], "\n")
}

func TestListAndMapOptions(t *testing.T) {
	src := head + `method "m" {
  command            = "/bin/true"
  tablespace-mapping = ["/a=/b", "/c=/d"]
  env                = { AWS_REGION = "eu-west-1", "PARTS" = 3, on = true }
  none               = []
  label              = "x"
}
`
	cfg, diags := config.Parse("listmap.hcl", []byte(src))
	if diags.HasErrors() {
		t.Fatalf("decoding:%s", describe(diags))
	}
	m := cfg.Methods["m"]
	want := sdk.Options{
		{Name: "tablespace-mapping", List: []string{"/a=/b", "/c=/d"}},
		{Name: "env", Map: map[string]string{"AWS_REGION": "eu-west-1", "PARTS": "3", "on": "true"}},
		{Name: "none", List: []string{}},
		{Name: "label", Value: "x"},
	}
	if !reflect.DeepEqual(m.Options, want) {
		t.Fatalf("options\n got %+v\nwant %+v", m.Options, want)
	}
	for i, name := range []string{"tablespace-mapping", "env", "none", "label"} {
		line, col := lineCol(t, src, name+" ")
		if r := m.OptionRanges[i]; r.Start.Line != line || r.Start.Column != col || r.Filename != "listmap.hcl" {
			t.Errorf("%s at %s, want line %d column %d", name, r, line, col)
		}
	}
	if len(m.OptionSecrets) != 0 || slicesContain(m.OptionHidden, true) {
		t.Errorf("nothing is read by env() or file(), yet secrets %d, hidden %v", len(m.OptionSecrets), m.OptionHidden)
	}
}

func slicesContain(bs []bool, b bool) bool {
	for _, x := range bs {
		if x == b {
			return true
		}
	}
	return false
}

// TestListAndMapElementErrors: an element that is not a scalar is reported at the element.
func TestListAndMapElementErrors(t *testing.T) {
	src := head + `method "m" {
  command = "/bin/true"
  list    = ["a", { x = 1 }, "c"]
  map     = { k = "v", nested = ["x"] }
  nulls   = [null]
}
`
	_, diags := config.Parse("elements.hcl", []byte(src))
	want := []string{`{ x = 1 }`, `["x"]`, `null]`}
	if len(diags) != len(want) {
		t.Fatalf("got %d diagnostics, want %d:%s", len(diags), len(want), describe(diags))
	}
	for i, text := range want {
		line, col := lineCol(t, src, text)
		d := diags[i]
		if d.Severity != hcl.DiagError || d.Subject == nil || d.Subject.Start.Line != line || d.Subject.Start.Column != col {
			t.Errorf("diagnostic %d: %s at %v, want an error at %d:%d", i, d.Error(), d.Subject, line, col)
		}
	}
	if !strings.Contains(diags[0].Detail, "element 2") || !strings.Contains(diags[1].Detail, `"nested"`) {
		t.Errorf("the diagnostics do not name the element: %s / %s", diags[0].Detail, diags[1].Detail)
	}
}

// TestListAndMapAgainstSchema: a list or map given to a scalar option, and a scalar to a list
// or map option, are errors at the option.
func TestListAndMapAgainstSchema(t *testing.T) {
	schema := sdk.Schema{Options: []sdk.OptionSpec{
		{Name: "tablespace-mapping", Type: sdk.TypeList},
		{Name: "env", Type: sdk.TypeMap},
		{Name: "label", Type: sdk.TypeString},
		{Name: "rate", Type: sdk.TypeSize},
	}}
	src := head + `method "m" {
  tablespace-mapping = ["/a=/b"]
  env                = { A = "1" }
  label              = ["x", "y"]
  rate               = { a = "1" }
}
method "n" {
  tablespace-mapping = "/a=/b"
  env                = "A=1"
  label              = "ok"
}
`
	cfg, diags := config.Parse("schema.hcl", []byte(src))
	if diags.HasErrors() {
		t.Fatalf("decoding:%s", describe(diags))
	}
	for label, wantAt := range map[string][]string{
		"m": {`label              = ["x"`, `rate `},
		"n": {`tablespace-mapping = "/a`, `env                = "A`},
	} {
		got := cfg.Methods[label].CheckOptions(schema, "testplugin")
		if len(got) != len(wantAt) {
			t.Fatalf("method %s: got %d diagnostics, want %d:%s", label, len(got), len(wantAt), describe(got))
		}
		for i, text := range wantAt {
			line, col := lineCol(t, src, text)
			d := got[i]
			if d.Summary != "Invalid option value" || d.Subject.Start.Line != line || d.Subject.Start.Column != col {
				t.Errorf("method %s, diagnostic %d: %s, want at %d:%d", label, i, d.Error(), line, col)
			}
			if !strings.Contains(d.Detail, "list") && !strings.Contains(d.Detail, "map") && !strings.Contains(d.Detail, "single value") {
				t.Errorf("method %s, diagnostic %d does not say what was given: %s", label, i, d.Detail)
			}
		}
	}
}
