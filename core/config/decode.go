package config

import (
	"cmp"
	"fmt"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/pgimaged/pgimaged/core/dcs"
	"github.com/pgimaged/pgimaged/core/pg"
	"github.com/pgimaged/pgimaged/sdk"
)

// The schema, decoded by gohcl, which reports a setting that is missing, unknown or of the wrong
// type at its place. An optional setting is a pointer, nil when not written (or null). Fields
// kept as cty values or expressions follow pgimaged's own rules: booleans in PostgreSQL's
// spellings and 1/0 ([sdk.ParseBool]), tags of any value, entries each with its own place.
type (
	fileSchema struct {
		Scope      string            `hcl:"scope"`
		Name       string            `hcl:"name"`
		DataDir    string            `hcl:"data_dir"`
		PluginDir  *string           `hcl:"plugin_dir,optional"`
		LoopWait   *string           `hcl:"loop_wait,optional"`
		TTL        *string           `hcl:"ttl,optional"`
		Tags       cty.Value         `hcl:"tags,optional"`
		Source     *string           `hcl:"source,optional"`
		LogLevel   *string           `hcl:"log_level,optional"`
		LogFormat  *string           `hcl:"log_format,optional"`
		LogFile    *string           `hcl:"log_file,optional"`
		MaxLag     *float64          `hcl:"maximum_lag_on_failover,optional"`
		UseSlots   cty.Value         `hcl:"use_slots,optional"`
		SlotsTTL   *string           `hcl:"member_slots_ttl,optional"`
		SyncMode   cty.Value         `hcl:"synchronous_mode,optional"`
		SyncStrict cty.Value         `hcl:"synchronous_mode_strict,optional"`
		SyncCount  *float64          `hcl:"synchronous_node_count,optional"`
		Failsafe   *bool             `hcl:"failsafe_mode,optional"`
		DCS        *dcsSchema        `hcl:"dcs,block"`
		API        *apiSchema        `hcl:"api,block"`
		PostgreSQL *postgresqlSchema `hcl:"postgresql,block"`
		Bootstrap  *bootstrapSchema  `hcl:"bootstrap,block"`
		Methods    []*methodSchema   `hcl:"method,block"`
		Plugins    []*pluginSchema   `hcl:"plugin,block"`
		Standby    *standbySchema    `hcl:"standby_cluster,block"`
	}
	dcsSchema struct {
		Kind      string    `hcl:"kind,label"`
		KindRange hcl.Range `hcl:"kind,label_range"`
		DefRange  hcl.Range `hcl:",def_range"`
		Body      hcl.Body  `hcl:",remain"` // decoded as fileDCSSchema or etcdSchema by Kind
	}
	fileDCSSchema struct {
		Path      *string `hcl:"path,optional"`
		Namespace *string `hcl:"namespace,optional"`
	}
	etcdSchema struct {
		Endpoints   []string `hcl:"endpoints"`
		Username    string   `hcl:"username,optional"`
		Password    string   `hcl:"password,optional"`
		DialTimeout *string  `hcl:"dial_timeout,optional"`
		CAFile      *string  `hcl:"ca_file,optional"`
		CertFile    *string  `hcl:"cert_file,optional"`
		KeyFile     *string  `hcl:"key_file,optional"`
		Namespace   *string  `hcl:"namespace,optional"`
	}
	postgresqlSchema struct {
		BinDir               *string               `hcl:"bin_dir,optional"`
		Listen               *string               `hcl:"listen,optional"`
		ConnectAddress       *string               `hcl:"connect_address,optional"`
		Parameters           hcl.Expression        `hcl:"parameters,optional"`
		PGHBA                []string              `hcl:"pg_hba,optional"`
		PGCtlTimeout         *string               `hcl:"pg_ctl_timeout,optional"`
		CreateReplicaMethods []string              `hcl:"create_replica_methods,optional"`
		CreateReplicaMethod  []string              `hcl:"create_replica_method,optional"` // the seed's spelling
		RejoinMethods        []string              `hcl:"rejoin_methods,optional"`
		Rejoin               *string               `hcl:"rejoin,optional"`
		Authentication       *authenticationSchema `hcl:"authentication,block"`
	}
	authenticationSchema struct {
		Superuser   *credentialsSchema `hcl:"superuser,block"`
		Replication *credentialsSchema `hcl:"replication,block"`
		Rewind      *credentialsSchema `hcl:"rewind,block"` // credentials.go
	}
	bootstrapSchema struct {
		Method          *string        `hcl:"method,optional"`
		Initdb          hcl.Expression `hcl:"initdb,optional"`
		PostBootstrap   *string        `hcl:"post_bootstrap,optional"`
		Timeout         *string        `hcl:"timeout,optional"`
		RecoveryTimeout *string        `hcl:"recovery_timeout,optional"`
	}
	methodSchema struct {
		Label                    string         `hcl:"name,label"`
		LabelRange               hcl.Range      `hcl:"name,label_range"`
		DefRange                 hcl.Range      `hcl:",def_range"`
		Command                  *string        `hcl:"command,optional"`
		Plugin                   *string        `hcl:"plugin,optional"`
		NoParams                 cty.Value      `hcl:"no_params,optional"`
		NoMaster                 cty.Value      `hcl:"no_master,optional"`
		NoLeader                 cty.Value      `hcl:"no_leader,optional"`
		KeepData                 cty.Value      `hcl:"keep_data,optional"`
		Attempts                 *float64       `hcl:"attempts,optional"`
		RetryWait                *string        `hcl:"retry_wait,optional"`
		Timeout                  *string        `hcl:"timeout,optional"`
		RecoveryConf             hcl.Expression `hcl:"recovery_conf,optional"`
		KeepExistingRecoveryConf cty.Value      `hcl:"keep_existing_recovery_conf,optional"`
		Options                  hcl.Expression `hcl:"options,optional"`
		Rest                     hcl.Body       `hcl:",remain"` // the plugin's options
	}
	pluginSchema struct {
		Name      string    `hcl:"name,label"`
		NameRange hcl.Range `hcl:"name,label_range"`
		DefRange  hcl.Range `hcl:",def_range"`
		Path      *string   `hcl:"path,optional"`
		SHA256    *string   `hcl:"sha256,optional"`
	}
)

// ReservedMethodKeys are the attributes of a method block that pgimaged reads itself, never
// handed to a plugin as options.
var ReservedMethodKeys = func() (keys []string) {
	s, _ := gohcl.ImpliedBodySchema(methodSchema{})
	for _, a := range s.Attributes {
		keys = append(keys, a.Name)
	}
	return keys
}()

// Parse decodes and checks a configuration whose text is src; filename names it in diagnostics
// and is the base for relative paths. The returned Config is never nil (see [Load]).
func Parse(filename string, src []byte) (*Config, hcl.Diagnostics) {
	cfg := &Config{Filename: filename, Methods: map[string]*Method{}, Plugins: map[string]*PluginPin{},
		Ranges: map[string]hcl.Range{}, files: map[string]*hcl.File{}}
	cfg.files[filename] = &hcl.File{Bytes: src}
	if diags := CheckInput(filename, src); diags.HasErrors() {
		return cfg, diags
	}
	f, diags := hclsyntax.ParseConfig(src, filename, hcl.InitialPos)
	if cfg.files[filename] = f; diags.HasErrors() {
		return cfg, diags
	}
	d := &decoder{ctx: evalContext(filepath.Dir(filename)), cfg: cfg, baseDir: filepath.Dir(filename), labels: map[string]hcl.Range{}, keys: map[int]string{}, attrs: map[string]hcl.Range{}}
	d.walk(f.Body.(*hclsyntax.Body), "")
	slices.Sort(d.calls)
	var s fileSchema
	d.decode(f.Body, &s)
	d.root(&s)
	d.cfg.ApplyDefaults()
	d.check()
	// In source order; diagnostics without a place first.
	slices.SortStableFunc(d.diags, func(a, b *hcl.Diagnostic) int { return cmp.Compare(offset(a), offset(b)) })
	return cfg, append(diags, d.diags...)
}

func offset(diag *hcl.Diagnostic) int {
	if diag.Subject == nil {
		return -1
	}
	return diag.Subject.Start.Byte
}

// walk records in Config.Ranges where each setting was written: an attribute's value by its
// path, a literal list's elements as path[i], a block by its type (and label, but dcs's); the
// first of duplicate blocks wins. It notes where function calls start.
func (d *decoder) walk(body *hclsyntax.Body, prefix string) {
	for name, attr := range body.Attributes {
		p := strings.TrimPrefix(prefix+"."+name, ".")
		d.cfg.Ranges[p], d.attrs[p], d.keys[attr.Expr.Range().Start.Byte] = attr.Expr.Range(), attr.SrcRange, p
		if list, ok := attr.Expr.(*hclsyntax.TupleConsExpr); ok {
			for i, e := range list.Exprs {
				d.cfg.Ranges[fmt.Sprintf("%s[%d]", p, i)] = e.Range()
			}
		}
		_ = hclsyntax.VisitAll(attr.Expr, func(n hclsyntax.Node) hcl.Diagnostics {
			if call, ok := n.(*hclsyntax.FunctionCallExpr); ok {
				d.calls = append(d.calls, call.NameRange.Start.Byte)
			}
			return nil
		})
	}
	for _, b := range body.Blocks {
		p := strings.TrimPrefix(prefix+"."+b.Type, ".")
		if len(b.Labels) > 0 && b.Type != "dcs" {
			p += "." + b.Labels[0]
		}
		if _, dup := d.cfg.Ranges[p]; !dup {
			d.cfg.Ranges[p] = b.DefRange()
			d.walk(b.Body, p)
		}
	}
}

// decoder applies pgimaged's rules to what gohcl decoded and collects diagnostics. A setting is
// named by its key, its path in Config.Ranges ("postgresql.listen").
type decoder struct {
	ctx           *hcl.EvalContext
	cfg           *Config
	baseDir       string               // the configuration file's directory: relative paths start there
	calls, failed []int                // sorted offsets where function calls start, and errors gohcl reported
	labels        map[string]hcl.Range // where the method and plugin blocks start, by "method <label>"
	keys          map[int]string       // the key of each attribute, by where its value starts
	attrs         map[string]hcl.Range // where each attribute was written, name and value, by key
	diags         hcl.Diagnostics
}

// add collects diags. gohcl reports a value of the wrong type at its first token, inside a
// string's quotes, in cty's words: it is reported at the value, or at the element of a list,
// naming the attribute, like every other. An unknown value follows an error reported already.
func (d *decoder) add(diags hcl.Diagnostics) {
	for _, diag := range diags {
		detail, wrongType := strings.CutPrefix(diag.Detail, "Unsuitable value: ")
		if !wrongType || diag.Summary != "Unsuitable value type" || diag.Context == nil {
			d.diags = append(d.diags, diag)
		} else if strings.HasSuffix(detail, "value must be known") {
			continue
		} else if key, ok := d.keys[diag.Context.Start.Byte]; ok {
			name, i := base(key), 0
			if n, _ := fmt.Sscanf(detail, "element %d: ", &i); n == 1 {
				key, detail = fmt.Sprintf("%s[%d]", key, i), detail[strings.Index(detail, ": ")+2:]
			}
			want, _, _ := strings.Cut(strings.TrimPrefix(detail, "a "), " required")
			want = strings.Replace(strings.TrimSuffix(want, " is"), "list of string", "list of strings", 1) + " required"
			if detail == "null value is not allowed" {
				want = "null is not allowed"
			}
			d.fail(key, "Incorrect attribute value type", "Inappropriate value for attribute %q: %s.", name, want)
		} else {
			diag.Subject = diag.Context
			d.diags = append(d.diags, diag)
		}
	}
}

// decode decodes body into target with gohcl and notes where it reported errors (see ok).
func (d *decoder) decode(body hcl.Body, target any) {
	n := len(d.diags)
	d.add(gohcl.DecodeBody(body, d.ctx, target))
	for _, diag := range d.diags[n:] {
		d.failed = append(d.failed, offset(diag))
	}
	slices.Sort(d.failed)
}

// ok reports whether the setting at key was written and decoded without error.
func (d *decoder) ok(key string) bool {
	rng, written := d.cfg.Ranges[key]
	return written && !within(d.failed, rng)
}

// within reports whether one of the sorted offsets lies within rng.
func within(offsets []int, rng hcl.Range) bool {
	i, _ := slices.BinarySearch(offsets, rng.Start.Byte)
	return i < len(offsets) && offsets[i] < rng.End.Byte
}

// value decodes expr into target with gohcl; false after errors.
func (d *decoder) value(expr hcl.Expression, target any) bool {
	diags := gohcl.DecodeExpression(expr, d.ctx, target)
	d.add(diags)
	return !diags.HasErrors()
}

func (d *decoder) errorAt(rng hcl.Range, summary, detail string, args ...any) {
	d.diags = append(d.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: fmt.Sprintf(detail, args...), Subject: rng.Ptr()})
}

// at is where the setting at key was written (see [Config.RangeOf]).
func (d *decoder) at(key string) hcl.Range { return d.cfg.RangeOf(key) }

func (d *decoder) fail(key, summary, detail string, args ...any) {
	d.errorAt(d.at(key), summary, detail, args...)
}

func (d *decoder) wrongType(key, want string) {
	d.fail(key, "Incorrect attribute value type", "Inappropriate value for attribute %q: %s required.", base(key), want)
}

// base is the attribute name that ends key.
func base(key string) string { return key[strings.LastIndexByte(key, '.')+1:] }

// fromFunction reports whether the value written at rng calls env() or file().
func (d *decoder) fromFunction(rng hcl.Range) bool { return within(d.calls, rng) }

// quote is s quoted for a diagnostic about the value written at rng, unless env() or file() read it.
func (d *decoder) quote(rng hcl.Range, s string) string {
	if d.fromFunction(rng) {
		return "(the value read by env() or file())"
	}
	return strconv.Quote(s)
}

// str is the setting at key; ok is false when it is not written or has an error already.
func (d *decoder) str(s *string, key string) (v string, ok bool) {
	if s == nil || !d.ok(key) {
		return "", false
	}
	return *s, true
}

// nonEmpty is the setting at key (see str), "" when not written; an empty string is an error.
func (d *decoder) nonEmpty(s *string, key string) string {
	v, ok := d.str(s, key)
	if ok && v == "" {
		d.fail(key, "Empty value", "%q must not be empty.", base(key))
	}
	return v
}

// path is nonEmpty for a path, made absolute from the configuration file's directory.
func (d *decoder) path(s *string, key string) string {
	p := d.nonEmpty(s, key)
	if p == "" {
		return ""
	} else if !filepath.IsAbs(p) {
		p = filepath.Join(d.baseDir, p)
	}
	if full, err := filepath.Abs(p); err == nil {
		return full
	}
	return p
}

// boolean reads a bool, like Patroni also 1 and 0 and PostgreSQL's spellings ([sdk.ParseBool]);
// ok is false when the setting is not written or wrong.
func (d *decoder) boolean(v cty.Value, key string) (b, ok bool) {
	if v.IsNull() || !d.ok(key) {
		return false, false
	}
	s, _ := RenderValue(v) // "" for a value that is not a string, number or bool
	b, err := sdk.ParseBool(s)
	if err != nil {
		d.wrongType(key, "bool")
	}
	return b, err == nil
}

// duration parses a positive duration with a unit, as [parseDuration] reads it for plugin
// options too ("10s", "5min", "1h30m"); a bare number is refused, since it names no unit. It is
// 0 when not written or wrong.
func (d *decoder) duration(s *string, key string) time.Duration {
	v, ok := d.str(s, key)
	if !ok {
		return 0
	}
	t := strings.TrimSpace(v)
	dur, err := parseDuration(strings.TrimPrefix(t, "-"), 0)
	if bare := strings.Trim(t, "0123456789") == ""; err != nil || bare && strings.Trim(t, "0") != "" {
		d.fail(key, "Invalid duration", "%s: %s is not a duration; write a number with a unit, such as \"10s\", \"5min\" or \"1h\".",
			base(key), d.quote(d.at(key), v))
	} else if dur <= 0 || strings.HasPrefix(t, "-") {
		d.fail(key, "Invalid duration", "%s: the duration must be longer than zero.", base(key))
		dur = 0
	}
	return dur
}

func (d *decoder) root(s *fileSchema) {
	c := d.cfg
	c.Scope, c.Name = d.identity(&s.Scope, "scope"), d.identity(&s.Name, "name")
	if p := d.path(&s.DataDir, "data_dir"); p != "" && d.checkDataDir(p) {
		c.DataDir = p
	}
	c.PluginDir = d.path(s.PluginDir, "plugin_dir")
	c.LoopWait, c.TTL = d.duration(s.LoopWait, "loop_wait"), d.duration(s.TTL, "ttl")
	if tags := s.Tags; !tags.IsNull() && d.ok("tags") {
		if g, err := toGo(tags); !tags.Type().IsObjectType() && !tags.Type().IsMapType() {
			d.wrongType("tags", "map")
		} else if err != nil {
			d.fail("tags", "Invalid tag value", "tags: %s.", err)
		} else {
			c.Tags = g.(map[string]any)
		}
	}
	if src := d.nonEmpty(s.Source, "source"); src != "" && d.checkSource(src) {
		c.Source = src
	}
	switch n := s.MaxLag; {
	case n == nil || !d.ok("maximum_lag_on_failover"):
	case *n < 0 || *n != float64(int64(*n)):
		d.fail("maximum_lag_on_failover", "Invalid maximum_lag_on_failover", "maximum_lag_on_failover is a number of bytes: a whole number, 0 or more.")
	default:
		c.MaximumLagOnFailover = int64(*n)
	}
	d.replication(s)
	if s.Failsafe != nil {
		c.FailsafeMode = *s.Failsafe
	}
	c.LogLevel = d.choice(s.LogLevel, "log_level", "Invalid log level", logLevels)
	c.LogFormat = d.choice(s.LogFormat, "log_format", "Invalid log format", logFormats)
	c.LogFile = d.path(s.LogFile, "log_file")
	if s.DCS != nil {
		d.dcs(s.DCS)
	}
	if s.API != nil {
		d.api(s.API)
	}
	if c.FailsafeMode && (!c.API.Enabled() || c.API.Username == "") && d.ok("failsafe_mode") {
		d.fail("failsafe_mode", "failsafe_mode needs the API",
			"failsafe_mode: while the DCS cannot be reached the primary asks every member over the API (POST /failsafe, authenticated): give an api block with listen, username and password, the same credentials on every member.")
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
	if s.Standby != nil {
		d.standby(s.Standby)
	}
}

var (
	labelPattern  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)
	sha256Pattern = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)
	logLevels     = []string{"trace", "debug", "info", "warn", "error", "off"}
	logFormats    = []string{"text", "json"}
	// systemDirs are directories that data_dir may never be: pgimaged empties a data directory
	// it has marked as its own leftover, and creates files in it.
	systemDirs = []string{"/", "/bin", "/boot", "/dev", "/etc", "/home", "/proc", "/root", "/run", "/sbin", "/srv",
		"/sys", "/tmp", "/usr", "/usr/bin", "/usr/lib", "/usr/local", "/usr/sbin", "/var", "/var/lib", "/var/run", "/var/tmp"}
)

// choice decodes a setting that is one of choices, in any case.
func (d *decoder) choice(s *string, key, summary string, choices []string) string {
	if v, ok := d.str(s, key); !ok || slices.Contains(choices, strings.ToLower(v)) {
		return strings.ToLower(v)
	}
	d.fail(key, summary, "%s %s is not one of %s.", key, d.quote(d.at(key), *s), strings.Join(choices, ", "))
	return ""
}

// identity decodes scope or name: they become parts of DCS keys.
func (d *decoder) identity(s *string, key string) string {
	v := d.nonEmpty(s, key)
	if strings.ContainsFunc(v, func(r rune) bool { return r == '/' || r == ' ' || r < 0x20 || r == 0x7f }) {
		d.fail(key, "Invalid "+key, "%s %s is part of DCS keys and cannot contain '/', spaces or control characters.", key, d.quote(d.at(key), v))
		return ""
	}
	return v
}

// checkDataDir refuses a system directory as data_dir (p is absolute).
func (d *decoder) checkDataDir(p string) bool {
	resolved, err := filepath.EvalSymlinks(p)
	if err != nil {
		resolved = p
	}
	for _, c := range []string{p, resolved} {
		if slices.Contains(systemDirs, c) || filepath.Dir(c) == "/" && strings.HasPrefix(c, "/lib") {
			d.fail("data_dir", "System directory as data_dir",
				"data_dir %s is a system directory; give a directory of its own, such as /var/lib/postgresql/15/main.", d.quote(d.at("data_dir"), c))
			return false
		}
	}
	return true
}

// checkSource refuses a source that pgimaged cannot pass on or that carries a password.
func (d *decoder) checkSource(s string) bool {
	_, password, err := pg.ParseConnURL(s)
	if err != nil {
		d.fail("source", "Invalid source", "source: %s.", err)
	} else if password != "" {
		d.fail("source", "Password in source",
			"source must not carry a password: give it in postgresql.authentication.replication, which pgimaged passes through a pgpass file.")
	}
	return err == nil && password == ""
}

func (d *decoder) dcs(b *dcsSchema) {
	c := &d.cfg.DCS
	switch b.Kind {
	case DCSFile:
		var s fileDCSSchema
		d.decode(b.Body, &s)
		c.Path = d.path(s.Path, "dcs.path")
		d.namespace(s.Namespace)
	case DCSEtcd:
		var s etcdSchema
		d.decode(b.Body, &s)
		d.etcd(&s)
		d.namespace(s.Namespace)
	default:
		d.errorAt(b.KindRange, "Unsupported DCS kind", "dcs %q: the kinds are %q and %q.", b.Kind, DCSFile, DCSEtcd)
		return
	}
	c.Kind, c.DefRange = b.Kind, b.DefRange
}

// namespace decodes the dcs block's namespace, the first element of every key, as in Patroni.
func (d *decoder) namespace(s *string) {
	d.cfg.DCS.Namespace = DefaultNamespace
	if s == nil {
		return
	}
	if strings.Trim(*s, "/ ") == "" || slices.Contains(strings.Split(*s, "/"), "..") {
		d.fail("dcs.namespace", "Invalid namespace",
			"namespace must name a path such as %q, without \"..\".", DefaultNamespace)
		return
	}
	d.cfg.DCS.Namespace = *s
}

func (d *decoder) etcd(s *etcdSchema) {
	c := &d.cfg.DCS
	if len(s.Endpoints) == 0 && d.ok("dcs.endpoints") {
		d.fail("dcs.endpoints", "Empty value", "endpoints must name at least one etcd endpoint.")
	}
	c.Endpoints, c.Username, c.Password = s.Endpoints, s.Username, s.Password
	c.DialTimeout = d.duration(s.DialTimeout, "dcs.dial_timeout")
	c.CAFile, c.CertFile, c.KeyFile = d.tlsFiles("dcs.", s.CAFile, s.CertFile, s.KeyFile,
		"Incomplete client certificate", "a client certificate")
	// The etcd client turns TLS off for an http:// endpoint, even with TLS files, and connects
	// to every endpoint the way the first asks for.
	at := func(i int) hcl.Range { return d.at(fmt.Sprintf("dcs.endpoints[%d]", i)) }
	https := slices.IndexFunc(s.Endpoints, func(ep string) bool { return dcs.EndpointScheme(ep) == "https" })
	for i, ep := range s.Endpoints {
		switch {
		case strings.TrimSpace(ep) == "":
			d.errorAt(at(i), "Empty value", "An etcd endpoint must not be empty.")
		case dcs.EndpointScheme(ep) != "http":
		case d.written("dcs.ca_file", "dcs.cert_file", "dcs.key_file"):
			d.errorAt(at(i), "Plain-text endpoint",
				"Endpoint %s is plain HTTP, so the etcd client would not use ca_file, cert_file and key_file: write https:// or host:port.", d.quote(at(i), ep))
		case https >= 0:
			d.errorAt(at(i), "Mixed endpoint schemes",
				"Endpoint %s is plain HTTP and %s is HTTPS: the etcd client connects to every endpoint the same way, so give them one scheme.",
				d.quote(at(i), ep), d.quote(at(https), s.Endpoints[https]))
		}
	}
}

// tlsFiles decodes the ca_file, cert_file and key_file of the block at prefix ("dcs."), and
// reports a certificate without its key, or the reverse.
func (d *decoder) tlsFiles(prefix string, ca, cert, key *string, summary, whose string) (string, string, string) {
	given, missing := "cert_file", "key_file"
	if d.written(prefix + missing) {
		given, missing = missing, given
	}
	if d.written(prefix+given) != d.written(prefix+missing) {
		d.errorAt(d.attrs[prefix+given], summary, "%s is set without %s: %s and its private key go together.", given, missing, whose)
	}
	return d.readable(ca, prefix+"ca_file"), d.readable(cert, prefix+"cert_file"), d.readable(key, prefix+"key_file")
}

// written reports whether one of the attributes at keys was written.
func (d *decoder) written(keys ...string) bool {
	return slices.ContainsFunc(keys, func(k string) bool { _, ok := d.attrs[k]; return ok })
}

// readable decodes a path (see path) to a file that must exist and be readable.
func (d *decoder) readable(s *string, key string) string {
	p := d.path(s, key)
	if p == "" {
		return ""
	}
	if _, err := readRegular(p, 1); err != nil {
		named := d.quote(d.at(key), *s)
		if p != *s && !d.fromFunction(d.at(key)) {
			named = fmt.Sprintf("%q (%q)", *s, p)
		}
		d.fail(key, "Unreadable file", "%s: cannot read %s: %s.", base(key), named, err)
		return ""
	}
	return p
}

func (d *decoder) postgresql(s *postgresqlSchema) {
	p := &d.cfg.PostgreSQL
	p.BinDir = d.path(s.BinDir, "postgresql.bin_dir")
	p.Listen = d.address(s.Listen, "postgresql.listen")
	p.ConnectAddress = d.address(s.ConnectAddress, "postgresql.connect_address")
	var params []entry
	p.Parameters, params = d.settings(s.Parameters, "postgresql.parameters", "parameter")
	for _, e := range params {
		if strings.EqualFold(e.Name, "hot_standby") && ReadsAsOff(e.Value) {
			d.errorAt(e.rng, "Unsupported hot_standby",
				"hot_standby = %q: every standby runs as a hot standby, because the agents read each standby's state over a connection (its timeline, what it received and replayed, whether it streams), which a server with hot_standby off refuses until it is promoted; without it no switchover could pick the standby and no rejoin could be seen to stream. Remove the setting (Patroni runs standbys with hot_standby on, whatever its configuration says).", e.Value)
		}
	}
	p.PGHBA, p.CreateReplicaMethods = s.PGHBA, d.replicaMethodList(s.CreateReplicaMethods, s.CreateReplicaMethod, "postgresql")
	p.PGCtlTimeout = d.duration(s.PGCtlTimeout, "postgresql.pg_ctl_timeout")
	p.RejoinMethods = s.RejoinMethods
	p.Rejoin = d.choice(s.Rejoin, "postgresql.rejoin", "Invalid rejoin", []string{RejoinRewind, RejoinReimage})
	if a := s.Authentication; a != nil {
		p.Superuser = d.credentials(a.Superuser, "postgresql.authentication.superuser")
		p.Replication = d.credentials(a.Replication, "postgresql.authentication.replication")
		p.Rewind = d.credentials(a.Rewind, "postgresql.authentication.rewind")
	}
}

// ReadsAsOff reports whether PostgreSQL reads v as a boolean's false: off, false or no, or a
// prefix of false or no, or of off long enough to tell it from on; 0; any case, spaces around.
func ReadsAsOff(v string) bool {
	v = strings.ToLower(strings.TrimSpace(v))
	prefix := func(word string, least int) bool { return len(v) >= least && strings.HasPrefix(word, v) }
	return v == "0" || prefix("false", 1) || prefix("no", 1) || prefix("off", 2)
}

// address decodes a host:port setting.
func (d *decoder) address(s *string, key string) string {
	if v, ok := d.str(s, key); !ok || validAddress(v) {
		return v
	}
	d.fail(key, "Invalid address", "%s %s must be host:port, such as \"127.0.0.1:5432\".", base(key), d.quote(d.at(key), *s))
	return ""
}

func validAddress(s string) bool {
	i := strings.LastIndex(s, ":")
	port, err := strconv.Atoi(s[i+1:])
	return i > 0 && strings.TrimSpace(s[:i]) != "" && err == nil && len(s[i+1:]) <= 5 && strings.Trim(s[i+1:], "0123456789") == "" &&
		port >= 1 && port <= 65535
}

func (d *decoder) bootstrap(s *bootstrapSchema) {
	b := &d.cfg.Bootstrap
	b.Method = d.nonEmpty(s.Method, "bootstrap.method")
	initdb := d.options(s.Initdb, "bootstrap.initdb", "list or map", "option", true)
	b.Initdb, b.InitdbRanges, b.InitdbHidden, _ = d.split(initdb)
	b.PostBootstrap = d.nonEmpty(s.PostBootstrap, "bootstrap.post_bootstrap")
	b.Timeout = d.duration(s.Timeout, "bootstrap.timeout")
	b.RecoveryTimeout = d.duration(s.RecoveryTimeout, "bootstrap.recovery_timeout")
}

func (d *decoder) plugin(s *pluginSchema) {
	if d.badLabel("plugin", s.Name, s.NameRange, s.DefRange) {
		return
	}
	key := "plugin." + s.Name + "."
	pin := &PluginPin{Name: s.Name, DefRange: s.DefRange, Path: d.path(s.Path, key+"path")}
	d.cfg.Plugins[s.Name] = pin
	if sum, ok := d.str(s.SHA256, key+"sha256"); ok && sha256Pattern.MatchString(sum) {
		pin.SHA256 = strings.ToLower(sum)
	} else if ok {
		d.fail(key+"sha256", "Invalid sha256",
			"sha256 must be 64 hexadecimal digits (the output of sha256sum); this one has %d characters.", utf8.RuneCountInString(sum))
	}
}

// badName reports a method or plugin name, written at rng, that is not spelt like one.
func (d *decoder) badName(what, name string, rng hcl.Range) bool {
	if labelPattern.MatchString(name) {
		return false
	}
	d.errorAt(rng, "Invalid "+what+" name",
		"The %s name %s must start with a letter or digit and hold only letters, digits, '_', '-' and '.'.", what, d.quote(rng, name))
	return true
}

// badLabel reports a method or plugin block whose label is misspelt or taken by an earlier block.
func (d *decoder) badLabel(what, label string, labelRange, defRange hcl.Range) bool {
	first, dup := d.labels[what+" "+label]
	if d.badName(what, label, labelRange) {
		return true
	} else if dup {
		d.errorAt(defRange, fmt.Sprintf("Duplicate %s %q block", what, label), "Each %s block has its own label. The first is at %s.", what, first.String())
		return true
	}
	d.labels[what+" "+label] = defRange
	return false
}

// New returns the configuration c with the defaults of every setting it leaves out (see
// [Config.ApplyDefaults]): how code that builds a Config without a file (a one-shot command, a
// test) makes one the engine can run, as [Decode] does for a file.
func New(c Config) *Config {
	if c.Methods == nil {
		c.Methods = map[string]*Method{}
	}
	c.ApplyDefaults()
	return &c
}

// ApplyDefaults is the one place where settings left out get their defaults: Decode calls it,
// and so does code that builds a Config itself (a one-shot command without a configuration
// file). It changes nothing that is set, so a second call changes nothing.
func (c *Config) ApplyDefaults() {
	setDefault(&c.LoopWait, DefaultLoopWait)
	setDefault(&c.TTL, DefaultTTL)
	if _, set := c.Ranges["maximum_lag_on_failover"]; !set { // 0 is a setting: no lag at all
		c.MaximumLagOnFailover = DefaultMaximumLagOnFailover
	}
	c.replicationDefaults()
	setDefault(&c.LogLevel, DefaultLogLevel)
	setDefault(&c.PostgreSQL.ConnectAddress, c.PostgreSQL.Listen)
	setDefault(&c.PostgreSQL.PGCtlTimeout, DefaultPGCtlTimeout)
	setDefault(&c.Bootstrap.Method, DefaultBootstrap)
	setDefault(&c.Bootstrap.RecoveryTimeout, DefaultRecoveryTimeout)
	if c.PostgreSQL.RejoinMethods == nil { // an empty list is a setting: never rejoin
		c.PostgreSQL.RejoinMethods = []string{DefaultRejoinMethod}
	}
	setDefault(&c.PostgreSQL.Rejoin, RejoinRewind)
	if len(c.PostgreSQL.CreateReplicaMethods) == 0 {
		c.PostgreSQL.CreateReplicaMethods = []string{DefaultReplicaMethod}
	}
	if _, set := c.Ranges["postgresql.authentication.rewind"]; !set {
		c.PostgreSQL.Rewind = c.PostgreSQL.Superuser
	}
}

func setDefault[T comparable](v *T, def T) {
	if *v == *new(T) {
		*v = def
	}
}

// check runs the checks that look at more than one setting.
func (d *decoder) check() {
	c := d.cfg
	if c.TTL <= c.LoopWait {
		key := "ttl"
		if _, set := c.Ranges[key]; !set {
			key = "loop_wait"
		}
		d.fail(key, "TTL too short", "ttl (%s) must be longer than loop_wait (%s): leases would expire between two refreshes.", c.TTL, c.LoopWait)
	}
	d.checkMethodList("postgresql.create_replica_methods", "create_replica_methods", c.PostgreSQL.CreateReplicaMethods)
	for i, name := range c.PostgreSQL.RejoinMethods {
		d.checkDefined(fmt.Sprintf("postgresql.rejoin_methods[%d]", i), "rejoin_methods", name, RejoinBuiltins)
	}
	d.checkDefined("bootstrap.method", "bootstrap.method", c.Bootstrap.Method, BootstrapBuiltins)
	d.checkStandby()
}

// checkDefined reports a method name, set at key, that is neither a method block nor a builtin.
func (d *decoder) checkDefined(key, setting, name string, builtins []string) {
	if _, ok := d.cfg.Methods[name]; ok || slices.Contains(builtins, name) {
		return
	}
	q, hint := d.quote(d.at(key), name), ""
	if !d.fromFunction(d.at(key)) {
		hint = didYouMean(closest(name, slices.Concat(builtins, slices.Sorted(maps.Keys(d.cfg.Methods)))))
	}
	d.fail(key, "Undefined method", "%s names %s, but there is no method %s block; the methods that work without one are %s.%s",
		setting, q, q, strings.Join(builtins, ", "), hint)
}
