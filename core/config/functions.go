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

// evalContext is what expressions in a configuration file may use: the env and file functions
// and no variables. Relative paths in file() are taken from baseDir.
func evalContext(baseDir string) *hcl.EvalContext {
	return &hcl.EvalContext{
		Functions: map[string]function.Function{
			"env":  envFunction(),
			"file": fileFunction(baseDir),
		},
	}
}

func envFunction() function.Function {
	return function.New(&function.Spec{
		Description: "The value of an environment variable, or the default when it is unset.",
		Params:      []function.Parameter{{Name: "name", Type: cty.String}},
		VarParam:    &function.Parameter{Name: "default", Type: cty.String},
		Type:        function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			if len(args) > 2 {
				return cty.NilVal, function.NewArgErrorf(2, "env takes a variable name and at most one default value")
			}
			name := args[0].AsString()
			if name == "" {
				return cty.NilVal, function.NewArgErrorf(0, "the variable name is empty")
			}
			if v, ok := os.LookupEnv(name); ok {
				if !utf8.ValidString(v) {
					return cty.NilVal, fmt.Errorf("environment variable %q is not UTF-8 text", name)
				}
				return cty.StringVal(v), nil
			}
			if len(args) == 2 {
				return args[1], nil
			}
			return cty.NilVal, fmt.Errorf("environment variable %q is not set", name)
		},
	})
}

func fileFunction(baseDir string) function.Function {
	return function.New(&function.Spec{
		Description: "The contents of a file with one trailing newline removed.",
		Params:      []function.Parameter{{Name: "path", Type: cty.String}},
		Type:        function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			p := args[0].AsString()
			if p == "" {
				return cty.NilVal, function.NewArgErrorf(0, "the file name is empty")
			}
			full := p
			if !filepath.IsAbs(full) {
				full = filepath.Join(baseDir, full)
			}
			s, err := readSmallFile(full)
			if err != nil {
				if full != p {
					return cty.NilVal, fmt.Errorf("while reading %q (%q): %w", p, full, err)
				}
				return cty.NilVal, fmt.Errorf("while reading %q: %w", p, err)
			}
			return cty.StringVal(s), nil
		},
	})
}

// readSmallFile reads a regular file of at most maxFileSize bytes of UTF-8 text and removes one
// trailing newline ("\n" or "\r\n").
func readSmallFile(name string) (string, error) {
	b, err := readRegular(name, maxFileSize+1)
	switch {
	case err != nil:
		return "", err
	case len(b) > maxFileSize:
		return "", fmt.Errorf("larger than %d bytes", maxFileSize)
	case !utf8.Valid(b):
		return "", errors.New("not UTF-8 text")
	}
	s := string(b)
	if t, ok := strings.CutSuffix(s, "\n"); ok {
		s = strings.TrimSuffix(t, "\r")
	}
	return s, nil
}

// checkReadable reports why name cannot be read as a regular file, or nil.
func checkReadable(name string) error {
	_, err := readRegular(name, 1)
	return err
}

// readRegular reads at most limit bytes of the regular file name.
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

// unwrapPathError drops the operation and path from an *os.PathError: the caller names the
// file already.
func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
