package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
)

// maxFileSize bounds what file() reads: it is meant for passwords and short settings.
const maxFileSize = 1 << 20

// evalContext is what expressions in a configuration file may use: env("NAME"[, "default"]),
// file("path") with relative paths taken from baseDir, and no variables.
func evalContext(baseDir string) *hcl.EvalContext {
	str := function.StaticReturnType(cty.String)
	env := func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		name := args[0].AsString()
		v, ok := os.LookupEnv(name)
		switch {
		case len(args) > 2:
			return cty.NilVal, function.NewArgErrorf(2, "env takes a variable name and at most one default value")
		case name == "":
			return cty.NilVal, function.NewArgErrorf(0, "the variable name is empty")
		case ok && !utf8.ValidString(v):
			return cty.NilVal, fmt.Errorf("environment variable %q is not UTF-8 text", name)
		case ok:
			return cty.StringVal(v), nil
		case len(args) == 2:
			return args[1], nil
		}
		return cty.NilVal, fmt.Errorf("environment variable %q is not set", name)
	}
	file := func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		p, named := args[0].AsString(), fmt.Sprintf("%q", args[0].AsString())
		if p == "" {
			return cty.NilVal, function.NewArgErrorf(0, "the file name is empty")
		} else if full := filepath.Join(baseDir, p); !filepath.IsAbs(p) && full != p {
			p, named = full, fmt.Sprintf("%s (%q)", named, full)
		}
		b, err := readRegular(p, maxFileSize+1)
		if err == nil && len(b) > maxFileSize {
			err = fmt.Errorf("larger than %d bytes", maxFileSize)
		} else if err == nil && !utf8.Valid(b) {
			err = errors.New("not UTF-8 text")
		}
		if err != nil {
			return cty.NilVal, fmt.Errorf("while reading %s: %w", named, err)
		}
		s, ok := strings.CutSuffix(string(b), "\n") // one trailing newline, "\n" or "\r\n"
		if ok {
			s = strings.TrimSuffix(s, "\r")
		}
		return cty.StringVal(s), nil
	}
	return &hcl.EvalContext{Functions: map[string]function.Function{
		"env": function.New(&function.Spec{Description: "The value of an environment variable, or the default when it is unset.",
			Params: []function.Parameter{{Name: "name", Type: cty.String}}, VarParam: &function.Parameter{Name: "default", Type: cty.String},
			Type: str, Impl: env}),
		"file": function.New(&function.Spec{Description: "The contents of a file with one trailing newline removed.",
			Params: []function.Parameter{{Name: "path", Type: cty.String}}, Type: str, Impl: file}),
	}}
}

// readRegular reads at most limit bytes of the regular file name; the error names no path.
func readRegular(name string, limit int64) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, unwrapPathError(err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil {
		return nil, unwrapPathError(err)
	} else if !fi.Mode().IsRegular() {
		return nil, errors.New("not a regular file")
	}
	b, err := io.ReadAll(io.LimitReader(f, limit))
	return b, unwrapPathError(err)
}

// unwrapPathError drops the operation and path from an *os.PathError: the caller names the file.
func unwrapPathError(err error) error {
	if pe := (*os.PathError)(nil); errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
