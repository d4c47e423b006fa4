package config

import (
	"fmt"
	"math"
	"math/big"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"

	"github.com/pgimaged/pgimaged/sdk"
)

// Parse decodes and checks a configuration whose text is src; filename names it in diagnostics
// and is the base for relative paths in file(). The returned Config is never nil (see [Load]).
func Parse(filename string, src []byte) (*Config, hcl.Diagnostics) {
	cfg := &Config{
		Filename: filename,
		Methods:  map[string]*Method{},
		Plugins:  map[string]*PluginPin{},
		Ranges:   map[string]hcl.Range{},
	}
	if len(src) > MaxConfigSize {
		cfg.files = map[string]*hcl.File{}
		return cfg, tooLarge(filename, int64(len(src)))
	}
	if diags := checkNesting(src, filename); diags.HasErrors() {
		cfg.files = map[string]*hcl.File{filename: {Bytes: src}}
		return cfg, diags
	}
	p := hclparse.NewParser()
	f, diags := p.ParseHCL(src, filename)
	cfg.files = p.Files()
	if diags.HasErrors() || f == nil {
		return cfg, diags
	}
	baseDir := filepath.Dir(filename)
	d := &decoder{ctx: evalContext(baseDir), cfg: cfg, baseDir: baseDir}
	d.root(f.Body)
	d.applyDefaults()
	d.check()
	sortDiagnostics(d.diags)
	return cfg, append(diags, d.diags...)
}

var rootSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "scope", Required: true},
		{Name: "name", Required: true},
		{Name: "data_dir", Required: true},
		{Name: "plugin_dir"},
		{Name: "loop_wait"},
		{Name: "ttl"},
		{Name: "tags"},
		{Name: "source"},
		{Name: "log_level"},
	},
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "dcs", LabelNames: []string{"kind"}},
		{Type: "postgresql"},
		{Type: "bootstrap"},
		{Type: "method", LabelNames: []string{"name"}},
		{Type: "plugin", LabelNames: []string{"name"}},
	},
}

var dcsSchemas = map[string]*hcl.BodySchema{
	DCSFile: {Attributes: []hcl.AttributeSchema{{Name: "path"}}},
	DCSEtcd: {Attributes: []hcl.AttributeSchema{
		{Name: "endpoints", Required: true},
		{Name: "username"},
		{Name: "password"},
		{Name: "dial_timeout"},
		{Name: "ca_file"},
		{Name: "cert_file"},
		{Name: "key_file"},
	}},
}

var postgresqlSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "bin_dir"},
		{Name: "listen"},
		{Name: "connect_address"},
		{Name: "parameters"},
		{Name: "pg_hba"},
		{Name: "pg_ctl_timeout"},
		{Name: "create_replica_methods"},
	},
	Blocks: []hcl.BlockHeaderSchema{{Type: "authentication"}},
}

var authenticationSchema = &hcl.BodySchema{
	Blocks: []hcl.BlockHeaderSchema{{Type: "superuser"}, {Type: "replication"}},
}

var credentialsSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "username", Required: true}, {Name: "password"}},
}

var bootstrapSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "method"},
		{Name: "initdb"},
		{Name: "post_bootstrap"},
		{Name: "timeout"},
		{Name: "recovery_timeout"},
	},
}

var methodSchema = func() *hcl.BodySchema {
	s := &hcl.BodySchema{}
	for _, k := range ReservedMethodKeys {
		s.Attributes = append(s.Attributes, hcl.AttributeSchema{Name: k})
	}
	return s
}()

var pluginSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "path"}, {Name: "sha256"}},
}

var (
	labelPattern  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)
	sha256Pattern = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)
	logLevels     = []string{"trace", "debug", "info", "warn", "error", "off"}
)

// decoder collects diagnostics while filling a Config.
type decoder struct {
	ctx     *hcl.EvalContext
	cfg     *Config
	baseDir string // the configuration file's directory: relative paths start there
	diags   hcl.Diagnostics
}

func (d *decoder) add(diags hcl.Diagnostics) {
	d.diags = append(d.diags, diags...)
}

func (d *decoder) errorAt(rng hcl.Range, summary, detail string, args ...any) {
	if len(args) > 0 {
		detail = fmt.Sprintf(detail, args...)
	}
	d.diags = append(d.diags, &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  summary,
		Detail:   detail,
		Subject:  rng.Ptr(),
	})
}

func (d *decoder) record(path string, rng hcl.Range) {
	d.cfg.Ranges[path] = rng
}

func join(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

// eval evaluates an expression; ok is false after errors or for null.
func (d *decoder) eval(expr hcl.Expression) (cty.Value, bool) {
	v, diags := expr.Value(d.ctx)
	d.add(diags)
	if diags.HasErrors() || !v.IsWhollyKnown() {
		return cty.NilVal, false
	}
	v, _ = v.Unmark()
	if v.IsNull() {
		return cty.NilVal, false
	}
	return v, true
}

func (d *decoder) wrongType(rng hcl.Range, name, want string) {
	d.errorAt(rng, "Incorrect attribute value type", "Inappropriate value for attribute %q: %s required.", name, want)
}

// str decodes a string attribute (numbers and bools are converted) and records its range.
func (d *decoder) str(attr *hcl.Attribute, prefix string) (string, bool) {
	d.record(join(prefix, attr.Name), attr.Expr.Range())
	v, ok := d.eval(attr.Expr)
	if !ok {
		return "", false
	}
	return d.asString(v, attr.Expr.Range(), attr.Name)
}

func (d *decoder) asString(v cty.Value, rng hcl.Range, name string) (string, bool) {
	s, err := convert.Convert(v, cty.String)
	if err != nil {
		d.wrongType(rng, name, "string")
		return "", false
	}
	return s.AsString(), true
}

// nonEmpty is str that refuses "".
func (d *decoder) nonEmpty(attr *hcl.Attribute, prefix string) (string, bool) {
	s, ok := d.str(attr, prefix)
	if ok && s == "" {
		d.errorAt(attr.Expr.Range(), "Empty value", "%q must not be empty.", attr.Name)
		return "", false
	}
	return s, ok
}

// boolean decodes a bool; like Patroni it also takes 1 and 0, and the strings PostgreSQL reads
// as booleans.
func (d *decoder) boolean(attr *hcl.Attribute) (bool, bool) {
	v, ok := d.eval(attr.Expr)
	if !ok {
		return false, false
	}
	if b, ok := asBool(v); ok {
		return b, true
	}
	d.wrongType(attr.Expr.Range(), attr.Name, "bool")
	return false, false
}

func asBool(v cty.Value) (bool, bool) {
	switch v.Type() {
	case cty.Bool:
		return v.True(), true
	case cty.Number:
		f := v.AsBigFloat()
		switch {
		case f.Cmp(big.NewFloat(0)) == 0:
			return false, true
		case f.Cmp(big.NewFloat(1)) == 0:
			return true, true
		}
	case cty.String:
		return parseBool(v.AsString())
	}
	return false, false
}

// parseBool reads the spellings PostgreSQL accepts for a boolean setting.
func parseBool(s string) (bool, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "on", "yes", "1":
		return true, true
	case "false", "off", "no", "0":
		return false, true
	}
	return false, false
}

// duration decodes a positive duration written like "10s" and records its range.
func (d *decoder) duration(attr *hcl.Attribute, prefix string) (time.Duration, bool) {
	s, ok := d.str(attr, prefix)
	if !ok {
		return 0, false
	}
	dur, err := time.ParseDuration(s)
	if err != nil {
		d.errorAt(attr.Expr.Range(), "Invalid duration",
			"%s: %q is not a duration; write a number with a unit, such as \"10s\", \"5m\" or \"1h\".", attr.Name, s)
		return 0, false
	}
	if dur <= 0 {
		d.errorAt(attr.Expr.Range(), "Invalid duration", "%s: the duration must be longer than zero.", attr.Name)
		return 0, false
	}
	return dur, true
}

// stringList decodes a list of strings and records the range of each element as path[i].
func (d *decoder) stringList(attr *hcl.Attribute, prefix string) ([]string, bool) {
	path := join(prefix, attr.Name)
	d.record(path, attr.Expr.Range())
	if elems, diags := hcl.ExprList(attr.Expr); !diags.HasErrors() {
		out := make([]string, 0, len(elems))
		ok := true
		for i, e := range elems {
			d.record(fmt.Sprintf("%s[%d]", path, i), e.Range())
			v, diags := e.Value(d.ctx)
			d.add(diags)
			if diags.HasErrors() {
				ok = false
				continue
			}
			v, _ = v.Unmark()
			if v.IsNull() {
				d.wrongType(e.Range(), attr.Name, "list of strings")
				ok = false
				continue
			}
			s, sok := d.asString(v, e.Range(), attr.Name)
			if !sok {
				ok = false
				continue
			}
			out = append(out, s)
		}
		return out, ok
	}
	v, ok := d.eval(attr.Expr)
	if !ok {
		return nil, false
	}
	l, err := convert.Convert(v, cty.List(cty.String))
	if err != nil {
		d.wrongType(attr.Expr.Range(), attr.Name, "list of strings")
		return nil, false
	}
	out := make([]string, 0, l.LengthInt())
	for i, e := range l.AsValueSlice() {
		d.record(fmt.Sprintf("%s[%d]", path, i), attr.Expr.Range())
		if e.IsNull() {
			d.wrongType(attr.Expr.Range(), attr.Name, "list of strings")
			return nil, false
		}
		out = append(out, e.AsString())
	}
	return out, true
}

// item is one name = value pair of an object with where it was written.
type item struct {
	name  string
	value cty.Value
	rng   hcl.Range // the whole pair, for pointing at the option
	vrng  hcl.Range // the value, for pointing at a bad value
}

// pairs decodes an object expression into its name = value pairs in source order. When the
// expression is not written as a literal object the pairs come in name order and all point at
// the expression. ok is false after any error; the pairs decoded without error are returned.
func (d *decoder) pairs(expr hcl.Expression, name string) ([]item, bool) {
	if kvs, diags := hcl.ExprMap(expr); !diags.HasErrors() {
		out := make([]item, 0, len(kvs))
		ok := true
		for _, kv := range kvs {
			key, kok := d.key(kv.Key)
			v, diags := kv.Value.Value(d.ctx)
			d.add(diags)
			if !kok || diags.HasErrors() {
				ok = false
				continue
			}
			v, _ = v.Unmark()
			out = append(out, item{
				name:  key,
				value: v,
				rng:   hcl.RangeBetween(kv.Key.Range(), kv.Value.Range()),
				vrng:  kv.Value.Range(),
			})
		}
		return out, ok
	}
	v, ok := d.eval(expr)
	if !ok {
		return nil, false
	}
	if !v.Type().IsObjectType() && !v.Type().IsMapType() {
		d.wrongType(expr.Range(), name, "map")
		return nil, false
	}
	out := make([]item, 0, v.LengthInt())
	for it := v.ElementIterator(); it.Next(); {
		k, e := it.Element()
		out = append(out, item{name: k.AsString(), value: e, rng: expr.Range(), vrng: expr.Range()})
	}
	return out, true
}

// key evaluates the key of an object constructor.
func (d *decoder) key(expr hcl.Expression) (string, bool) {
	k, diags := expr.Value(d.ctx)
	d.add(diags)
	if diags.HasErrors() {
		return "", false
	}
	k, _ = k.Unmark()
	if k.IsNull() || !k.IsKnown() {
		d.errorAt(expr.Range(), "Invalid key", "A key must be a string.")
		return "", false
	}
	ks, err := convert.Convert(k, cty.String)
	if err != nil {
		d.errorAt(expr.Range(), "Invalid key", "A key must be a string.")
		return "", false
	}
	return ks.AsString(), true
}

// scalarMap decodes a map whose values are strings, numbers or bools, rendered with
// RenderValue; what names an entry in diagnostics ("parameter").
func (d *decoder) scalarMap(attr *hcl.Attribute, prefix, what string) ([]item, map[string]string, bool) {
	d.record(join(prefix, attr.Name), attr.Expr.Range())
	items, ok := d.pairs(attr.Expr, attr.Name)
	if !ok && items == nil {
		return nil, nil, false
	}
	m := make(map[string]string, len(items))
	kept := items[:0]
	for _, it := range items {
		if strings.TrimSpace(it.name) == "" {
			d.errorAt(it.rng, "Invalid "+what+" name", "A %s name must not be empty.", what)
			ok = false
			continue
		}
		s, err := RenderValue(it.value)
		if err != nil {
			d.errorAt(it.vrng, "Invalid "+what+" value", "%s %q: %s.", what, it.name, err)
			ok = false
			continue
		}
		m[it.name] = s
		kept = append(kept, it)
	}
	return kept, m, ok
}

func (d *decoder) root(body hcl.Body) {
	c := d.cfg
	content, diags := body.Content(rootSchema)
	d.add(diags)
	a := content.Attributes

	if attr := a["scope"]; attr != nil {
		c.Scope, _ = d.identity(attr)
	}
	if attr := a["name"]; attr != nil {
		c.Name, _ = d.identity(attr)
	}
	if attr := a["data_dir"]; attr != nil {
		c.DataDir, _ = d.nonEmpty(attr, "")
	}
	if attr := a["plugin_dir"]; attr != nil {
		c.PluginDir, _ = d.str(attr, "")
	}
	if attr := a["loop_wait"]; attr != nil {
		c.LoopWait, _ = d.duration(attr, "")
	}
	if attr := a["ttl"]; attr != nil {
		c.TTL, _ = d.duration(attr, "")
	}
	if attr := a["tags"]; attr != nil {
		d.record("tags", attr.Expr.Range())
		if v, ok := d.eval(attr.Expr); ok {
			if v.Type().IsObjectType() || v.Type().IsMapType() {
				if tags, err := toGo(v); err != nil {
					d.errorAt(attr.Expr.Range(), "Invalid tag value", "tags: %s.", err)
				} else {
					c.Tags, _ = tags.(map[string]any)
				}
			} else {
				d.wrongType(attr.Expr.Range(), "tags", "map")
			}
		}
	}
	if attr := a["source"]; attr != nil {
		if s, ok := d.str(attr, ""); ok && d.checkSource(s, attr.Expr.Range()) {
			c.Source = s
		}
	}
	if attr := a["log_level"]; attr != nil {
		if s, ok := d.str(attr, ""); ok {
			l := strings.ToLower(s)
			if slices.Contains(logLevels, l) {
				c.LogLevel = l
			} else {
				d.errorAt(attr.Expr.Range(), "Invalid log level",
					"log_level %q is not one of %s.", s, strings.Join(logLevels, ", "))
			}
		}
	}

	var dcsBlock, pgBlock, bootstrapBlock *hcl.Block
	for _, b := range content.Blocks {
		switch b.Type {
		case "dcs":
			if dcsBlock != nil {
				d.duplicateBlock(b, dcsBlock, "Only one dcs block is allowed.")
				continue
			}
			dcsBlock = b
			d.dcs(b)
		case "postgresql":
			if pgBlock != nil {
				d.duplicateBlock(b, pgBlock, "Only one postgresql block is allowed.")
				continue
			}
			pgBlock = b
			d.postgresql(b)
		case "bootstrap":
			if bootstrapBlock != nil {
				d.duplicateBlock(b, bootstrapBlock, "Only one bootstrap block is allowed.")
				continue
			}
			bootstrapBlock = b
			d.bootstrap(b)
		case "method":
			d.method(b)
		case "plugin":
			d.plugin(b)
		}
	}
}

func (d *decoder) duplicateBlock(b, first *hcl.Block, detail string) {
	what := b.Type
	if len(b.Labels) > 0 && (b.Type == "method" || b.Type == "plugin") {
		what = fmt.Sprintf("%s %q", b.Type, b.Labels[0])
	}
	d.errorAt(b.DefRange, "Duplicate "+what+" block",
		"%s The first is at %s.", detail, first.DefRange.String())
}

// identity decodes scope or name: they become parts of DCS keys.
func (d *decoder) identity(attr *hcl.Attribute) (string, bool) {
	s, ok := d.nonEmpty(attr, "")
	if !ok {
		return "", false
	}
	if strings.ContainsAny(s, "/ \t\r\n") || strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		d.errorAt(attr.Expr.Range(), "Invalid "+attr.Name,
			"%s %q is part of DCS keys and cannot contain '/', spaces or control characters.", attr.Name, s)
		return "", false
	}
	return s, true
}

var keywordPassword = regexp.MustCompile(`(?i)(^|\s)password\s*=`)

// checkSource refuses a source connection string that carries a password, so that it is
// neither kept nor printed.
func (d *decoder) checkSource(s string, rng hcl.Range) bool {
	if s == "" {
		d.errorAt(rng, "Empty value", "\"source\" must not be empty.")
		return false
	}
	if hasPassword(s) {
		d.errorAt(rng, "Password in source",
			"source must not carry a password: give it in postgresql.authentication.replication, which pgimaged passes through a pgpass file.")
		return false
	}
	return true
}

func hasPassword(s string) bool {
	lower := strings.ToLower(s)
	if strings.HasPrefix(lower, "postgres://") || strings.HasPrefix(lower, "postgresql://") {
		rest := s[strings.Index(s, "://")+3:]
		if end := strings.IndexAny(rest, "/?#"); end >= 0 {
			if q := strings.Index(rest[end:], "?"); q >= 0 && strings.Contains(strings.ToLower(rest[end+q:]), "password=") {
				return true
			}
			rest = rest[:end]
		}
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			return strings.Contains(rest[:at], ":")
		}
		return false
	}
	return keywordPassword.MatchString(s)
}

func (d *decoder) dcs(b *hcl.Block) {
	c := d.cfg
	kind := b.Labels[0]
	d.record("dcs", b.DefRange)
	schema, ok := dcsSchemas[kind]
	if !ok {
		d.errorAt(b.LabelRanges[0], "Unsupported DCS kind",
			"dcs %q: the kinds are %q and %q.", kind, DCSFile, DCSEtcd)
		return
	}
	c.DCS.Kind = kind
	c.DCS.DefRange = b.DefRange
	content, diags := b.Body.Content(schema)
	d.add(diags)
	a := content.Attributes
	if attr := a["path"]; attr != nil {
		c.DCS.Path, _ = d.nonEmpty(attr, "dcs")
	}
	if attr := a["endpoints"]; attr != nil {
		if eps, ok := d.stringList(attr, "dcs"); ok {
			if len(eps) == 0 {
				d.errorAt(attr.Expr.Range(), "Empty value", "endpoints must name at least one etcd endpoint.")
			}
			for i, ep := range eps {
				if strings.TrimSpace(ep) == "" {
					d.errorAt(d.cfg.RangeOf(fmt.Sprintf("dcs.endpoints[%d]", i)), "Empty value", "An etcd endpoint must not be empty.")
				}
			}
			c.DCS.Endpoints = eps
		}
	}
	if attr := a["username"]; attr != nil {
		c.DCS.Username, _ = d.str(attr, "dcs")
	}
	if attr := a["password"]; attr != nil {
		c.DCS.Password, _ = d.str(attr, "dcs")
	}
	if attr := a["dial_timeout"]; attr != nil {
		c.DCS.DialTimeout, _ = d.duration(attr, "dcs")
	}
	if attr := a["ca_file"]; attr != nil {
		c.DCS.CAFile, _ = d.readableFile(attr, "dcs")
	}
	if attr := a["cert_file"]; attr != nil {
		c.DCS.CertFile, _ = d.readableFile(attr, "dcs")
	}
	if attr := a["key_file"]; attr != nil {
		c.DCS.KeyFile, _ = d.readableFile(attr, "dcs")
	}
	for _, pair := range [][2]string{{"cert_file", "key_file"}, {"key_file", "cert_file"}} {
		if attr := a[pair[0]]; attr != nil && a[pair[1]] == nil {
			d.errorAt(attr.Range, "Incomplete client certificate",
				"%s is set without %s: a client certificate and its private key go together.", pair[0], pair[1])
		}
	}
	tlsSet := a["ca_file"] != nil || a["cert_file"] != nil || a["key_file"] != nil
	d.endpointSchemes(c.DCS.Endpoints, tlsSet)
}

// endpointSchemes refuses http:// etcd endpoints when TLS is in use: the etcd client turns TLS
// off for an http:// endpoint, even with TLS files, and connects to every endpoint the way the
// first asks for.
func (d *decoder) endpointSchemes(endpoints []string, tlsSet bool) {
	https := ""
	for _, ep := range endpoints {
		if endpointScheme(ep) == "https" {
			https = ep
			break
		}
	}
	for i, ep := range endpoints {
		if endpointScheme(ep) != "http" {
			continue
		}
		rng := d.cfg.RangeOf(fmt.Sprintf("dcs.endpoints[%d]", i))
		switch {
		case tlsSet:
			d.errorAt(rng, "Plain-text endpoint",
				"Endpoint %q is plain HTTP, so the etcd client would not use ca_file, cert_file and key_file: write https:// or host:port.", ep)
		case https != "":
			d.errorAt(rng, "Mixed endpoint schemes",
				"Endpoint %q is plain HTTP and %q is HTTPS: the etcd client connects to every endpoint the same way, so give them one scheme.", ep, https)
		}
	}
}

// endpointScheme is the lower-case scheme of an etcd endpoint, "" for host:port.
func endpointScheme(ep string) string {
	scheme, _, found := strings.Cut(ep, "://")
	if !found {
		return ""
	}
	return strings.ToLower(scheme)
}

// readableFile decodes a path to a file that must exist and be readable. A relative path is taken
// relative to the configuration file's directory, as in file(); the absolute path is returned.
func (d *decoder) readableFile(attr *hcl.Attribute, prefix string) (string, bool) {
	p, ok := d.nonEmpty(attr, prefix)
	if !ok {
		return "", false
	}
	full := p
	if !filepath.IsAbs(full) {
		full = filepath.Join(d.baseDir, full)
		if abs, err := filepath.Abs(full); err == nil {
			full = abs
		}
	}
	if err := checkReadable(full); err != nil {
		named := fmt.Sprintf("%q", p)
		if full != p {
			named = fmt.Sprintf("%q (%q)", p, full)
		}
		d.errorAt(attr.Expr.Range(), "Unreadable file", "%s: cannot read %s: %s.", attr.Name, named, err)
		return "", false
	}
	return full, true
}

func (d *decoder) postgresql(b *hcl.Block) {
	pg := &d.cfg.PostgreSQL
	d.record("postgresql", b.DefRange)
	content, diags := b.Body.Content(postgresqlSchema)
	d.add(diags)
	a := content.Attributes
	if attr := a["bin_dir"]; attr != nil {
		pg.BinDir, _ = d.str(attr, "postgresql")
	}
	if attr := a["listen"]; attr != nil {
		pg.Listen, _ = d.address(attr)
	}
	if attr := a["connect_address"]; attr != nil {
		pg.ConnectAddress, _ = d.address(attr)
	}
	if attr := a["parameters"]; attr != nil {
		_, pg.Parameters, _ = d.scalarMap(attr, "postgresql", "parameter")
	}
	if attr := a["pg_hba"]; attr != nil {
		pg.PGHBA, _ = d.stringList(attr, "postgresql")
	}
	if attr := a["pg_ctl_timeout"]; attr != nil {
		pg.PGCtlTimeout, _ = d.duration(attr, "postgresql")
	}
	if attr := a["create_replica_methods"]; attr != nil {
		pg.CreateReplicaMethods, _ = d.stringList(attr, "postgresql")
	}
	var auth *hcl.Block
	for _, blk := range content.Blocks {
		if auth != nil {
			d.duplicateBlock(blk, auth, "Only one authentication block is allowed.")
			continue
		}
		auth = blk
		d.authentication(blk)
	}
}

// address decodes a host:port setting.
func (d *decoder) address(attr *hcl.Attribute) (string, bool) {
	s, ok := d.str(attr, "postgresql")
	if !ok {
		return "", false
	}
	if !validAddress(s) {
		d.errorAt(attr.Expr.Range(), "Invalid address",
			"%s %q must be host:port, such as \"127.0.0.1:5432\".", attr.Name, s)
		return "", false
	}
	return s, true
}

func validAddress(s string) bool {
	i := strings.LastIndex(s, ":")
	if i <= 0 {
		return false
	}
	port := s[i+1:]
	if port == "" || len(port) > 5 {
		return false
	}
	n := 0
	for _, r := range port {
		if r < '0' || r > '9' {
			return false
		}
		n = n*10 + int(r-'0')
	}
	return n >= 1 && n <= 65535 && strings.TrimSpace(s[:i]) != ""
}

func (d *decoder) authentication(b *hcl.Block) {
	d.record("postgresql.authentication", b.DefRange)
	content, diags := b.Body.Content(authenticationSchema)
	d.add(diags)
	seen := map[string]*hcl.Block{}
	for _, blk := range content.Blocks {
		if first := seen[blk.Type]; first != nil {
			d.duplicateBlock(blk, first, fmt.Sprintf("Only one %s block is allowed.", blk.Type))
			continue
		}
		seen[blk.Type] = blk
		target := &d.cfg.PostgreSQL.Superuser
		if blk.Type == "replication" {
			target = &d.cfg.PostgreSQL.Replication
		}
		prefix := "postgresql.authentication." + blk.Type
		d.record(prefix, blk.DefRange)
		cc, diags := blk.Body.Content(credentialsSchema)
		d.add(diags)
		if attr := cc.Attributes["username"]; attr != nil {
			target.Username, _ = d.nonEmpty(attr, prefix)
		}
		if attr := cc.Attributes["password"]; attr != nil {
			target.Password, _ = d.str(attr, prefix)
		}
	}
}

func (d *decoder) bootstrap(b *hcl.Block) {
	bs := &d.cfg.Bootstrap
	d.record("bootstrap", b.DefRange)
	content, diags := b.Body.Content(bootstrapSchema)
	d.add(diags)
	a := content.Attributes
	if attr := a["method"]; attr != nil {
		bs.Method, _ = d.nonEmpty(attr, "bootstrap")
	}
	if attr := a["initdb"]; attr != nil {
		d.record("bootstrap.initdb", attr.Expr.Range())
		items := d.initdbOptions(attr)
		for _, it := range items {
			bs.Initdb = append(bs.Initdb, it.opt)
			bs.InitdbRanges = append(bs.InitdbRanges, it.rng)
		}
		d.add(RefusedOption(bs.Initdb, bs.InitdbRanges, InitdbRefused))
	}
	if attr := a["post_bootstrap"]; attr != nil {
		bs.PostBootstrap, _ = d.nonEmpty(attr, "bootstrap")
	}
	if attr := a["timeout"]; attr != nil {
		bs.Timeout, _ = d.duration(attr, "bootstrap")
	}
	if attr := a["recovery_timeout"]; attr != nil {
		bs.RecoveryTimeout, _ = d.duration(attr, "bootstrap")
	}
}

func (d *decoder) method(b *hcl.Block) {
	label := b.Labels[0]
	if !labelPattern.MatchString(label) {
		d.errorAt(b.LabelRanges[0], "Invalid method name",
			"Method name %q must start with a letter or digit and hold only letters, digits, '_', '-' and '.'.", label)
		return
	}
	if first, dup := d.cfg.Methods[label]; dup {
		d.errorAt(b.DefRange, fmt.Sprintf("Duplicate method %q block", label),
			"Each method is defined once. The first is at %s.", first.DefRange.String())
		return
	}
	m := &Method{Label: label, DefRange: b.DefRange, KeyRanges: map[string]hcl.Range{}}
	d.cfg.Methods[label] = m
	prefix := "method." + label
	d.record(prefix, b.DefRange)

	content, remain, diags := b.Body.PartialContent(methodSchema)
	d.add(diags)
	a := content.Attributes
	for name, attr := range a {
		m.KeyRanges[name] = attr.Range
	}
	if attr := a["command"]; attr != nil {
		m.Command, _ = d.nonEmpty(attr, prefix)
	}
	if attr := a["plugin"]; attr != nil {
		if s, ok := d.nonEmpty(attr, prefix); ok {
			if labelPattern.MatchString(s) {
				m.Plugin = s
			} else {
				d.errorAt(attr.Expr.Range(), "Invalid plugin name",
					"Plugin name %q must start with a letter or digit and hold only letters, digits, '_', '-' and '.'.", s)
			}
		}
	}
	if attr := a["no_params"]; attr != nil {
		m.NoParams, _ = d.boolean(attr)
	}
	if attr := a["keep_data"]; attr != nil {
		m.KeepData, _ = d.boolean(attr)
	}
	if attr := a["keep_existing_recovery_conf"]; attr != nil {
		m.KeepExistingRecoveryConf, _ = d.boolean(attr)
	}
	noMaster, nmOK := false, false
	if attr := a["no_master"]; attr != nil {
		noMaster, nmOK = d.boolean(attr)
	}
	if attr := a["no_leader"]; attr != nil {
		if noLeader, ok := d.boolean(attr); ok {
			if nmOK && noLeader != noMaster {
				d.errorAt(attr.Expr.Range(), "Conflicting settings",
					"no_leader is an alias of no_master, and the two are set differently (no_master at %s).",
					a["no_master"].Range.String())
			}
			noMaster = noMaster || noLeader
		}
	}
	m.NoMaster = noMaster
	if attr := a["attempts"]; attr != nil {
		d.record(join(prefix, attr.Name), attr.Expr.Range())
		m.Attempts, _ = d.attempts(attr)
	}
	if attr := a["retry_wait"]; attr != nil {
		m.RetryWait, _ = d.duration(attr, prefix)
	}
	if attr := a["timeout"]; attr != nil {
		m.Timeout, _ = d.duration(attr, prefix)
	}
	if attr := a["recovery_conf"]; attr != nil {
		d.recoveryConf(m, attr, prefix)
	}

	var items []optItem
	rest, diags := remain.JustAttributes()
	d.add(diags)
	for _, attr := range rest {
		if it, ok := d.mapOption(attr); ok {
			items = append(items, it)
		}
	}
	if attr := a["options"]; attr != nil {
		for _, it := range d.listOptions(attr.Expr, "options", false) {
			if slices.Contains(ReservedMethodKeys, it.opt.Name) {
				d.errorAt(it.rng, "Reserved option name",
					"%q is read by pgimaged itself: set it as an attribute of the method block, not in options.", it.opt.Name)
				continue
			}
			items = append(items, it)
		}
	}
	slices.SortStableFunc(items, func(x, y optItem) int { return x.rng.Start.Byte - y.rng.Start.Byte })
	for _, it := range items {
		m.Options = append(m.Options, it.opt)
		m.OptionRanges = append(m.OptionRanges, it.rng)
	}
}

func (d *decoder) attempts(attr *hcl.Attribute) (int, bool) {
	v, ok := d.eval(attr.Expr)
	if !ok {
		return 0, false
	}
	n, err := convert.Convert(v, cty.Number)
	if err != nil {
		d.wrongType(attr.Expr.Range(), attr.Name, "number")
		return 0, false
	}
	f := n.AsBigFloat()
	i, acc := f.Int64()
	if !f.IsInt() || acc != big.Exact || i < 1 || i > 1_000_000 {
		d.errorAt(attr.Expr.Range(), "Invalid attempts", "attempts must be a whole number of at least 1.")
		return 0, false
	}
	return int(i), true
}

// recoveryConf decodes recovery_conf; standby_mode moves out of the settings into
// m.StandbyMode.
func (d *decoder) recoveryConf(m *Method, attr *hcl.Attribute, prefix string) {
	items, settings, ok := d.scalarMap(attr, prefix, "recovery setting")
	if !ok && settings == nil {
		return
	}
	for _, it := range items {
		if it.name != "standby_mode" {
			continue
		}
		b, bok := parseBool(settings[it.name])
		if !bok {
			d.errorAt(it.vrng, "Invalid recovery setting value",
				"standby_mode must be a boolean (true, false, on, off).")
		}
		m.StandbyMode = b
		delete(settings, it.name)
	}
	m.RecoveryConf = settings
}

// optItem is a decoded option with where it was written.
type optItem struct {
	opt sdk.Option
	rng hcl.Range
}

// mapOption decodes an attribute of a method block that is an option for the plugin.
func (d *decoder) mapOption(attr *hcl.Attribute) (optItem, bool) {
	if err := sdk.CheckName(attr.Name); err != nil {
		d.errorAt(attr.NameRange, "Invalid option name", "%s.", err)
		return optItem{}, false
	}
	v, diags := attr.Expr.Value(d.ctx)
	d.add(diags)
	if diags.HasErrors() {
		return optItem{}, false
	}
	s, err := RenderValue(v)
	if err != nil {
		d.errorAt(attr.Expr.Range(), "Invalid option value", "option %q: %s.", attr.Name, err)
		return optItem{}, false
	}
	return optItem{opt: sdk.Option{Name: attr.Name, Value: s}, rng: attr.Range}, true
}

// listOptions decodes the list form: a string element is a flag, an object element gives
// name = value options in source order. With boolFlags a true value makes a flag and a false
// one drops the option (initdb); otherwise booleans render as "true" and "false".
func (d *decoder) listOptions(expr hcl.Expression, name string, boolFlags bool) []optItem {
	elems, diags := hcl.ExprList(expr)
	if diags.HasErrors() {
		v, ok := d.eval(expr)
		if !ok {
			return nil
		}
		if !v.Type().IsTupleType() && !v.Type().IsListType() {
			d.wrongType(expr.Range(), name, "list")
			return nil
		}
		var out []optItem
		for _, e := range v.AsValueSlice() {
			out = append(out, d.listElement(e, nil, expr.Range(), boolFlags)...)
		}
		return out
	}
	var out []optItem
	for _, e := range elems {
		v, diags := e.Value(d.ctx)
		d.add(diags)
		if diags.HasErrors() {
			continue
		}
		out = append(out, d.listElement(v, e, e.Range(), boolFlags)...)
	}
	return out
}

// listElement decodes one element of a list-form option list; expr is nil when the element
// is not written literally, and rng is where it was written.
func (d *decoder) listElement(v cty.Value, expr hcl.Expression, rng hcl.Range, boolFlags bool) []optItem {
	v, _ = v.Unmark()
	switch {
	case !v.IsNull() && v.Type() == cty.String:
		s := v.AsString()
		if err := sdk.CheckName(s); err != nil {
			detail := err.Error() + "."
			if k, val, found := strings.Cut(s, "="); found && sdk.CheckName(k) == nil {
				detail += fmt.Sprintf(" For an option with a value write an object: { %s = %q }.", k, val)
			}
			d.errorAt(rng, "Invalid option name", "%s", detail)
			return nil
		}
		return []optItem{{opt: sdk.Option{Name: s, Flag: true}, rng: rng}}
	case !v.IsNull() && (v.Type().IsObjectType() || v.Type().IsMapType()):
		var items []item
		if expr != nil {
			var ok bool
			items, ok = d.pairs(expr, "options")
			if !ok && items == nil {
				return nil
			}
		} else {
			for it := v.ElementIterator(); it.Next(); {
				k, e := it.Element()
				items = append(items, item{name: k.AsString(), value: e, rng: rng, vrng: rng})
			}
		}
		return d.optionItems(items, boolFlags)
	}
	d.errorAt(rng, "Invalid option",
		"An element of an option list must be a flag name (a string) or an object of name = value options.")
	return nil
}

func (d *decoder) optionItems(items []item, boolFlags bool) []optItem {
	var out []optItem
	for _, it := range items {
		if err := sdk.CheckName(it.name); err != nil {
			d.errorAt(it.rng, "Invalid option name", "%s.", err)
			continue
		}
		if boolFlags {
			if v, _ := it.value.Unmark(); !v.IsNull() && v.IsKnown() && v.Type() == cty.Bool {
				if v.True() {
					out = append(out, optItem{opt: sdk.Option{Name: it.name, Flag: true}, rng: it.rng})
				}
				continue
			}
		}
		s, err := RenderValue(it.value)
		if err != nil {
			d.errorAt(it.vrng, "Invalid option value", "option %q: %s.", it.name, err)
			continue
		}
		out = append(out, optItem{opt: sdk.Option{Name: it.name, Value: s}, rng: it.rng})
	}
	return out
}

// initdbOptions decodes bootstrap.initdb in map or list form.
func (d *decoder) initdbOptions(attr *hcl.Attribute) []optItem {
	v, ok := d.eval(attr.Expr)
	if !ok {
		return nil
	}
	switch {
	case v.Type().IsObjectType() || v.Type().IsMapType():
		items, ok := d.pairs(attr.Expr, attr.Name)
		if !ok && items == nil {
			return nil
		}
		return d.optionItems(items, true)
	case v.Type().IsTupleType() || v.Type().IsListType():
		return d.listOptions(attr.Expr, attr.Name, true)
	}
	d.wrongType(attr.Expr.Range(), attr.Name, "list or map")
	return nil
}

func (d *decoder) plugin(b *hcl.Block) {
	name := b.Labels[0]
	if !labelPattern.MatchString(name) {
		d.errorAt(b.LabelRanges[0], "Invalid plugin name",
			"Plugin name %q must start with a letter or digit and hold only letters, digits, '_', '-' and '.'.", name)
		return
	}
	if first, dup := d.cfg.Plugins[name]; dup {
		d.errorAt(b.DefRange, fmt.Sprintf("Duplicate plugin %q block", name),
			"Each plugin is pinned once. The first is at %s.", first.DefRange.String())
		return
	}
	pin := &PluginPin{Name: name, DefRange: b.DefRange}
	d.cfg.Plugins[name] = pin
	prefix := "plugin." + name
	d.record(prefix, b.DefRange)
	content, diags := b.Body.Content(pluginSchema)
	d.add(diags)
	if attr := content.Attributes["path"]; attr != nil {
		pin.Path, _ = d.nonEmpty(attr, prefix)
	}
	if attr := content.Attributes["sha256"]; attr != nil {
		if s, ok := d.str(attr, prefix); ok {
			if sha256Pattern.MatchString(s) {
				pin.SHA256 = strings.ToLower(s)
			} else {
				d.errorAt(attr.Expr.Range(), "Invalid sha256",
					"sha256 must be 64 hexadecimal digits (the output of sha256sum); this one has %d characters.", utf8.RuneCountInString(s))
			}
		}
	}
}

func (d *decoder) applyDefaults() {
	c := d.cfg
	if c.LoopWait == 0 {
		c.LoopWait = DefaultLoopWait
	}
	if c.TTL == 0 {
		c.TTL = DefaultTTL
	}
	if c.LogLevel == "" {
		c.LogLevel = DefaultLogLevel
	}
	if c.PostgreSQL.ConnectAddress == "" {
		c.PostgreSQL.ConnectAddress = c.PostgreSQL.Listen
	}
	if c.PostgreSQL.PGCtlTimeout == 0 {
		c.PostgreSQL.PGCtlTimeout = DefaultPGCtlTimeout
	}
	if c.Bootstrap.Method == "" {
		c.Bootstrap.Method = DefaultBootstrap
	}
}

// check runs the checks that look at more than one setting.
func (d *decoder) check() {
	c := d.cfg
	if c.TTL <= c.LoopWait {
		rng := c.RangeOf("ttl")
		if _, ok := c.Ranges["ttl"]; !ok {
			rng = c.RangeOf("loop_wait")
		}
		d.errorAt(rng, "TTL too short",
			"ttl (%s) must be longer than loop_wait (%s): leases would expire between two refreshes.", c.TTL, c.LoopWait)
	}

	pg := &c.PostgreSQL
	if len(pg.CreateReplicaMethods) == 0 {
		pg.CreateReplicaMethods = []string{DefaultReplicaMethod}
	}
	seen := map[string]int{}
	for i, name := range pg.CreateReplicaMethods {
		path := fmt.Sprintf("postgresql.create_replica_methods[%d]", i)
		if j, dup := seen[name]; dup {
			d.errorAt(c.RangeOf(path), "Duplicate replica method",
				"create_replica_methods names %q twice (also at position %d).", name, j+1)
			continue
		}
		seen[name] = i
		if _, ok := c.Methods[name]; ok || slices.Contains(ReplicaBuiltins, name) {
			continue
		}
		d.errorAt(c.RangeOf(path), "Undefined method",
			"create_replica_methods names %q, but there is no method %q block; the methods that work without one are %s.%s",
			name, name, strings.Join(ReplicaBuiltins, ", "), d.suggest(name, ReplicaBuiltins))
	}

	if name := c.Bootstrap.Method; name != "" {
		if _, ok := c.Methods[name]; !ok && !slices.Contains(BootstrapBuiltins, name) {
			d.errorAt(c.RangeOf("bootstrap.method"), "Undefined method",
				"bootstrap.method names %q, but there is no method %q block; the methods that work without one are %s.%s",
				name, name, strings.Join(BootstrapBuiltins, ", "), d.suggest(name, BootstrapBuiltins))
		}
	}
}

// toGo turns a cty value into plain Go values: string, int64 or float64, bool, []any,
// map[string]any, or nil. A number that does not fit a float64 is ErrNumberRange.
func toGo(v cty.Value) (any, error) {
	v, _ = v.Unmark()
	if v.IsNull() || !v.IsKnown() {
		return nil, nil
	}
	t := v.Type()
	switch {
	case t == cty.String:
		return v.AsString(), nil
	case t == cty.Bool:
		return v.True(), nil
	case t == cty.Number:
		f := v.AsBigFloat()
		if i, acc := f.Int64(); acc == big.Exact {
			return i, nil
		}
		x, _ := f.Float64()
		if math.IsInf(x, 0) || (x == 0 && f.Sign() != 0) {
			return nil, ErrNumberRange
		}
		return x, nil
	case t.IsObjectType() || t.IsMapType():
		m := make(map[string]any, v.LengthInt())
		for it := v.ElementIterator(); it.Next(); {
			k, e := it.Element()
			g, err := toGo(e)
			if err != nil {
				return nil, fmt.Errorf("%q: %w", k.AsString(), err)
			}
			m[k.AsString()] = g
		}
		return m, nil
	case t.IsTupleType() || t.IsListType() || t.IsSetType():
		s := make([]any, 0, v.LengthInt())
		for it := v.ElementIterator(); it.Next(); {
			_, e := it.Element()
			g, err := toGo(e)
			if err != nil {
				return nil, err
			}
			s = append(s, g)
		}
		return s, nil
	}
	return nil, nil
}

// suggest proposes the configured or built-in method name closest to a misspelt one.
func (d *decoder) suggest(name string, builtins []string) string {
	best, bestDist := "", 3
	candidates := slices.Clone(builtins)
	for label := range d.cfg.Methods {
		candidates = append(candidates, label)
	}
	slices.Sort(candidates)
	for _, c := range candidates {
		if dist := editDistance(name, c); dist < bestDist {
			best, bestDist = c, dist
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" Did you mean %q?", best)
}

// editDistance is the Levenshtein distance between a and b, counted in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// sortDiagnostics orders diagnostics by where they point, so that they read top to bottom;
// those without a place come first.
func sortDiagnostics(diags hcl.Diagnostics) {
	sort.SliceStable(diags, func(i, j int) bool {
		a, b := diags[i].Subject, diags[j].Subject
		switch {
		case a == nil || b == nil:
			return a == nil && b != nil
		case a.Filename != b.Filename:
			return a.Filename < b.Filename
		}
		return a.Start.Byte < b.Start.Byte
	})
}
