package sdk

import (
	"context"
	"fmt"
)

// Capability is something a plugin can do.
type Capability string

const (
	// CapBootstrap: the plugin can create a new cluster (implements [Bootstrapper]).
	CapBootstrap Capability = "bootstrap"
	// CapClone: the plugin can clone a replica (implements [Cloner]).
	CapClone Capability = "clone"
)

// Path says which of pgimaged's two paths a method is configured for.
type Path int

const (
	PathUnspecified Path = iota
	PathBootstrap
	PathClone
)

func (p Path) String() string {
	switch p {
	case PathBootstrap:
		return "bootstrap"
	case PathClone:
		return "clone"
	}
	return "unspecified"
}

// DescribeRequest asks a plugin who it is. It has no fields yet; it may grow.
type DescribeRequest struct{}

// DescribeResponse tells pgimaged who the plugin is.
type DescribeResponse struct {
	Name        string
	Version     string
	Description string
	// WorksWithoutSource: the plugin can clone with an empty connection string (for example
	// from a backup repository). pgimaged still tries it without a source only when the method
	// sets no_master.
	WorksWithoutSource bool
	// Schema lists the options a method block using the plugin may give; pgimaged checks every
	// block against it before anything runs.
	Schema Schema
}

// Info is what the host learns from Describe: the response plus the capabilities the plugin serves.
type Info struct {
	DescribeResponse
	Capabilities []Capability
}

// Can reports whether the plugin has capability c.
func (i Info) Can(c Capability) bool {
	for _, x := range i.Capabilities {
		if x == c {
			return true
		}
	}
	return false
}

// ValidateRequest carries a method's configuration for checking before anything runs.
type ValidateRequest struct {
	Method   string // the method's label in the configuration
	Path     Path
	Command  string
	NoParams bool
	Options  Options
	// Values are Options decoded against the plugin's schema (filled by [Serve]).
	Values Values
}

// Severity of a [Diagnostic].
type Severity int

const (
	SeverityError Severity = iota
	SeverityWarning
)

// Diagnostic is one problem found by Validate. Option names the option it is about, if any,
// so that pgimaged can point at its file:line:col.
type Diagnostic struct {
	Severity Severity
	Summary  string
	Detail   string
	Option   string
}

// ValidateResponse lists the problems found; none means the configuration is fine.
type ValidateResponse struct {
	Diagnostics []Diagnostic
}

// Errorf is a shorthand for an error diagnostic about option (which may be empty).
func Errorf(option, summary string, detailFormat string, args ...any) Diagnostic {
	return Diagnostic{Severity: SeverityError, Option: option, Summary: summary, Detail: fmt.Sprintf(detailFormat, args...)}
}

// Cluster describes the member being imaged.
type Cluster struct {
	Scope   string
	Name    string
	DataDir string
	BinDir  string
	// ServerVersion is the server_version_num of the binaries in BinDir (150018); 0 if unknown.
	ServerVersion int
}

// Credentials are a role name and password. The password never appears in String or %v.
type Credentials struct {
	Username string
	Password string
}

func (c Credentials) String() string {
	if c.Password == "" {
		return c.Username
	}
	return c.Username + ":" + Mask
}

// GoString masks the password in %#v as well.
func (c Credentials) GoString() string {
	return fmt.Sprintf("sdk.Credentials{Username:%q, Password:%q}", c.Username, maskIfSet(c.Password))
}

// Mask stands in for a secret in anything shown to people.
const Mask = "********"

func maskIfSet(s string) string {
	if s == "" {
		return ""
	}
	return Mask
}

// BootstrapRequest asks a plugin to create a new cluster in Cluster.DataDir, which exists and is empty.
type BootstrapRequest struct {
	Method    string
	Command   string // the method's `command`, for plugins that run one
	NoParams  bool
	Options   Options
	Values    Values // Options decoded against the plugin's schema (filled by [Serve])
	Cluster   Cluster
	Superuser Credentials
	Env       map[string]string
}

// CloneRequest asks a plugin to fill Cluster.DataDir with a replica. ConnString is a libpq
// connection string to the source without a password (PGPASSFILE in Env carries it), or empty
// when there is no running source.
type CloneRequest struct {
	Method     string
	Command    string
	NoParams   bool
	Options    Options
	Values     Values // Options decoded against the plugin's schema (filled by [Serve])
	Cluster    Cluster
	ConnString string
	Env        map[string]string
}

// Result is what a successful bootstrap or clone reports.
type Result struct {
	// RecoverySettings are written by pgimaged before the first start, over the method's recovery_conf.
	RecoverySettings map[string]string
	// Standby asks for standby.signal rather than a recovery that ends.
	Standby bool
	// KeepExistingRecovery: the plugin wrote recovery settings itself (as pgBackRest does); keep them.
	KeepExistingRecovery bool
	Summary              string
}

// Command is one command a method would run, for `pgimaged plan`.
type Command struct {
	Argv []string
	Env  map[string]string
}

// Plan is what a method would do, without doing it.
type Plan struct {
	Commands []Command
	Notes    []string
}

// Unit is what a [Progress] counts.
type Unit int

const (
	UnitBytes   Unit = iota // bytes copied or restored
	UnitFiles               // files (WAL segments, backup files)
	UnitPercent             // Done of Total 100
)

func (u Unit) String() string {
	switch u {
	case UnitFiles:
		return "files"
	case UnitPercent:
		return "percent"
	}
	return "bytes"
}

// Progress is how far a method has come: Done of Total (Total 0 when unknown) in Unit, in Phase.
// Send it when it changes, at most a few times a second; pgimaged shows the latest.
type Progress struct {
	Phase string
	Done  int64
	Total int64
	Unit  Unit
}

// Level is the level of a log line a plugin reports.
type Level int

const (
	LevelInfo Level = iota
	LevelTrace
	LevelDebug
	LevelWarn
	LevelError
)

func (l Level) String() string {
	switch l {
	case LevelTrace:
		return "trace"
	case LevelDebug:
		return "debug"
	case LevelWarn:
		return "warn"
	case LevelError:
		return "error"
	}
	return "info"
}

// Reporter carries a running method's log lines and progress back to pgimaged.
// It is safe for concurrent use. keyvals alternate keys and values, as in log/slog.
type Reporter interface {
	Log(level Level, msg string, keyvals ...any)
	Progress(p Progress)
}

// Plugin is what every plugin implements. What else it can do is discovered by assertion:
// [Validator], [Bootstrapper], [Cloner], [BootstrapPlanner], [ClonePlanner].
type Plugin interface {
	Describe(ctx context.Context, req DescribeRequest) (DescribeResponse, error)
}

// Validator checks a method's options before anything runs.
type Validator interface {
	Validate(ctx context.Context, req ValidateRequest) (ValidateResponse, error)
}

// Bootstrapper creates a new cluster.
type Bootstrapper interface {
	Bootstrap(ctx context.Context, req BootstrapRequest, r Reporter) (Result, error)
}

// Cloner clones a replica.
type Cloner interface {
	Clone(ctx context.Context, req CloneRequest, r Reporter) (Result, error)
}

// BootstrapPlanner tells what Bootstrap would run.
type BootstrapPlanner interface {
	PlanBootstrap(ctx context.Context, req BootstrapRequest) (Plan, error)
}

// ClonePlanner tells what Clone would run.
type ClonePlanner interface {
	PlanClone(ctx context.Context, req CloneRequest) (Plan, error)
}

// capabilities lists what p can do, from the interfaces it implements.
func capabilities(p Plugin) []Capability {
	var caps []Capability
	if _, ok := p.(Bootstrapper); ok {
		caps = append(caps, CapBootstrap)
	}
	if _, ok := p.(Cloner); ok {
		caps = append(caps, CapClone)
	}
	return caps
}
