package config

import (
	"fmt"
	"maps"
	"math/big"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"

	"github.com/pgimaged/pgimaged/core/dcs"
	"github.com/pgimaged/pgimaged/core/pg"
	"github.com/pgimaged/pgimaged/sdk"
)

// The schema, decoded by gohcl. Attributes are kept as expressions: gohcl checks names,
// required attributes and blocks; the decoder below evaluates each value once, with
// pgimaged's rules (booleans in PostgreSQL's spellings, durations, paths) and diagnostics.
type (
	fileSchema struct {
		Scope      hcl.Expression    `hcl:"scope"`
		Name       hcl.Expression    `hcl:"name"`
		DataDir    hcl.Expression    `hcl:"data_dir"`
		PluginDir  hcl.Expression    `hcl:"plugin_dir,optional"`
		LoopWait   hcl.Expression    `hcl:"loop_wait,optional"`
		TTL        hcl.Expression    `hcl:"ttl,optional"`
		Tags       hcl.Expression    `hcl:"tags,optional"`
		Source     hcl.Expression    `hcl:"source,optional"`
		LogLevel   hcl.Expression    `hcl:"log_level,optional"`
		DCS        *dcsSchema        `hcl:"dcs,block"`
		PostgreSQL *postgresqlSchema `hcl:"postgresql,block"`
		Bootstrap  *bootstrapSchema  `hcl:"bootstrap,block"`
		Methods    []*methodSchema   `hcl:"method,block"`
		Plugins    []*pluginSchema   `hcl:"plugin,block"`
	}
	dcsSchema struct {
		Kind      string    `hcl:"kind,label"`
		KindRange hcl.Range `hcl:"kind,label_range"`
		DefRange  hcl.Range `hcl:",def_range"`
		Body      hcl.Body  `hcl:",remain"` // decoded as fileDCSSchema or etcdSchema by Kind
	}
	fileDCSSchema struct {
		Path hcl.Expression `hcl:"path,optional"`
	}
	etcdSchema struct {
		Endpoints   hcl.Expression `hcl:"endpoints"`
		Username    hcl.Expression `hcl:"username,optional"`
		Password    hcl.Expression `hcl:"password,optional"`
		DialTimeout hcl.Expression `hcl:"dial_timeout,optional"`
		CAFile      hcl.Expression `hcl:"ca_file,optional"`
		CertFile    hcl.Expression `hcl:"cert_file,optional"`
		KeyFile     hcl.Expression `hcl:"key_file,optional"`

		CertFileRange hcl.Range `hcl:"cert_file,attr_range"`
		KeyFileRange  hcl.Range `hcl:"key_file,attr_range"`
	}
	postgresqlSchema struct {
		BinDir               hcl.Expression        `hcl:"bin_dir,optional"`
		Listen               hcl.Expression        `hcl:"listen,optional"`
		ConnectAddress       hcl.Expression        `hcl:"connect_address,optional"`
		Parameters           hcl.Expression        `hcl:"parameters,optional"`
		PGHBA                hcl.Expression        `hcl:"pg_hba,optional"`
		PGCtlTimeout         hcl.Expression        `hcl:"pg_ctl_timeout,optional"`
		CreateReplicaMethods hcl.Expression        `hcl:"create_replica_methods,optional"`
		Authentication       *authenticationSchema `hcl:"authentication,block"`
	}
	authenticationSchema struct {
		Superuser   *credentialsSchema `hcl:"superuser,block"`
		Replication *credentialsSchema `hcl:"replication,block"`
	}
	credentialsSchema struct {
		Body     hcl.Body       `hcl:",body"`
		Username hcl.Expression `hcl:"username"`
		Password hcl.Expression `hcl:"password,optional"`
	}
	bootstrapSchema struct {
		Method          hcl.Expression `hcl:"method,optional"`
		Initdb          hcl.Expression `hcl:"initdb,optional"`
		PostBootstrap   hcl.Expression `hcl:"post_bootstrap,optional"`
		Timeout         hcl.Expression `hcl:"timeout,optional"`
		RecoveryTimeout hcl.Expression `hcl:"recovery_timeout,optional"`
	}
	methodSchema struct {
		Label                    string         `hcl:"name,label"`
		LabelRange               hcl.Range      `hcl:"name,label_range"`
		DefRange                 hcl.Range      `hcl:",def_range"`
		Command                  hcl.Expression `hcl:"command,optional"`
		Plugin                   hcl.Expression `hcl:"plugin,optional"`
		NoParams                 hcl.Expression `hcl:"no_params,optional"`
		NoMaster                 hcl.Expression `hcl:"no_master,optional"`
		NoLeader                 hcl.Expression `hcl:"no_leader,optional"`
		KeepData                 hcl.Expression `hcl:"keep_data,optional"`
		Attempts                 hcl.Expression `hcl:"attempts,optional"`
		RetryWait                hcl.Expression `hcl:"retry_wait,optional"`
		Timeout                  hcl.Expression `hcl:"timeout,optional"`
		RecoveryConf             hcl.Expression `hcl:"recovery_conf,optional"`
		KeepExistingRecoveryConf hcl.Expression `hcl:"keep_existing_recovery_conf,optional"`
		Options                  hcl.Expression `hcl:"options,optional"`
		Rest                     hcl.Body       `hcl:",remain"` // the plugin's options
	}
	pluginSchema struct {
		Name      string         `hcl:"name,label"`
		NameRange hcl.Range      `hcl:"name,label_range"`
		DefRange  hcl.Range      `hcl:",def_range"`
		Path      hcl.Expression `hcl:"path,optional"`
		SHA256    hcl.Expression `hcl:"sha256,optional"`
	}
)

// ReservedMethodKeys are the attributes of a method block that pgimaged reads itself (the
// attributes of its schema). They are never handed to a plugin as options.
var ReservedMethodKeys = func() []string {
	s, _ := gohcl.ImpliedBodySchema(methodSchema{})
	keys := make([]string, 0, len(s.Attributes))
	for _, a := range s.Attributes {
		keys = append(keys, a.Name)
	}
	return keys
}()

// Parse decodes and checks a configuration whose text is src; filename names it in diagnostics
// and is the base for relative paths. The returned Config is never nil (see [Load]).
func Parse(filename string, src []byte) (*Config, hcl.Diagnostics) {
	cfg := &Config{
		Filename: filename,
		Methods:  map[string]*Method{},
		Plugins:  map[string]*PluginPin{},
		Ranges:   map[string]hcl.Range{},
		files:    map[string]*hcl.File{filename: {Bytes: src}},
	}
	if len(src) > MaxConfigSize {
		cfg.files = map[string]*hcl.File{}
		return cfg, tooLarge(filename, int64(len(src)))
	}
	if diags := checkNesting(src, filename); diags.HasErrors() {
		return cfg, diags
	}
	f, diags := hclsyntax.ParseConfig(src, filename, hcl.InitialPos)
	if f != nil {
		cfg.files[filename] = f
	}
	if diags.HasErrors() || f == nil {
		return cfg, diags
	}
	baseDir := filepath.Dir(filename)
	d := &decoder{ctx: evalContext(baseDir), cfg: cfg, baseDir: baseDir, exprs: map[string]hcl.Expression{}}
	d.walk(f.Body.(*hclsyntax.Body), "")
	var s fileSchema
	d.add(gohcl.DecodeBody(f.Body, d.ctx, &s))
	d.required(f.Body, "scope", "name", "data_dir")
	d.root(&s)
	d.applyDefaults()
	d.check()
	sortDiagnostics(d.diags)
	return cfg, append(diags, d.diags...)
}

// required reports each attribute in names that body leaves out, as hcl does for a required
// attribute (gohcl treats attributes decoded as expressions as optional).
func (d *decoder) required(body hcl.Body, names ...string) {
	attrs, _ := body.JustAttributes()
	for _, n := range names {
		if _, ok := attrs[n]; !ok {
			d.errorAt(body.MissingItemRange(), "Missing required argument", "The argument %q is required, but no definition was found.", n)
		}
	}
}

// walk records where each setting was written, from the syntax tree: every attribute by its
// path, each element of a literal list as path[i], every block by its type (and label, for
// method and plugin), in Config.Ranges; and the expressions of attributes and elements. The
// first of duplicate blocks wins.
func (d *decoder) walk(body *hclsyntax.Body, prefix string) {
	for name, attr := range body.Attributes {
		p := join(prefix, name)
		d.cfg.Ranges[p], d.exprs[p] = attr.Expr.Range(), attr.Expr
		if list, ok := attr.Expr.(*hclsyntax.TupleConsExpr); ok {
			for i, e := range list.Exprs {
				ep := fmt.Sprintf("%s[%d]", p, i)
				d.cfg.Ranges[ep], d.exprs[ep] = e.Range(), e
			}
		}
	}
	for _, b := range body.Blocks {
		p := join(prefix, b.Type)
		if len(b.Labels) > 0 && b.Type != "dcs" {
			p += "." + b.Labels[0]
		}
		if _, dup := d.cfg.Ranges[p]; !dup {
			d.cfg.Ranges[p] = b.DefRange()
			d.walk(b.Body, p)
		}
	}
}

func join(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
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
	baseDir string                    // the configuration file's directory: relative paths start there
	exprs   map[string]hcl.Expression // by path, as in Config.Ranges
	diags   hcl.Diagnostics
}

func (d *decoder) add(diags hcl.Diagnostics) {
	d.diags = append(d.diags, diags...)
}

func (d *decoder) errorAt(rng hcl.Range, summary, detail string, args ...any) {
	if len(args) > 0 {
		detail = fmt.Sprintf(detail, args...)
	}
	d.diags = append(d.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail, Subject: rng.Ptr()})
}

func (d *decoder) wrongType(rng hcl.Range, name, want string) {
	d.errorAt(rng, "Incorrect attribute value type", "Inappropriate value for attribute %q: %s required.", name, want)
}

// quote is s quoted for a diagnostic about expr, unless expr calls a function: what env() and
// file() read is never shown.
func quote(expr hcl.Expression, s string) string {
	if callsFunction(expr) {
		return "(the value read by env() or file())"
	}
	return fmt.Sprintf("%q", s)
}

// quoteAt is quote for the setting at path.
func (d *decoder) quoteAt(path, s string) string {
	for p := path; p != ""; p = parentPath(p) {
		if e, ok := d.exprs[p]; ok {
			return quote(e, s)
		}
	}
	return fmt.Sprintf("%q", s)
}

func callsFunction(expr hcl.Expression) bool {
	e, ok := expr.(hclsyntax.Expression)
	if !ok {
		return false
	}
	found := false
	_ = hclsyntax.VisitAll(e, func(n hclsyntax.Node) hcl.Diagnostics {
		_, call := n.(*hclsyntax.FunctionCallExpr)
		found = found || call
		return nil
	})
	return found
}

// value evaluates expr; ok is false after errors and for null, which is how an attribute that
// is not written reads.
func (d *decoder) value(expr hcl.Expression) (cty.Value, bool) {
	if expr == nil {
		return cty.NilVal, false
	}
	v, diags := expr.Value(d.ctx)
	d.add(diags)
	if diags.HasErrors() || !v.IsWhollyKnown() {
		return cty.NilVal, false
	}
	v, _ = v.Unmark()
	return v, !v.IsNull()
}

// str decodes a string (numbers and bools are converted).
func (d *decoder) str(expr hcl.Expression, name string) (string, bool) {
	v, ok := d.value(expr)
	if !ok {
		return "", false
	}
	s, err := convert.Convert(v, cty.String)
	if err != nil {
		d.wrongType(expr.Range(), name, "string")
		return "", false
	}
	return s.AsString(), true
}

// nonEmpty is str that refuses "".
func (d *decoder) nonEmpty(expr hcl.Expression, name string) (string, bool) {
	s, ok := d.str(expr, name)
	if ok && s == "" {
		d.errorAt(expr.Range(), "Empty value", "%q must not be empty.", name)
		return "", false
	}
	return s, ok
}

// path decodes a non-empty path; a relative one is taken from the configuration file's
// directory and made absolute, for every path alike.
func (d *decoder) path(expr hcl.Expression, name string) (string, bool) {
	p, ok := d.nonEmpty(expr, name)
	if !ok {
		return "", false
	}
	return d.resolve(p), true
}

func (d *decoder) resolve(p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	if full, err := filepath.Abs(filepath.Join(d.baseDir, p)); err == nil {
		return full
	}
	return filepath.Join(d.baseDir, p)
}

// boolean decodes a bool; like Patroni it also takes 1 and 0, and the strings PostgreSQL reads
// as booleans ([sdk.ParseBool]).
func (d *decoder) boolean(expr hcl.Expression, name string) (bool, bool) {
	v, ok := d.value(expr)
	if !ok {
		return false, false
	}
	if b, ok := asBool(v); ok {
		return b, true
	}
	d.wrongType(expr.Range(), name, "bool")
	return false, false
}

func asBool(v cty.Value) (bool, bool) {
	switch v.Type() {
	case cty.Bool:
		return v.True(), true
	case cty.Number:
		if f := v.AsBigFloat(); f.IsInt() && (f.Sign() == 0 || f.Cmp(big.NewFloat(1)) == 0) {
			return f.Sign() != 0, true
		}
	case cty.String:
		b, err := sdk.ParseBool(v.AsString())
		return b, err == nil
	}
	return false, false
}

// duration decodes a positive duration written like "10s".
func (d *decoder) duration(expr hcl.Expression, name string) (time.Duration, bool) {
	s, ok := d.str(expr, name)
	if !ok {
		return 0, false
	}
	dur, err := time.ParseDuration(s)
	if err != nil {
		d.errorAt(expr.Range(), "Invalid duration",
			"%s: %s is not a duration; write a number with a unit, such as \"10s\", \"5m\" or \"1h\".", name, quote(expr, s))
		return 0, false
	}
	if dur <= 0 {
		d.errorAt(expr.Range(), "Invalid duration", "%s: the duration must be longer than zero.", name)
		return 0, false
	}
	return dur, true
}

// stringList decodes a list of strings; diagnostics about an element point at the list.
func (d *decoder) stringList(expr hcl.Expression, name string) ([]string, bool) {
	v, ok := d.value(expr)
	if !ok {
		return nil, false
	}
	l, err := convert.Convert(v, cty.List(cty.String))
	if err != nil || !l.IsWhollyKnown() || slices.ContainsFunc(l.AsValueSlice(), cty.Value.IsNull) {
		d.wrongType(expr.Range(), name, "list of strings")
		return nil, false
	}
	out := make([]string, 0, l.LengthInt())
	for _, e := range l.AsValueSlice() {
		out = append(out, e.AsString())
	}
	return out, true
}

// written reports whether expr gives a value: an attribute that is left out, or set to null,
// does not.
func written(expr hcl.Expression) bool {
	v, diags := expr.Value(nil)
	return diags.HasErrors() || !v.IsNull()
}

// item is one name = value pair of an object with where it was written.
type item struct {
	name  string
	value cty.Value
	rng   hcl.Range // the whole pair, for pointing at the option
	vrng  hcl.Range // the value, for pointing at a bad value
}

// pairs decodes an object, written literally, into its name = value pairs in source order. ok
// is false after any error; the pairs decoded without error are returned.
func (d *decoder) pairs(expr hcl.Expression, name string) ([]item, bool) {
	kvs, diags := hcl.ExprMap(expr)
	if diags.HasErrors() {
		if written(expr) {
			d.wrongType(expr.Range(), name, "map")
		}
		return nil, false
	}
	out := make([]item, 0, len(kvs))
	ok := true
	for _, kv := range kvs {
		key, kok := d.str(kv.Key, "key")
		v, diags := kv.Value.Value(d.ctx)
		d.add(diags)
		if !kok || diags.HasErrors() {
			ok = false
			continue
		}
		out = append(out, item{name: key, value: v, rng: hcl.RangeBetween(kv.Key.Range(), kv.Value.Range()), vrng: kv.Value.Range()})
	}
	return out, ok
}

// scalarMap decodes a map whose values are strings, numbers or bools, rendered with
// RenderValue; what names an entry in diagnostics ("parameter").
func (d *decoder) scalarMap(expr hcl.Expression, name, what string) ([]item, map[string]string) {
	items, _ := d.pairs(expr, name)
	if items == nil {
		return nil, nil
	}
	m := make(map[string]string, len(items))
	kept := items[:0]
	for _, it := range items {
		if strings.TrimSpace(it.name) == "" {
			d.errorAt(it.rng, "Invalid "+what+" name", "A %s name must not be empty.", what)
			continue
		}
		s, err := RenderValue(it.value)
		if err != nil {
			d.errorAt(it.vrng, "Invalid "+what+" value", "%s %q: %s.", what, it.name, err)
			continue
		}
		m[it.name] = s
		kept = append(kept, it)
	}
	return kept, m
}

func (d *decoder) root(s *fileSchema) {
	c := d.cfg
	if s.Scope != nil {
		c.Scope, _ = d.identity(s.Scope, "scope")
	}
	if s.Name != nil {
		c.Name, _ = d.identity(s.Name, "name")
	}
	if s.DataDir != nil {
		if p, ok := d.path(s.DataDir, "data_dir"); ok && d.checkDataDir(s.DataDir, p) {
			c.DataDir = p
		}
	}
	c.PluginDir, _ = d.path(s.PluginDir, "plugin_dir")
	c.LoopWait, _ = d.duration(s.LoopWait, "loop_wait")
	c.TTL, _ = d.duration(s.TTL, "ttl")
	if v, ok := d.value(s.Tags); ok {
		if !v.Type().IsObjectType() && !v.Type().IsMapType() {
			d.wrongType(s.Tags.Range(), "tags", "map")
		} else if tags, err := toGo(v); err != nil {
			d.errorAt(s.Tags.Range(), "Invalid tag value", "tags: %s.", err)
		} else {
			c.Tags, _ = tags.(map[string]any)
		}
	}
	if src, ok := d.str(s.Source, "source"); ok && d.checkSource(src, s.Source.Range()) {
		c.Source = src
	}
	if l, ok := d.str(s.LogLevel, "log_level"); ok {
		if slices.Contains(logLevels, strings.ToLower(l)) {
			c.LogLevel = strings.ToLower(l)
		} else {
			d.errorAt(s.LogLevel.Range(), "Invalid log level", "log_level %s is not one of %s.", quote(s.LogLevel, l), strings.Join(logLevels, ", "))
		}
	}
	if s.DCS != nil {
		d.dcs(s.DCS)
	}
	if s.PostgreSQL != nil {
		d.postgresql(s.PostgreSQL)
	}
	if s.Bootstrap != nil {
		d.bootstrap(s.Bootstrap)
	}
	for _, m := range s.Methods {
		d.method(m)
	}
	for _, p := range s.Plugins {
		d.plugin(p)
	}
}

// identity decodes scope or name: they become parts of DCS keys.
func (d *decoder) identity(expr hcl.Expression, name string) (string, bool) {
	s, ok := d.nonEmpty(expr, name)
	if ok && strings.ContainsFunc(s, func(r rune) bool { return r == '/' || r == ' ' || r < 0x20 || r == 0x7f }) {
		d.errorAt(expr.Range(), "Invalid "+name,
			"%s %s is part of DCS keys and cannot contain '/', spaces or control characters.", name, quote(expr, s))
		return "", false
	}
	return s, ok
}

// systemDirs are directories that data_dir may never be: pgimaged empties a data directory
// it has marked as its own leftover, and creates files in it.
var systemDirs = []string{"/", "/bin", "/boot", "/dev", "/etc", "/home", "/proc", "/root", "/run", "/sbin", "/srv",
	"/sys", "/tmp", "/usr", "/usr/bin", "/usr/lib", "/usr/local", "/usr/sbin", "/var", "/var/lib", "/var/run", "/var/tmp"}

// checkDataDir refuses a system directory as data_dir (p is absolute).
func (d *decoder) checkDataDir(expr hcl.Expression, p string) bool {
	clean := filepath.Clean(p)
	resolved := clean
	if r, err := filepath.EvalSymlinks(clean); err == nil {
		resolved = r
	}
	for _, c := range []string{clean, resolved} {
		if slices.Contains(systemDirs, c) || (filepath.Dir(c) == "/" && strings.HasPrefix(c, "/lib")) {
			d.errorAt(expr.Range(), "System directory as data_dir",
				"data_dir %s is a system directory; give a directory of its own, such as /var/lib/postgresql/15/main.", quote(expr, c))
			return false
		}
	}
	return true
}

// checkSource refuses a source connection string that cannot be read or carries a password,
// so that it is neither kept nor printed.
func (d *decoder) checkSource(s string, rng hcl.Range) bool {
	if s == "" {
		d.errorAt(rng, "Empty value", "\"source\" must not be empty.")
		return false
	}
	keys, err := pg.ConnKeys(s)
	switch {
	case err != nil:
		d.errorAt(rng, "Invalid source", "source: %s.", err)
	case slices.Contains(keys, "password"):
		d.errorAt(rng, "Password in source",
			"source must not carry a password: give it in postgresql.authentication.replication, which pgimaged passes through a pgpass file.")
	default:
		return true
	}
	return false
}

func (d *decoder) dcs(b *dcsSchema) {
	c := &d.cfg.DCS
	switch b.Kind {
	case DCSFile:
		var s fileDCSSchema
		d.add(gohcl.DecodeBody(b.Body, d.ctx, &s))
		c.Path, _ = d.path(s.Path, "path")
	case DCSEtcd:
		var s etcdSchema
		d.add(gohcl.DecodeBody(b.Body, d.ctx, &s))
		d.required(b.Body, "endpoints")
		d.etcd(&s)
	default:
		d.errorAt(b.KindRange, "Unsupported DCS kind", "dcs %q: the kinds are %q and %q.", b.Kind, DCSFile, DCSEtcd)
		return
	}
	c.Kind, c.DefRange = b.Kind, b.DefRange
}

func (d *decoder) etcd(s *etcdSchema) {
	c := &d.cfg.DCS
	if s.Endpoints != nil {
		if eps, ok := d.stringList(s.Endpoints, "endpoints"); ok {
			if len(eps) == 0 {
				d.errorAt(s.Endpoints.Range(), "Empty value", "endpoints must name at least one etcd endpoint.")
			}
			for i, ep := range eps {
				if strings.TrimSpace(ep) == "" {
					d.errorAt(d.cfg.RangeOf(fmt.Sprintf("dcs.endpoints[%d]", i)), "Empty value", "An etcd endpoint must not be empty.")
				}
			}
			c.Endpoints = eps
		}
	}
	c.Username, _ = d.str(s.Username, "username")
	c.Password, _ = d.str(s.Password, "password")
	c.DialTimeout, _ = d.duration(s.DialTimeout, "dial_timeout")
	c.CAFile, _ = d.readableFile(s.CAFile, "ca_file")
	c.CertFile, _ = d.readableFile(s.CertFile, "cert_file")
	c.KeyFile, _ = d.readableFile(s.KeyFile, "key_file")
	certSet, keySet := s.CertFileRange.Filename != "", s.KeyFileRange.Filename != ""
	if certSet != keySet {
		given, missing, rng := "cert_file", "key_file", s.CertFileRange
		if keySet {
			given, missing, rng = missing, given, s.KeyFileRange
		}
		d.errorAt(rng, "Incomplete client certificate",
			"%s is set without %s: a client certificate and its private key go together.", given, missing)
	}
	d.endpointSchemes(s.Endpoints, c.Endpoints, certSet || keySet || d.cfg.Ranges["dcs.ca_file"] != hcl.Range{})
}

// endpointSchemes refuses http:// etcd endpoints when TLS is in use: the etcd client turns TLS
// off for an http:// endpoint, even with TLS files, and connects to every endpoint the way the
// first asks for.
func (d *decoder) endpointSchemes(expr hcl.Expression, endpoints []string, tlsSet bool) {
	https := slices.IndexFunc(endpoints, func(ep string) bool { return dcs.EndpointScheme(ep) == "https" })
	for i, ep := range endpoints {
		if dcs.EndpointScheme(ep) != "http" {
			continue
		}
		rng := d.cfg.RangeOf(fmt.Sprintf("dcs.endpoints[%d]", i))
		switch {
		case tlsSet:
			d.errorAt(rng, "Plain-text endpoint",
				"Endpoint %s is plain HTTP, so the etcd client would not use ca_file, cert_file and key_file: write https:// or host:port.", quote(expr, ep))
		case https >= 0:
			d.errorAt(rng, "Mixed endpoint schemes",
				"Endpoint %s is plain HTTP and %s is HTTPS: the etcd client connects to every endpoint the same way, so give them one scheme.",
				quote(expr, ep), quote(expr, endpoints[https]))
		}
	}
}

// readableFile decodes a path (see path) to a file that must exist and be readable.
func (d *decoder) readableFile(expr hcl.Expression, name string) (string, bool) {
	written, ok := d.nonEmpty(expr, name)
	if !ok {
		return "", false
	}
	p := d.resolve(written)
	if err := checkReadable(p); err != nil {
		named := quote(expr, written)
		if p != written && !callsFunction(expr) {
			named = fmt.Sprintf("%q (%q)", written, p)
		}
		d.errorAt(expr.Range(), "Unreadable file", "%s: cannot read %s: %s.", name, named, err)
		return "", false
	}
	return p, true
}

func (d *decoder) postgresql(s *postgresqlSchema) {
	pg := &d.cfg.PostgreSQL
	pg.BinDir, _ = d.path(s.BinDir, "bin_dir")
	pg.Listen, _ = d.address(s.Listen, "listen")
	pg.ConnectAddress, _ = d.address(s.ConnectAddress, "connect_address")
	_, pg.Parameters = d.scalarMap(s.Parameters, "parameters", "parameter")
	pg.PGHBA, _ = d.stringList(s.PGHBA, "pg_hba")
	pg.PGCtlTimeout, _ = d.duration(s.PGCtlTimeout, "pg_ctl_timeout")
	pg.CreateReplicaMethods, _ = d.stringList(s.CreateReplicaMethods, "create_replica_methods")
	if a := s.Authentication; a != nil {
		d.credentials(a.Superuser, &pg.Superuser)
		d.credentials(a.Replication, &pg.Replication)
	}
}

func (d *decoder) credentials(s *credentialsSchema, c *Credentials) {
	if s != nil {
		d.required(s.Body, "username")
		c.Username, _ = d.nonEmpty(s.Username, "username")
		c.Password, _ = d.str(s.Password, "password")
	}
}

// address decodes a host:port setting.
func (d *decoder) address(expr hcl.Expression, name string) (string, bool) {
	s, ok := d.str(expr, name)
	if ok && !validAddress(s) {
		d.errorAt(expr.Range(), "Invalid address", "%s %s must be host:port, such as \"127.0.0.1:5432\".", name, quote(expr, s))
		return "", false
	}
	return s, ok
}

func validAddress(s string) bool {
	i := strings.LastIndex(s, ":")
	if i <= 0 || strings.TrimSpace(s[:i]) == "" {
		return false
	}
	p := s[i+1:]
	port, err := strconv.Atoi(p)
	return err == nil && len(p) <= 5 && strings.Trim(p, "0123456789") == "" && port >= 1 && port <= 65535
}

func (d *decoder) bootstrap(s *bootstrapSchema) {
	bs := &d.cfg.Bootstrap
	bs.Method, _ = d.nonEmpty(s.Method, "method")
	for _, it := range d.initdbOptions(s.Initdb) {
		bs.Initdb = append(bs.Initdb, it.opt)
		bs.InitdbRanges = append(bs.InitdbRanges, it.rng)
	}
	d.add(RefusedOption(bs.Initdb, bs.InitdbRanges, InitdbRefused))
	bs.PostBootstrap, _ = d.nonEmpty(s.PostBootstrap, "post_bootstrap")
	bs.Timeout, _ = d.duration(s.Timeout, "timeout")
	bs.RecoveryTimeout, _ = d.duration(s.RecoveryTimeout, "recovery_timeout")
}

func (d *decoder) plugin(s *pluginSchema) {
	first, dup := d.cfg.Plugins[s.Name]
	if d.badName("plugin", s.Name, s.NameRange, nil) || dup && d.duplicate("plugin", s.Name, s.DefRange, first.DefRange) {
		return
	}
	pin := &PluginPin{Name: s.Name, DefRange: s.DefRange}
	d.cfg.Plugins[s.Name] = pin
	pin.Path, _ = d.path(s.Path, "path")
	if sum, ok := d.str(s.SHA256, "sha256"); ok {
		if sha256Pattern.MatchString(sum) {
			pin.SHA256 = strings.ToLower(sum)
		} else {
			d.errorAt(s.SHA256.Range(), "Invalid sha256",
				"sha256 must be 64 hexadecimal digits (the output of sha256sum); this one has %d characters.", utf8.RuneCountInString(sum))
		}
	}
}

// badName reports a method or plugin name that is not spelt like one; expr is where it was
// written as a value, nil for a block label.
func (d *decoder) badName(what, name string, rng hcl.Range, expr hcl.Expression) bool {
	if labelPattern.MatchString(name) {
		return false
	}
	q := fmt.Sprintf("%q", name)
	if expr != nil {
		q = quote(expr, name)
	}
	d.errorAt(rng, "Invalid "+what+" name",
		"The %s name %s must start with a letter or digit and hold only letters, digits, '_', '-' and '.'.", what, q)
	return true
}

// duplicate reports a second method or plugin block with the label of one at first.
func (d *decoder) duplicate(what, label string, rng, first hcl.Range) bool {
	d.errorAt(rng, fmt.Sprintf("Duplicate %s %q block", what, label), "Each %s block has its own label. The first is at %s.", what, first.String())
	return true
}

// applyDefaults is the one place where settings the configuration leaves out get their
// defaults; callers receive a complete Config.
func (d *decoder) applyDefaults() {
	c := d.cfg
	setDefault(&c.LoopWait, DefaultLoopWait)
	setDefault(&c.TTL, DefaultTTL)
	setDefault(&c.LogLevel, DefaultLogLevel)
	setDefault(&c.PostgreSQL.ConnectAddress, c.PostgreSQL.Listen)
	setDefault(&c.PostgreSQL.PGCtlTimeout, DefaultPGCtlTimeout)
	setDefault(&c.Bootstrap.Method, DefaultBootstrap)
	setDefault(&c.Bootstrap.RecoveryTimeout, DefaultRecoveryTimeout)
	if len(c.PostgreSQL.CreateReplicaMethods) == 0 {
		c.PostgreSQL.CreateReplicaMethods = []string{DefaultReplicaMethod}
	}
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// check runs the checks that look at more than one setting.
func (d *decoder) check() {
	c := d.cfg
	if c.TTL <= c.LoopWait {
		path := "ttl"
		if _, set := c.Ranges[path]; !set {
			path = "loop_wait"
		}
		d.errorAt(c.RangeOf(path), "TTL too short",
			"ttl (%s) must be longer than loop_wait (%s): leases would expire between two refreshes.", c.TTL, c.LoopWait)
	}
	seen := map[string]int{}
	for i, name := range c.PostgreSQL.CreateReplicaMethods {
		path := fmt.Sprintf("postgresql.create_replica_methods[%d]", i)
		if j, dup := seen[name]; dup {
			d.errorAt(c.RangeOf(path), "Duplicate replica method", "create_replica_methods names %s twice (also at position %d).", d.quoteAt(path, name), j+1)
			continue
		}
		seen[name] = i
		d.checkDefined(path, "create_replica_methods", name, ReplicaBuiltins)
	}
	d.checkDefined("bootstrap.method", "bootstrap.method", c.Bootstrap.Method, BootstrapBuiltins)
}

// checkDefined reports a method name, set at path, that is neither a method block nor one of
// builtins.
func (d *decoder) checkDefined(path, setting, name string, builtins []string) {
	if _, ok := d.cfg.Methods[name]; ok || slices.Contains(builtins, name) {
		return
	}
	q, hint := d.quoteAt(path, name), ""
	if q == fmt.Sprintf("%q", name) {
		hint = suggest(name, slices.Concat(builtins, slices.Sorted(maps.Keys(d.cfg.Methods))))
	}
	d.errorAt(d.cfg.RangeOf(path), "Undefined method",
		"%s names %s, but there is no method %s block; the methods that work without one are %s.%s",
		setting, q, q, strings.Join(builtins, ", "), hint)
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
