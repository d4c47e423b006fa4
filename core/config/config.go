package config

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/pgimaged/pgimaged/sdk"
)

// Defaults applied when the configuration leaves a setting out.
const (
	DefaultLoopWait = 10 * time.Second
	DefaultTTL      = 30 * time.Second
	// DefaultMaximumLagOnFailover is Patroni's maximum_lag_on_failover: how many bytes a
	// switchover candidate may be behind the leader.
	DefaultMaximumLagOnFailover = 1 << 20
	DefaultPGCtlTimeout         = 60 * time.Second
	DefaultLogLevel             = "info"
	DefaultReplicaMethod        = "basebackup"
	DefaultBootstrap            = "initdb"
	// DefaultNamespace is the dcs block's namespace, as in Patroni.
	DefaultNamespace = "/service/"
	// DefaultRecoveryTimeout bounds the wait for a promoting recovery after a bootstrap.
	DefaultRecoveryTimeout = time.Hour
)

// DCS kinds.
const (
	DCSFile = "file"
	DCSEtcd = "etcd"
)

// ReplicaBuiltins are the methods create_replica_methods may name without a `method` block.
var ReplicaBuiltins = []string{"basebackup", "pgbackrest", "wale"}

// RejoinBuiltins are the methods rejoin_methods may name without a `method` block.
var RejoinBuiltins = []string{"rewind"}

// DefaultRejoinMethod is what rejoin_methods holds when it is left out.
const DefaultRejoinMethod = "rewind"

// The values of postgresql.rejoin: what happens to a directory that cannot follow the leader
// once every rejoin method failed.
const (
	// RejoinRewind: it stays as it is, needing a reinit (the default).
	RejoinRewind = "rewind"
	// RejoinReimage: the replica methods replace it (Patroni's
	// remove_data_directory_on_rewind_failure).
	RejoinReimage = "reimage"
)

// BootstrapBuiltins are the methods bootstrap.method may name without a `method` block.
var BootstrapBuiltins = []string{"initdb", "pgbackrest", "wale"}

// Config is a decoded configuration file. Ranges holds where each setting was written, by
// path (see [Config.RangeOf]).
type Config struct {
	Filename  string
	Scope     string
	Name      string
	DataDir   string
	PluginDir string // "" when not set: the caller looks beside its binary
	LoopWait  time.Duration
	TTL       time.Duration
	// MaximumLagOnFailover is how many bytes of WAL a switchover candidate may lack.
	MaximumLagOnFailover int64
	// FailsafeMode is Patroni's failsafe_mode: while the DCS cannot be reached, the primary
	// keeps answering /primary as long as every member it knows accepts it over the API.
	FailsafeMode bool
	Tags         map[string]any
	Source       string // clone source for a one-shot clone; never carries a password
	LogLevel     string
	LogFormat    string // "json" (hclog's JSON format), or hclog's text when "" or "text"
	LogFile      string // appended to instead of stderr when set
	DCS          DCS
	API          API
	PostgreSQL   PostgreSQL
	Bootstrap    Bootstrap
	Methods      map[string]*Method    // by label
	Plugins      map[string]*PluginPin // by label
	// StandbyCluster is the `standby_cluster` block: this cluster follows a remote primary or
	// an archive. nil when the block is absent.
	StandbyCluster *StandbyCluster
	Ranges         map[string]hcl.Range
	files          map[string]*hcl.File

	// Replication is how the primary keeps its replicas: slots, synchronous replication.
	Replication Replication
}

// DCS is the `dcs "<kind>" { ... }` block. Kind is "" when the block is absent: the caller then
// uses the file DCS at a default path. Paths are absolute; CertFile and KeyFile come together.
type DCS struct {
	Kind        string
	Path        string
	Endpoints   []string
	Username    string
	Password    string
	DialTimeout time.Duration // 0 when not set
	CAFile      string        // PEM certificates that sign etcd's server certificate
	CertFile    string        // PEM client certificate for etcd's client-cert-auth
	KeyFile     string        // PEM private key of CertFile
	Namespace   string        // first element of every key; DefaultNamespace when not set
	DefRange    hcl.Range
}

// PostgreSQL is the `postgresql { ... }` block.
type PostgreSQL struct {
	BinDir               string // "" when not set: the caller finds the binaries
	Listen               string
	ConnectAddress       string // defaults to Listen
	Parameters           map[string]string
	PGHBA                []string
	PGCtlTimeout         time.Duration
	Superuser            Credentials
	Replication          Credentials
	Rewind               Credentials // the role a pg_rewind method connects as; defaults to Superuser
	CreateReplicaMethods []string    // defaults to ["basebackup"]
	// RejoinMethods bring a former primary, or a standby that went past the leader's timeline
	// switch, back in line (defaults to ["rewind"]; empty: never); Rejoin says what follows
	// when they all fail (RejoinRewind, RejoinReimage).
	RejoinMethods []string
	Rejoin        string
}

// Bootstrap is the `bootstrap { ... }` block.
type Bootstrap struct {
	Method          string      // defaults to "initdb"
	Initdb          sdk.Options // long options for initdb, in source order
	InitdbRanges    []hcl.Range // parallel to Initdb
	InitdbHidden    []bool      // parallel to Initdb: the value is read by env() or file()
	PostBootstrap   string
	Timeout         time.Duration // whole bootstrap method; 0 when not set
	RecoveryTimeout time.Duration // wait for a promoting recovery to end; defaults to 1h
}

// Method is a `method "<label>" { ... }` block: a bootstrap or replica creation method.
// recovery_conf's `standby_mode` goes to StandbyMode (standby.signal, as in Patroni). Options
// are the block's other attributes and the elements of its `options` list, in source order.
type Method struct {
	Label                    string
	Plugin                   string
	Command                  string
	CommandWritten           string // the program as written, when Command holds it resolved (see ProgramDir)
	NoParams                 bool
	NoMaster                 bool // no_master or its alias no_leader
	KeepData                 bool
	Attempts                 int // 0 when not set: the caller applies the plugin's default
	RetryWait                time.Duration
	Timeout                  time.Duration
	RecoveryConf             map[string]string
	StandbyMode              bool
	KeepExistingRecoveryConf bool
	Options                  sdk.Options
	OptionRanges             []hcl.Range
	OptionHidden             []bool               // parallel to Options: read (in whole or in part) by env() or file()
	OptionSecrets            []string             // what env() and file() read in Options, to be masked
	OptionsBody              hcl.Body             // the attributes pgimaged does not read itself; nil without a block
	KeyRanges                map[string]hcl.Range // where the attributes pgimaged reads were written
	DefRange                 hcl.Range
}

// PluginPin is a `plugin "<name>" { path, sha256 }` block.
type PluginPin struct {
	Name     string
	Path     string // "" when not set: the plugin is looked up in plugin_dir
	SHA256   string // lower-case hex; "" when not set
	DefRange hcl.Range
}

// String describes the DCS settings with the password masked.
func (d DCS) String() string {
	type plain DCS
	d.Password = maskSecret(d.Password)
	return fmt.Sprintf("%+v", plain(d))
}

// GoString is like String for the %#v verb.
func (d DCS) GoString() string { return "config.DCS" + d.String() }

func maskSecret(s string) string {
	if s == "" {
		return ""
	}
	return sdk.Mask
}

// Load reads, decodes and checks the configuration file filename. The Config is never nil, for
// [WriteDiagnostics]; after errors it is partial and must not be used otherwise.
func Load(filename string) (*Config, hcl.Diagnostics) {
	f, err := os.Open(filename)
	if err == nil {
		defer f.Close()
		var src []byte
		if src, err = io.ReadAll(io.LimitReader(f, MaxConfigSize+1)); err == nil {
			cfg, diags := Parse(filename, src)
			if fi, err := f.Stat(); err == nil && len(src) > MaxConfigSize { // say how large
				diags = tooLarge(filename, max(fi.Size(), int64(len(src))))
			}
			return cfg, diags
		}
	}
	return &Config{Filename: filename, files: map[string]*hcl.File{}}, hcl.Diagnostics{{Severity: hcl.DiagError,
		Summary: "Failed to read configuration file", Detail: fmt.Sprintf("While reading %q: %s.", filename, unwrapPathError(err))}}
}

// Files returns the parsed source files, for [WriteDiagnostics].
func (c *Config) Files() map[string]*hcl.File { return c.files }

// Method returns the method block labelled label, or a method with only the label set when
// there is no such block (basebackup, for example, needs none).
func (c *Config) Method(label string) *Method {
	if m, ok := c.Methods[label]; ok {
		return m
	}
	return &Method{Label: label}
}

// RangeOf returns where the setting at path was written, else where its enclosing setting was
// ("postgresql.create_replica_methods[1]" → "postgresql.create_replica_methods" →
// "postgresql"), else the start of the file.
func (c *Config) RangeOf(path string) hcl.Range {
	for p := path; p != ""; p = p[:max(strings.LastIndexAny(p, ".["), 0)] {
		if r, ok := c.Ranges[p]; ok {
			return r
		}
	}
	return hcl.Range{Filename: c.Filename, Start: hcl.InitialPos, End: hcl.InitialPos}
}

// DiagnosticAt makes a diagnostic that points at the setting at path (see [Config.RangeOf]).
func (c *Config) DiagnosticAt(path string, severity hcl.DiagnosticSeverity, summary, detail string) *hcl.Diagnostic {
	r := c.RangeOf(path)
	return &hcl.Diagnostic{Severity: severity, Summary: summary, Detail: detail, Subject: &r}
}

// requirable are the settings [Config.Require] can check.
var requirable = []string{"plugin_dir", "source", "dcs", "postgresql.bin_dir", "postgresql.listen",
	"postgresql.authentication.superuser", "postgresql.authentication.replication"}

// Require reports each setting in paths that the configuration leaves out although purpose
// (such as "pgimaged run") needs it: one of requirable, which have no defaults.
func (c *Config) Require(purpose string, paths ...string) hcl.Diagnostics {
	var diags hcl.Diagnostics
	for _, p := range paths {
		if _, set := c.Ranges[p]; !slices.Contains(requirable, p) {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Unknown setting",
				Detail: fmt.Sprintf("Cannot require %q: the settings that can be required are %s.", p, strings.Join(requirable, ", "))})
		} else if !set {
			diags = append(diags, c.DiagnosticAt(p, hcl.DiagError, "Missing required setting", fmt.Sprintf("%s needs %q to be set.", purpose, p)))
		}
	}
	return diags
}

// OptionDiagnostic makes a diagnostic about the option (or key pgimaged reads, such as
// "command") called optionName, pointing at where it was last written, else at the block.
func (m *Method) OptionDiagnostic(optionName string, severity hcl.DiagnosticSeverity, summary, detail string) *hcl.Diagnostic {
	r, ok := m.KeyRanges[optionName]
	if !ok {
		r = m.DefRange
	}
	for i := min(len(m.Options), len(m.OptionRanges)) - 1; i >= 0; i-- {
		if m.Options[i].Name == optionName {
			r = m.OptionRanges[i]
			break
		}
	}
	return &hcl.Diagnostic{Severity: severity, Summary: summary, Detail: detail, Subject: &r}
}

// PluginNameFor picks the plugin that runs method m: its `plugin` attribute; else "script" when
// `command` is set; else the first of the label and the label lower-cased without '_' and '-'
// (wal_e → wale) that available says exists; else "script" to run the label as a program found
// in PATH, as Patroni does (see [RunsItsName]; not for a builtin method, nor without the script
// plugin); else "", which the caller reports.
func PluginNameFor(m *Method, available func(name string) bool) string {
	if m.Plugin != "" {
		return m.Plugin
	}
	if m.Command != "" {
		return "script"
	}
	squeezed := strings.ToLower(strings.NewReplacer("_", "", "-", "").Replace(m.Label))
	for _, name := range []string{m.Label, squeezed} {
		if name != "" && available != nil && available(name) {
			return name
		}
	}
	return fallbackPlugin(m, available)
}

// String describes the method with the values read by env() or file() masked.
func (m Method) String() string {
	type plain Method
	m.Options = maskOptions(m.Options, m.OptionHidden, m.OptionSecrets)
	m.OptionSecrets = slices.Repeat([]string{sdk.Mask}, len(m.OptionSecrets))
	return fmt.Sprintf("%+v", plain(m))
}

// GoString is like String for the %#v verb.
func (m Method) GoString() string { return "config.Method" + m.String() }

// String describes the bootstrap settings with initdb's values read by env() or file() masked.
func (b Bootstrap) String() string {
	type plain Bootstrap
	b.Initdb = maskOptions(b.Initdb, b.InitdbHidden, nil)
	return fmt.Sprintf("%+v", plain(b))
}

// GoString is like String for the %#v verb.
func (b Bootstrap) GoString() string { return "config.Bootstrap" + b.String() }

// maskOptions is opts with the hidden options' values masked, and secrets in lists and maps.
func maskOptions(opts sdk.Options, hidden []bool, secrets []string) sdk.Options {
	mask := sdk.Masker(secrets)
	out := slices.Clone(opts)
	for i, o := range out {
		if i >= len(hidden) || !hidden[i] {
			continue
		}
		out[i].Value = maskSecret(o.Value)
		if o.List != nil {
			out[i].List = mask.MaskArgv(o.List)
		}
		if o.Map != nil {
			out[i].Map = map[string]string{}
			for k, v := range o.Map {
				out[i].Map[mask.Mask(k)] = mask.Mask(v)
			}
		}
	}
	return out
}
