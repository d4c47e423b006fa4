package config

import (
	"path/filepath"

	"github.com/pgimaged/pgimaged/sdk"
)

// Dir is the directory relative paths of the configuration start at: the configuration file's,
// "" for a configuration built without a file (relative paths then start at the current
// directory, as on a command line).
func (c *Config) Dir() string {
	if c.Filename == "" || c.Filename == "<command line>" {
		return ""
	}
	abs, err := filepath.Abs(c.Filename)
	if err != nil {
		return ""
	}
	return filepath.Dir(abs)
}

// ResolvePaths returns opts with the value of every option schema s types as a path
// ([sdk.TypePath]) made absolute against [Config.Dir], as every relative path of the
// configuration is: what a plugin gets. opts itself is left as it is.
func (c *Config) ResolvePaths(s sdk.Schema, opts sdk.Options) sdk.Options {
	dir := c.Dir()
	if dir == "" {
		return opts
	}
	var out sdk.Options
	for i, o := range opts {
		spec, _, ok := s.Lookup(o.Name)
		if !ok || spec.Type != sdk.TypePath || o.Flag || o.Value == "" || filepath.IsAbs(o.Value) {
			continue
		}
		if out == nil {
			out = append(sdk.Options{}, opts...)
		}
		out[i].Value = filepath.Join(dir, o.Value)
	}
	if out == nil {
		return opts
	}
	return out
}
