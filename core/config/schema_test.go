package config_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"

	"github.com/pgimaged/pgimaged/core/config"
	"github.com/pgimaged/pgimaged/sdk"
)

const head = "scope = \"s\"\nname = \"n\"\ndata_dir = \"d\"\n"

// A schema like a plugin's: one option of each kind the checks treat differently.
var testSchema = sdk.Schema{Options: []sdk.OptionSpec{
	{Name: "checkpoint", Type: sdk.TypeEnum, EnumValues: []string{"fast", "spread"}},
	{Name: "max-rate", Type: sdk.TypeSize, SizeUnit: 1024, Min: sdk.Bound(32 << 10), Max: sdk.Bound(1 << 30)},
	{Name: "verbose", Type: sdk.TypeBool},
	{Name: "stanza", Type: sdk.TypeString, Required: true, Description: "the pgBackRest stanza"},
	{Name: "token", Type: sdk.TypeInt, Sensitive: true},
	{Name: "wal-method", Type: sdk.TypeString, Aliases: []string{"xlog-method"}, Refused: "pgimaged streams WAL itself"},
	{Name: "process-max", Type: sdk.TypeInt, Aliases: []string{"processes"}},
	{Name: "pgdata", Refused: "pgimaged passes the data directory itself"},
}}

func TestCheckOptionsAgainstSchema(t *testing.T) {
	src := head + `method "m" {
  checkpoint = "fastest"
  max_rate   = "100M"
  max-rate   = "16kB"
  verbose    = "on"
  token      = "s3cr3t-value"
  xlog-method = "fetch"
  processes  = 4
  pgdata     = "/x"
  label      = "x"
}
`
	cfg, diags := config.Parse("schema.hcl", []byte(src))
	if diags.HasErrors() {
		t.Fatalf("decoding:%s", describe(diags))
	}
	got := cfg.Methods["m"].CheckOptions(testSchema, "testplugin")
	lineOf := func(text string) int {
		for i, l := range strings.Split(src, "\n") {
			if strings.Contains(l, text) {
				return i + 1
			}
		}
		t.Fatalf("%q not in the source", text)
		return 0
	}
	want := []struct {
		sev           hcl.DiagnosticSeverity
		summary, text string
		line          int
	}{
		{hcl.DiagError, "Invalid option value", `"fast"`, lineOf(`checkpoint`)},
		{hcl.DiagError, "Unknown option", `Did you mean "max-rate"?`, lineOf(`max_rate`)},
		{hcl.DiagError, "Invalid option value", "from 32kB to 1GB", lineOf(`"16kB"`)},
		{hcl.DiagError, "Invalid option value", "whole number", lineOf(`token`)},
		{hcl.DiagWarning, "Deprecated option name", `write wal-method`, lineOf(`xlog-method`)},
		{hcl.DiagError, "Refused option", "streams WAL itself", lineOf(`xlog-method`)},
		{hcl.DiagWarning, "Deprecated option name", `write process-max`, lineOf(`processes`)},
		{hcl.DiagError, "Refused option", "data directory", lineOf(`pgdata`)},
		{hcl.DiagError, "Unknown option", `"label"`, lineOf(`label`)},
		{hcl.DiagError, "Missing required option", "stanza", lineOf(`method "m"`)},
	}
	if len(got) != len(want) {
		t.Errorf("got %d diagnostics, want %d:%s", len(got), len(want), describe(got))
	}
	for i := 0; i < len(got) && i < len(want); i++ {
		d, w := got[i], want[i]
		if d.Severity != w.sev || d.Summary != w.summary || !strings.Contains(d.Detail, w.text) || d.Subject == nil ||
			d.Subject.Filename != "schema.hcl" || d.Subject.Start.Line != w.line {
			t.Errorf("diagnostic %d: got %s, want %v %q mentioning %q at line %d", i, describe(hcl.Diagnostics{d}), w.sev, w.summary, w.text, w.line)
		}
	}
	for _, d := range got {
		if strings.Contains(d.Detail, "s3cr3t-value") {
			t.Errorf("a sensitive value is shown: %s", d.Detail)
		}
	}
}

func TestCheckOptionsOpenSchema(t *testing.T) {
	src := head + "method \"m\" {\n  command = \"/bin/true\"\n  anything = \"goes\"\n  timeout_ms = \"x\"\n}\n"
	cfg, diags := config.Parse("open.hcl", []byte(src))
	if diags.HasErrors() {
		t.Fatalf("decoding:%s", describe(diags))
	}
	open := sdk.Schema{Open: true, Options: []sdk.OptionSpec{{Name: "timeout_ms", Type: sdk.TypeInt}}}
	got := cfg.Methods["m"].CheckOptions(open, "script")
	if len(got) != 1 || got[0].Subject == nil || got[0].Subject.Start.Line != 7 {
		t.Errorf("want one diagnostic at line 4 (the option the open schema types), got%s", describe(got))
	}
}

func ExampleMethod_CheckOptions() {
	cfg, _ := config.Parse("node.hcl", []byte(head+"method \"basebackup\" {\n  max_rate = \"100M\"\n}\n"))
	schema := sdk.Schema{Options: []sdk.OptionSpec{{Name: "max-rate", Type: sdk.TypeSize}}}
	for _, d := range cfg.Methods["basebackup"].CheckOptions(schema, "basebackup") {
		fmt.Printf("%s: %s: %s\n", d.Subject, d.Summary, d.Detail)
	}
	// Output:
	// node.hcl:5,3-20: Unknown option: Method "basebackup" (plugin basebackup): "max_rate" is not an option of basebackup. Did you mean "max-rate"? `pgimaged plugins show basebackup` lists its options.
}

// What env() and file() read is never shown, even in a diagnostic about a wrong value.
func TestCheckOptionsHidesValuesReadByFunctions(t *testing.T) {
	t.Setenv("PGIMAGED_TEST_CHECKPOINT", "s3cr3t-checkpoint")
	src := head + "method \"m\" {\n  checkpoint = env(\"PGIMAGED_TEST_CHECKPOINT\")\n  options = [{ verbose = env(\"PGIMAGED_TEST_CHECKPOINT\") }]\n}\n"
	cfg, diags := config.Parse("hidden.hcl", []byte(src))
	if diags.HasErrors() {
		t.Fatalf("decoding:%s", describe(diags))
	}
	got := cfg.Methods["m"].CheckOptions(testSchema, "testplugin")
	if len(got) < 2 {
		t.Fatalf("want diagnostics about checkpoint and verbose, got%s", describe(got))
	}
	for _, d := range got {
		if strings.Contains(d.Detail, "s3cr3t-checkpoint") {
			t.Errorf("a value read by env() is shown: %s", d.Detail)
		}
	}
}
