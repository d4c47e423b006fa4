// Package patroni converts a Patroni configuration (YAML) into pgimaged's HCL configuration.
//
// The conversion reads the settings Patroni reads, in the places Patroni reads them, with the
// PATRONI_* environment variables that name them taking precedence over the file as in Patroni.
// Every setting without an equivalent in pgimaged is kept as a comment in the output and
// reported as a note: nothing is dropped silently.
package patroni

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/pgimaged/pgimaged/core/config"
	"github.com/zclconf/go-cty/cty"
	"gopkg.in/yaml.v3"
)

// Options steer a conversion.
type Options struct {
	// BaseDir is the directory relative paths are taken against, as Patroni takes them against
	// its working directory. "" is the current directory.
	BaseDir string
	// SecretsEnv writes passwords as env("…") references instead of their values.
	SecretsEnv bool
	// Environ is the environment, as os.Environ returns it; only PATRONI_* variables are read.
	Environ []string
}

// Result is a converted configuration.
type Result struct {
	HCL []byte
	// Notes name each setting that has no equivalent, or that was changed on the way.
	Notes []string
	// Warnings are about the output itself, such as a password written into it.
	Warnings []string
	// Weaker name each setting the output leaves out that made the input stronger: more
	// durable, fenced or guarded (see weakerRules). A member run with the output does less than
	// Patroni did; `import patroni` refuses to write it unless told to accept that.
	Weaker []string
	// SecretEnv are the variables the output reads with env(), each to be set to the value
	// of the named Patroni setting: {"PGIMAGED_SUPERUSER_PASSWORD", "postgresql.authentication.superuser.password"}.
	SecretEnv [][2]string
}

// conv holds one conversion's state.
type conv struct {
	opt     Options
	res     Result
	body    *hclwrite.Body
	unknown []string // comment lines for the settings without an equivalent
}

// Convert converts the Patroni configuration src; filename names it in errors and in the
// output's header.
func Convert(filename string, src []byte, opt Options) (*Result, error) {
	var root map[string]any
	if err := yaml.Unmarshal(src, &root); err != nil {
		return nil, fmt.Errorf("while reading %s as YAML: %w", filename, err)
	}
	if root == nil {
		return nil, fmt.Errorf("while reading %s: it holds no YAML mapping", filename)
	}
	base, err := filepath.Abs(opt.BaseDir) // "" is the current directory
	if err != nil {
		return nil, fmt.Errorf("while finding the directory for relative paths: %w", err)
	}
	opt.BaseDir = base
	c := &conv{opt: opt}
	c.applyEnv(root)
	f := hclwrite.NewEmptyFile()
	c.body = f.Body()
	c.comment(fmt.Sprintf("Converted from the Patroni configuration %s by `pgimaged import patroni`.", filepath.Base(filename)))
	if err := c.convert(root); err != nil {
		return nil, err
	}
	if len(c.unknown) > 0 {
		c.body.AppendNewline()
		c.comment("Patroni settings without an equivalent in pgimaged, kept for reference:")
		for _, l := range c.unknown {
			c.comment("  " + l)
		}
	}
	c.res.HCL = hclwrite.Format(f.Bytes())
	if !bytes.HasSuffix(c.res.HCL, []byte("\n")) {
		c.res.HCL = append(c.res.HCL, '\n')
	}
	return &c.res, nil
}

// LooksLikeYAML tells whether the configuration file filename, whose text is src, is YAML
// rather than HCL: its name ends in .yml or .yaml, or it fails to parse as HCL and parses as
// a YAML mapping.
func LooksLikeYAML(filename string, src []byte) bool {
	if ext := strings.ToLower(filepath.Ext(filename)); ext == ".yml" || ext == ".yaml" {
		return true
	}
	if config.CheckInput(filename, src).HasErrors() {
		return false // the configuration's own checks report it; no parser sees it
	}
	if _, diags := hclsyntax.ParseConfig(src, filename, hcl.InitialPos); !diags.HasErrors() {
		return false
	}
	var m map[string]any
	return yaml.Unmarshal(src, &m) == nil && len(m) > 0
}

func (c *conv) comment(text string) {
	c.body.AppendUnstructuredTokens(hclwrite.Tokens{
		{Type: hclsyntax.TokenComment, Bytes: []byte("# " + text + "\n")},
	})
}

// note records a setting without an equivalent: a comment in the output and a note.
func (c *conv) note(path string, v any, why string) {
	shown := render(path, v)
	if weak, ok := weakens(path, v); ok {
		if why != "" {
			weak = why + "; " + weak
		}
		c.weaker(path, shown, weak)
		return
	}
	if why == "" {
		c.unknown = append(c.unknown, fmt.Sprintf("%s: %s", path, shown))
		c.res.Notes = append(c.res.Notes, fmt.Sprintf("%s has no equivalent in pgimaged; kept as a comment", path))
		return
	}
	c.unknown = append(c.unknown, fmt.Sprintf("%s: %s (%s)", path, shown, why))
	c.res.Notes = append(c.res.Notes, fmt.Sprintf("%s is not converted: %s; kept as a comment", path, why))
}

// leftovers notes every key still in m, which the conversion did not take.
func (c *conv) leftovers(prefix string, m map[string]any) {
	for _, k := range sortedKeys(m) {
		c.note(join(prefix, k), m[k], "")
	}
}

// render shows v on one line, hiding passwords.
func render(path string, v any) string {
	if secretKey(path) {
		return "(hidden)"
	}
	switch v := v.(type) {
	case map[string]any:
		parts := make([]string, 0, len(v))
		for _, k := range sortedKeys(v) {
			parts = append(parts, k+": "+render(join(path, k), v[k]))
		}
		return "{" + strings.Join(parts, ", ") + "}"
	case []any:
		parts := make([]string, 0, len(v))
		for _, e := range v {
			parts = append(parts, render(path, e))
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case string:
		return strconv.Quote(v)
	case nil:
		return "null"
	default:
		return fmt.Sprint(v)
	}
}

func secretKey(path string) bool {
	last := path[strings.LastIndex(path, ".")+1:]
	return strings.Contains(strings.ToLower(last), "password")
}

func join(prefix, k string) string {
	if prefix == "" {
		return k
	}
	return prefix + "." + k
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// take removes key from m and returns its value.
func take(m map[string]any, key string) (any, bool) {
	v, ok := m[key]
	delete(m, key)
	return v, ok
}

// section takes the mapping at key; nil when absent.
func (c *conv) section(m map[string]any, key, path string) map[string]any {
	v, ok := take(m, key)
	if !ok || v == nil {
		return nil
	}
	if s, ok := v.(map[string]any); ok {
		return s
	}
	c.note(join(path, key), v, "not a mapping")
	return nil
}

// str takes the scalar at key as a string; "" when absent.
func (c *conv) str(m map[string]any, key, path string) string {
	v, ok := take(m, key)
	if !ok || v == nil {
		return ""
	}
	switch v.(type) {
	case map[string]any, []any:
		c.note(join(path, key), v, "not a single value")
		return ""
	}
	return fmt.Sprint(v)
}

// abs makes p absolute against the base directory.
func (c *conv) abs(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.opt.BaseDir, p)
}

// value converts a YAML scalar to a cty value: strings, numbers and booleans.
func value(v any) (cty.Value, error) {
	switch v := v.(type) {
	case string:
		return cty.StringVal(v), nil
	case bool:
		return cty.BoolVal(v), nil
	case int:
		return cty.NumberIntVal(int64(v)), nil
	case int64:
		return cty.NumberIntVal(v), nil
	case uint64:
		return cty.NumberUIntVal(v), nil
	case float64:
		return cty.NumberFloatVal(v), nil
	}
	return cty.NilVal, errors.New("not a string, number or boolean")
}

// seconds converts Patroni's number of seconds to a duration string.
func seconds(v any) (string, bool) {
	switch v := v.(type) {
	case int:
		return fmt.Sprintf("%ds", v), true
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64) + "s", true
	case string:
		if _, err := strconv.ParseFloat(v, 64); err == nil {
			return v + "s", true
		}
	}
	return "", false
}

// stringList reads a list of strings, or a comma-separated string as Patroni's _parse_list.
func stringList(v any) ([]string, bool) {
	switch v := v.(type) {
	case string:
		if strings.HasPrefix(strings.TrimSpace(v), "[") {
			var l []any
			if yaml.Unmarshal([]byte(v), &l) != nil {
				return nil, false
			}
			return stringList(l)
		}
		var out []string
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
		return out, true
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			switch e.(type) {
			case map[string]any, []any, nil:
				return nil, false
			}
			out = append(out, fmt.Sprint(e))
		}
		return out, true
	}
	return nil, false
}

func listVal(l []string) cty.Value {
	if len(l) == 0 {
		return cty.ListValEmpty(cty.String)
	}
	vals := make([]cty.Value, len(l))
	for i, s := range l {
		vals[i] = cty.StringVal(s)
	}
	return cty.ListVal(vals)
}

// password writes a password attribute: an env() reference with SecretsEnv, else the value.
func (c *conv) password(b *hclwrite.Body, attr, pw, path, envName string) {
	if pw == "" {
		return
	}
	if c.opt.SecretsEnv {
		b.SetAttributeRaw(attr, hclwrite.TokensForFunctionCall("env", hclwrite.TokensForValue(cty.StringVal(envName))))
		c.res.SecretEnv = append(c.res.SecretEnv, [2]string{envName, path})
		return
	}
	b.SetAttributeValue(attr, cty.StringVal(pw))
	c.res.Warnings = append(c.res.Warnings,
		fmt.Sprintf("%s is written into the output as it is: keep the file private, or import with --secrets=env", path))
}

// tokensFor writes a YAML value (scalar, list or mapping of scalars) as HCL.
func tokensFor(v any) (hclwrite.Tokens, error) {
	switch v := v.(type) {
	case map[string]any:
		var items []hclwrite.ObjectAttrTokens
		for _, k := range sortedKeys(v) {
			t, err := tokensFor(v[k])
			if err != nil {
				return nil, err
			}
			items = append(items, hclwrite.ObjectAttrTokens{Name: keyTokens(k), Value: t})
		}
		return inlineObject(items), nil
	case []any:
		var elems []hclwrite.Tokens
		for _, e := range v {
			t, err := tokensFor(e)
			if err != nil {
				return nil, err
			}
			elems = append(elems, t)
		}
		return hclwrite.TokensForTuple(elems), nil
	}
	val, err := value(v)
	if err != nil {
		return nil, err
	}
	return hclwrite.TokensForValue(val), nil
}

// inlineObject writes an object on one line: { a = 1, b = "x" }.
func inlineObject(items []hclwrite.ObjectAttrTokens) hclwrite.Tokens {
	toks := hclwrite.Tokens{{Type: hclsyntax.TokenOBrace, Bytes: []byte("{")}}
	for i, it := range items {
		if i > 0 {
			toks = append(toks, &hclwrite.Token{Type: hclsyntax.TokenComma, Bytes: []byte(",")})
		}
		toks = append(toks, it.Name...)
		toks = append(toks, &hclwrite.Token{Type: hclsyntax.TokenEqual, Bytes: []byte("=")})
		toks = append(toks, it.Value...)
	}
	return append(toks, &hclwrite.Token{Type: hclsyntax.TokenCBrace, Bytes: []byte("}")})
}

// keyTokens writes an object key: bare when it is an identifier, quoted otherwise.
func keyTokens(k string) hclwrite.Tokens {
	if hclsyntax.ValidIdentifier(k) {
		return hclwrite.TokensForIdentifier(k)
	}
	return hclwrite.TokensForValue(cty.StringVal(k))
}

// setAny writes attr = v when v converts; else notes it.
func (c *conv) setAny(b *hclwrite.Body, attr string, v any, path string) {
	if !hclsyntax.ValidIdentifier(attr) {
		c.note(path, v, "the name is not an HCL identifier")
		return
	}
	t, err := tokensFor(v)
	if err != nil {
		c.note(path, v, err.Error())
		return
	}
	b.SetAttributeRaw(attr, t)
}
