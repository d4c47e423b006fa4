package main

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"sync"

	"github.com/pgimaged/pgimaged/sdk"
	"github.com/pgimaged/pgimaged/sdk/libpq"
)

// Version of this plugin.
const Version = "0.1.0"

// DefaultExecutable is the pgBackRest program run when the method gives no `command`.
const DefaultExecutable = "pgbackrest"

// Plugin restores data directories with pgBackRest.
type Plugin struct{}

var (
	_ sdk.Plugin           = (*Plugin)(nil)
	_ sdk.Validator        = (*Plugin)(nil)
	_ sdk.Cloner           = (*Plugin)(nil)
	_ sdk.Bootstrapper     = (*Plugin)(nil)
	_ sdk.ClonePlanner     = (*Plugin)(nil)
	_ sdk.BootstrapPlanner = (*Plugin)(nil)
)

// New returns the pgBackRest plugin.
func New() *Plugin { return &Plugin{} }

// Describe says who the plugin is. A restore needs only the repository, not a running member.
func (p *Plugin) Describe(context.Context, sdk.DescribeRequest) (sdk.DescribeResponse, error) {
	return sdk.DescribeResponse{
		Schema:             schema,
		Name:               "pgbackrest",
		Version:            Version,
		Description:        "restores a replica or a new cluster from a pgBackRest repository",
		WorksWithoutSource: true,
	}, nil
}

// Option names the plugin reads itself.
const (
	optStanza          = "stanza"
	optType            = "type"
	optDelta           = "delta"
	optNoDelta         = "no-delta"
	optLogLevelConsole = "log-level-console"
	optTarget          = "target"
	optTargetAction    = "target-action"
)

const dataDirReason = "pgimaged owns the data directory and passes --pg1-path=<data_dir> itself"

// schema types the restore options the plugin reads or that are commonly given; it is open:
// pgBackRest has many more options, and any other is passed through as --name=value.
var schema = sdk.Schema{Open: true, Options: []sdk.OptionSpec{
	{Name: optStanza, Type: sdk.TypeString, Description: "the pgBackRest stanza (default: the cluster's scope)"},
	{Name: optType, Type: sdk.TypeEnum, EnumValues: []string{"default", "immediate", "lsn", "name", "preserve", "standby", "time", "xid", "none"},
		Description: "the recovery type (default for a clone: standby)"},
	{Name: optDelta, Type: sdk.TypeBool, Description: "restore with checksums over what is in the data directory (default for a clone: true)"},
	{Name: optLogLevelConsole, Type: sdk.TypeEnum, EnumValues: []string{"off", "error", "warn", "info", "detail", "debug", "trace"},
		Description: "pgBackRest's console log level (default detail: it feeds progress)"},
	{Name: optTarget, Type: sdk.TypeString, Description: "the recovery target (a time, xid, name or lsn, as type says)"},
	{Name: optTargetAction, Type: sdk.TypeEnum, EnumValues: []string{"pause", "promote", "shutdown"}, Description: "what recovery does at the target"},
	{Name: "target-exclusive", Type: sdk.TypeBool, Description: "stop just before the target rather than just after"},
	{Name: "target-timeline", Type: sdk.TypeString, Description: "the timeline to recover along (current, latest or a number)"},
	{Name: "set", Type: sdk.TypeString, Description: "the backup set to restore (default: the latest)"},
	{Name: "process-max", Type: sdk.TypeInt, Min: sdk.Bound(1), Max: sdk.Bound(999), Description: "processes restoring in parallel"},
	{Name: "repo", Type: sdk.TypeInt, Min: sdk.Bound(1), Max: sdk.Bound(256), Description: "the repository to restore from"},
	{Name: "config", Type: sdk.TypeString, Description: "pgBackRest's configuration file"},
	{Name: "pg1-path", Aliases: []string{"pg-path", "db-path", "db1-path"}, Refused: dataDirReason},
}}

// dataDirOption matches the options that name PostgreSQL's data directory (pg1-path, pg-path and
// the older db-path spellings): pgimaged owns the data directory and passes --pg1-path itself.
var dataDirOption = regexp.MustCompile(`^(pg|db)[0-9]*-path$`)

// Validate checks a method's options before anything runs. Unknown options are passed through:
// pgBackRest itself knows best which options it accepts.
func (p *Plugin) Validate(_ context.Context, req sdk.ValidateRequest) (sdk.ValidateResponse, error) {
	return sdk.ValidateResponse{Diagnostics: checkOptions(req.Path, req.Command, req.Options)}, nil
}

func checkOptions(path sdk.Path, command string, opts sdk.Options) []sdk.Diagnostic {
	var diags []sdk.Diagnostic
	if command != "" {
		if argv, err := sdk.SplitCommand(command); err != nil {
			diags = append(diags, sdk.Errorf("command", "cannot split command", "%v", err))
		} else if len(argv) == 0 {
			diags = append(diags, sdk.Errorf("command", "command is empty", "give the pgBackRest executable or leave command out"))
		}
	}
	for _, o := range opts {
		if err := sdk.CheckName(o.Name); err != nil {
			diags = append(diags, sdk.Errorf(o.Name, "invalid option name", "%v", err))
			continue
		}
		if _, _, typed := schema.Lookup(o.Name); typed && o.Name != optStanza {
			continue // checked by pgimaged against the schema
		}
		switch {
		case dataDirOption.MatchString(o.Name):
			diags = append(diags, sdk.Errorf(o.Name, "pgimaged owns the data directory",
				"pgimaged passes --pg1-path=<data_dir> itself; remove %q from the method", o.Name))
		case o.Name == optStanza && (o.Flag || strings.TrimSpace(o.Value) == ""):
			diags = append(diags, sdk.Errorf(o.Name, "stanza is empty",
				"give the pgBackRest stanza, or leave it out to use the cluster's scope"))
		}
	}
	typ, hasType := opts.Get(optType)
	switch path {
	case sdk.PathClone:
		if hasType && typ != "standby" {
			diags = append(diags, sdk.Diagnostic{Severity: sdk.SeverityWarning, Option: optType,
				Summary: "a replica restored with type " + typ + " does not start as a standby by itself",
				Detail:  "pgimaged still asks for standby mode; leave type out to get --type=standby"})
		}
	case sdk.PathBootstrap:
		if typ == "standby" {
			diags = append(diags, sdk.Diagnostic{Severity: sdk.SeverityWarning, Option: optType,
				Summary: "a bootstrap restored with type standby never becomes a primary",
				Detail:  "use type default, time, xid, name or lsn for a new cluster"})
		}
		if opts.Has(optTarget) && !opts.Has(optTargetAction) {
			diags = append(diags, sdk.Diagnostic{Severity: sdk.SeverityWarning, Option: optTarget,
				Summary: "recovery pauses at the target unless target-action is set",
				Detail:  `PostgreSQL's default recovery_target_action is pause; set target-action = "promote" so that the new cluster opens`})
		}
	}
	return diags
}

// invocation is one pgBackRest restore to run.
type invocation struct {
	argv []string
	// detailAdded: the plugin asked for --log-level-console=detail to follow progress, so the
	// per-file lines stay out of the log.
	detailAdded bool
	stanza      string
	path        sdk.Path
}

func (p *Plugin) executable(command string) ([]string, error) {
	if command != "" {
		argv, err := sdk.SplitCommand(command)
		if err != nil {
			return nil, fmt.Errorf("while splitting the method's command: %w", err)
		}
		if len(argv) == 0 {
			return nil, fmt.Errorf("the method's command is empty")
		}
		return argv, nil
	}
	return []string{DefaultExecutable}, nil
}

// buildRestore renders the restore command line. standby asks for a replica (--delta and, unless
// the user chose a type, --type=standby when standbyType says so).
func (p *Plugin) buildRestore(path sdk.Path, command string, opts sdk.Options, cluster sdk.Cluster, standbyType bool) (invocation, error) {
	if err := sdk.CheckDiagnostics(checkOptions(path, command, opts)); err != nil {
		return invocation{}, err
	}
	if cluster.DataDir == "" {
		return invocation{}, fmt.Errorf("while preparing the pgBackRest restore: %w", &sdk.OptionsError{Diagnostics: []sdk.Diagnostic{
			sdk.Errorf("", "no data directory", "the request names no data directory")}})
	}
	dataDir := filepath.Clean(cluster.DataDir)
	for _, o := range opts {
		values := append([]string{o.Value}, o.List...)
		for _, v := range o.Map {
			values = append(values, v)
		}
		for _, v := range values {
			if !o.Flag && v != "" && filepath.IsAbs(v) && filepath.Clean(v) == dataDir {
				return invocation{}, &sdk.OptionsError{Diagnostics: []sdk.Diagnostic{sdk.Errorf(o.Name,
					"option names the data directory", "pgimaged passes --pg1-path=%s itself", dataDir)}}
			}
		}
	}
	stanza, ok := opts.Get(optStanza)
	if !ok {
		stanza = cluster.Scope
	}
	if strings.TrimSpace(stanza) == "" {
		return invocation{}, &sdk.OptionsError{Diagnostics: []sdk.Diagnostic{sdk.Errorf(optStanza,
			"no stanza", "set the stanza option or give the cluster a scope")}}
	}
	exe, err := p.executable(command)
	if err != nil {
		return invocation{}, err
	}
	inv := invocation{stanza: stanza, path: path}
	inv.argv = append(inv.argv, exe...)
	inv.argv = append(inv.argv, "--stanza="+stanza, "--pg1-path="+dataDir)
	if path == sdk.PathClone {
		if !opts.Has(optDelta) && !opts.Has(optNoDelta) {
			inv.argv = append(inv.argv, "--delta")
		}
		if standbyType && !opts.Has(optType) {
			inv.argv = append(inv.argv, "--type=standby")
		}
	}
	if !opts.Has(optLogLevelConsole) {
		inv.argv = append(inv.argv, "--log-level-console=detail")
		inv.detailAdded = true
	}
	for _, o := range opts.Without(optStanza) {
		inv.argv = append(inv.argv, renderOption(o)...)
	}
	inv.argv = append(inv.argv, "restore")
	return inv, nil
}

// renderOption renders o as pgBackRest's long options. Booleans become the option or its negation
// (`delta = true` is --delta, `delta = false` is --no-delta), as pgBackRest spells them. A list
// repeats the option once per element and a map once per key=value entry, as pgBackRest takes
// its repeatable options (`db-include = ["db1", "db2"]`, `recovery-option = { k = "v" }`).
func renderOption(o sdk.Option) []string {
	if o.List != nil || o.Map != nil {
		return o.Args()
	}
	if spec, _, _ := schema.Lookup(o.Name); spec.Type == sdk.TypeBool && !o.Flag {
		if on, err := sdk.ParseBool(o.Value); err == nil {
			o = sdk.Option{Name: o.Name, Value: map[bool]string{true: "true", false: "false"}[on]}
		}
	}
	if !o.Flag {
		switch o.Value {
		case "true":
			return []string{"--" + o.Name}
		case "false":
			return []string{"--no-" + o.Name}
		}
	}
	return []string{o.String()}
}

// Clone restores a replica from the repository into the (empty, or kept) data directory.
func (p *Plugin) Clone(ctx context.Context, req sdk.CloneRequest, r sdk.Reporter) (sdk.Result, error) {
	if err := ctx.Err(); err != nil {
		return sdk.Result{}, err
	}
	standby := p.wantsStandbyType(ctx, req.Options, req.Cluster, r)
	inv, err := p.buildRestore(sdk.PathClone, req.Command, req.Options, req.Cluster, standby)
	if err != nil {
		return sdk.Result{}, err
	}
	return p.restore(ctx, inv, req.Env, r)
}

// Bootstrap restores a new cluster from the repository, to the point the options name (for
// example type = "time", target = "...", target-action = "promote").
func (p *Plugin) Bootstrap(ctx context.Context, req sdk.BootstrapRequest, r sdk.Reporter) (sdk.Result, error) {
	if err := ctx.Err(); err != nil {
		return sdk.Result{}, err
	}
	inv, err := p.buildRestore(sdk.PathBootstrap, req.Command, req.Options, req.Cluster, false)
	if err != nil {
		return sdk.Result{}, err
	}
	return p.restore(ctx, inv, req.Env, r)
}

// PlanClone says what Clone would run.
func (p *Plugin) PlanClone(ctx context.Context, req sdk.CloneRequest) (sdk.Plan, error) {
	standby := p.wantsStandbyType(ctx, req.Options, req.Cluster, nil)
	inv, err := p.buildRestore(sdk.PathClone, req.Command, req.Options, req.Cluster, standby)
	if err != nil {
		return sdk.Plan{}, err
	}
	notes := []string{
		"pgBackRest writes restore_command and the standby settings itself; pgimaged keeps them",
		"a delta restore reuses matching files only when the method sets keep_data = true",
	}
	if req.ConnString == "" {
		notes = append(notes, "no running source is needed: the replica is restored from the repository")
	}
	return sdk.Plan{Commands: []sdk.Command{{Argv: inv.argv}}, Notes: notes}, nil
}

// PlanBootstrap says what Bootstrap would run.
func (p *Plugin) PlanBootstrap(_ context.Context, req sdk.BootstrapRequest) (sdk.Plan, error) {
	inv, err := p.buildRestore(sdk.PathBootstrap, req.Command, req.Options, req.Cluster, false)
	if err != nil {
		return sdk.Plan{}, err
	}
	return sdk.Plan{Commands: []sdk.Command{{Argv: inv.argv}}, Notes: []string{
		"pgBackRest writes the recovery settings itself; pgimaged keeps them and waits for recovery to end",
	}}, nil
}

// wantsStandbyType reports whether a clone asks pgBackRest for --type=standby: for PostgreSQL 12
// and later, whose standby mode is a signal file pgBackRest writes.
func (p *Plugin) wantsStandbyType(ctx context.Context, opts sdk.Options, c sdk.Cluster, r sdk.Reporter) bool {
	if opts.Has(optType) {
		return false
	}
	v := c.ServerVersion
	if v == 0 {
		var err error
		v, err = libpq.BinVersion(ctx, c.BinDir)
		if err != nil {
			if r != nil {
				r.Log(sdk.LevelWarn, "cannot tell the PostgreSQL version; asking pgBackRest for a standby restore", "error", err.Error())
			}
			return true
		}
	}
	return v >= 120000
}

// restore runs pgBackRest and turns its output into progress. pgBackRest writes the recovery
// settings itself (standby mode too, for a replica), so pgimaged keeps them; the summary names
// the backup set restored.
func (p *Plugin) restore(ctx context.Context, inv invocation, env map[string]string, r sdk.Reporter) (sdk.Result, error) {
	out := &outputWatcher{rep: r, quietDetail: inv.detailAdded}
	progress(r, sdk.Progress{Phase: phaseRestore, Total: 100, Unit: sdk.UnitPercent})
	err := sdk.Run(ctx, sdk.Process{Argv: inv.argv, Env: env, OnLine: out.line}, r)
	if err != nil {
		return sdk.Result{}, out.failure(inv.stanza, err)
	}
	progress(r, sdk.Progress{Phase: phaseRestore, Done: 100, Total: 100, Unit: sdk.UnitPercent})
	what := "new cluster"
	if inv.path == sdk.PathClone {
		what = "replica"
	}
	summary := fmt.Sprintf("restored a %s from pgBackRest stanza %q", what, inv.stanza)
	if set := out.backupSet(); set != "" {
		summary += " (backup set " + set + ")"
	}
	return sdk.Result{Standby: inv.path == sdk.PathClone, KeepExistingRecovery: true, Summary: summary}, nil
}

func progress(r sdk.Reporter, p sdk.Progress) {
	if r != nil {
		r.Progress(p)
	}
}

// phaseRestore is the progress phase of a pgBackRest restore.
const phaseRestore = "restore"

var (
	// restoreFileLine is pgBackRest's per-file line at log level detail:
	// "P01 DETAIL: restore file /d/base/5/1255 (768KB, 3.42%) checksum ..." or
	// "... restore file /d/base/5/1255 - exists and matches backup (768KB, 3.42%) checksum ...".
	restoreFileLine = regexp.MustCompile(`DETAIL: restore file .*\([^,()]+, ([0-9]+(?:\.[0-9]+)?)%\)`)
	// backupSetLine is "INFO: repo1: restore backup set 20261122-014805F, recovery will start at ...".
	backupSetLine = regexp.MustCompile(`restore backup set ([^\s,]+)`)
	// errorLine is pgBackRest's error: "ERROR: [075]: no backup set found to restore".
	errorLine = regexp.MustCompile(`ERROR: \[[0-9]+\]: .*`)
	// missingStanzaLine is the warning pgBackRest gives for a stanza the repository lacks.
	missingStanzaLine = regexp.MustCompile(`unable to load info file '[^']*/backup\.info'`)
)

// outputWatcher follows pgBackRest's console output: progress, the backup set, errors.
type outputWatcher struct {
	rep         sdk.Reporter
	quietDetail bool

	mu            sync.Mutex
	lastPct       int64
	set           string
	errors        []string
	missingStanza bool
}

func (w *outputWatcher) line(_, line string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if m := restoreFileLine.FindStringSubmatch(line); m != nil {
		var pct float64
		if _, err := fmt.Sscanf(m[1], "%g", &pct); err == nil {
			done := int64(pct)
			if done > 100 {
				done = 100
			}
			if done > w.lastPct {
				w.lastPct = done
				progress(w.rep, sdk.Progress{Phase: phaseRestore, Done: done, Total: 100, Unit: sdk.UnitPercent})
			}
		}
		return !w.quietDetail
	}
	if m := backupSetLine.FindStringSubmatch(line); m != nil && w.set == "" {
		w.set = m[1]
	}
	if m := errorLine.FindString(line); m != "" {
		w.errors = append(w.errors, m)
	}
	if missingStanzaLine.MatchString(line) {
		w.missingStanza = true
	}
	if w.quietDetail && strings.Contains(line, " DETAIL: ") {
		return false
	}
	return true
}

func (w *outputWatcher) backupSet() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.set
}

// failure explains a failed restore with pgBackRest's own error lines.
func (w *outputWatcher) failure(stanza string, err error) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	msg := fmt.Sprintf("while restoring stanza %q with pgBackRest", stanza)
	if w.missingStanza {
		msg += fmt.Sprintf(": the repository has no stanza %q (has stanza-create been run?)", stanza)
	}
	if len(w.errors) > 0 {
		msg += ": " + strings.Join(w.errors, "; ")
	}
	return sdk.Failed(fmt.Errorf("%s: %w", msg, err))
}
