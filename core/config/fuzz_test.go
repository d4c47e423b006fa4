package config_test

import (
	"errors"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"

	"github.com/pgimaged/pgimaged/core/config"
)

// FuzzParse feeds arbitrary text to Parse: it must not panic, must always return a Config with
// its files, and a configuration without errors must be complete.
func FuzzParse(f *testing.F) {
	seeds, err := filepath.Glob("testdata/*/*.hcl")
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range seeds {
		src, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(src)
	}
	f.Add([]byte(""))
	f.Add([]byte("method \"x\" { options = [{}, [], null, 1, \"\", {\"\" = 1}] }"))
	f.Add([]byte("scope = \"s\"\nname = \"n\"\ndata_dir = \"d\"\nbootstrap { initdb = { a = null } }\n"))
	f.Add([]byte("scope = \"s\"\nname = \"n\"\ndata_dir = \"d\"\ntags = { a = 1e400 }\nloop_wait = \"9223372036s\"\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		cfg, diags := config.Parse("fuzz.hcl", src)
		if cfg == nil {
			t.Fatal("nil Config")
		}
		if err := config.WriteDiagnostics(io.Discard, cfg.Files(), diags, false); err != nil {
			t.Fatal(err)
		}
		if diags.HasErrors() {
			return
		}
		if cfg.Scope == "" || cfg.Name == "" || cfg.DataDir == "" || cfg.Bootstrap.Method == "" ||
			len(cfg.PostgreSQL.CreateReplicaMethods) == 0 || cfg.TTL <= cfg.LoopWait {
			t.Fatalf("a configuration without errors is incomplete: %+v", cfg)
		}
		if len(cfg.Bootstrap.InitdbRanges) != len(cfg.Bootstrap.Initdb) {
			t.Fatal("initdb ranges are not parallel to the options")
		}
		for label, m := range cfg.Methods {
			if len(m.OptionRanges) != len(m.Options) {
				t.Fatalf("method %s: option ranges are not parallel to the options", label)
			}
			for _, o := range m.Options {
				if strings.HasPrefix(o.Name, "-") || strings.Contains(o.Name, "=") || o.Name == "" {
					t.Fatalf("method %s: option name %q cannot be a long option", label, o.Name)
				}
			}
		}
	})
}

// FuzzRenderValue checks the renderer on strings, bools and every number the fuzzer can spell:
// a rendered number reads back as the same number, and an integer that fits 64 bits renders
// as plain digits.
func FuzzRenderValue(f *testing.F) {
	for _, s := range []string{
		"1", "1.5", "-0", "0.1", "100", "1e300", "1e-7", "0.000125", "9223372036854775807",
		"9223372036854775808", "-9223372036854775808", "123456789.123456789", "1e21", "inf", "1e400",
		"100M", "", "\xff", "true",
	} {
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, s string, b bool) {
		sv := cty.StringVal(s)
		if got, err := config.RenderValue(sv); err != nil || got != sv.AsString() {
			t.Fatalf("string %q rendered as %q, %v", s, got, err)
		}
		if got, err := config.RenderValue(cty.BoolVal(b)); err != nil || got != strconv.FormatBool(b) {
			t.Fatalf("bool %v rendered as %q, %v", b, got, err)
		}

		n, err := cty.ParseNumberVal(s)
		if err != nil {
			return
		}
		out, err := config.RenderValue(n)
		if err != nil {
			if !errors.Is(err, config.ErrNumberRange) {
				t.Fatalf("number %q: %v", s, err)
			}
			return
		}
		back, err := cty.ParseNumberVal(out)
		if err != nil {
			t.Fatalf("number %q rendered as %q, which does not read back: %v", s, out, err)
		}
		if back.AsBigFloat().Cmp(n.AsBigFloat()) != 0 {
			t.Fatalf("number %q rendered as %q, which reads back as another number", s, out)
		}
		if i, acc := n.AsBigFloat().Int64(); acc == big.Exact {
			if want := strconv.FormatInt(i, 10); out != want {
				t.Fatalf("integer %q rendered as %q, want %q", s, out, want)
			}
		}
	})
}
