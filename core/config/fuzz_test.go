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
	f.Add([]byte(header + "tags = { x = " + strings.Repeat("[", 200) + strings.Repeat("]", 200) + " }\n"))
	f.Add([]byte(header + "tags = { x = " + strings.Repeat(`"${`, 40) + strings.Repeat(`}"`, 40) + " }\n"))
	f.Add([]byte(header + "loop_wait = " + strings.Repeat("-", 100) + "1\n"))
	f.Add(manyErrors(500))
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

// FuzzNesting nests values of each kind to any depth, and repeats a line to any size: Parse
// never overflows its stack, refuses exactly the nesting beyond MaxNesting, and refuses a file
// beyond MaxConfigSize whatever it holds.
func FuzzNesting(f *testing.F) {
	f.Add(uint16(10), uint8(0), uint32(1))
	f.Add(uint16(63), uint8(1), uint32(1))
	f.Add(uint16(64), uint8(2), uint32(1))
	f.Add(uint16(50000), uint8(3), uint32(1))
	f.Add(uint16(3), uint8(4), uint32(100000))
	kinds := []struct {
		open, inner, close string
		levels             int // levels each open adds
	}{
		{"[", "1", "]", 1}, {"{a=", "1", "}", 1}, {"(", "1", ")", 1}, {`"${`, "1", `}"`, 2}, {"!", "true", "", 1},
	}
	f.Fuzz(func(t *testing.T, depth uint16, kind uint8, lines uint32) {
		k := kinds[int(kind)%len(kinds)]
		value := strings.Repeat(k.open, int(depth)) + k.inner + strings.Repeat(k.close, int(depth))
		line := "tags = { x = " + value + " }\n"
		n := int(lines%256) + 1
		src := []byte(header + strings.Repeat(line, min(n, config.MaxConfigSize/len(line)+1)))
		cfg, diags := config.Parse("nest.hcl", src)
		if cfg == nil {
			t.Fatal("nil Config")
		}
		deep := false
		for _, d := range diags {
			deep = deep || d.Summary == "Nesting too deep"
		}
		switch {
		case len(src) > config.MaxConfigSize:
			if len(diags) != 1 || diags[0].Summary != "Configuration file too large" {
				t.Fatalf("%d bytes: want one diagnostic about the size, got:%s", len(src), describe(diags))
			}
		case deep != (1+int(depth)*k.levels > config.MaxNesting):
			t.Fatalf("depth %d of %q: nesting refused = %v:%s", depth, k.open, deep, describe(diags))
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
