package cli

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/hcl/v2"

	"github.com/pgimaged/pgimaged/core/config"
	"github.com/pgimaged/pgimaged/core/dcs"
	"github.com/pgimaged/pgimaged/core/engine"
	"github.com/pgimaged/pgimaged/core/pg"
	"github.com/pgimaged/pgimaged/core/plugin"
	"github.com/pgimaged/pgimaged/sdk"
)

func pluginProtocol() int { return sdk.ProtocolVersion }

// pluginRow is one line of `pgimaged plugins`.
type pluginRow struct {
	plugin.Entry
	Version            string   `json:"version,omitempty"`
	Description        string   `json:"description,omitempty"`
	Warning            string   `json:"warning,omitempty"`
	Capabilities       []string `json:"capabilities,omitempty"`
	WorksWithoutSource bool     `json:"works_without_source"`
	// Checked is what the binary's sha256 is compared with before it starts: "pin" (a plugin
	// block's sha256), "lock" (the lock file's entry), "pin+lock", or "none".
	Checked string `json:"checked"`
	Error   string `json:"error,omitempty"`
}

// checkedAgainst is a plugin's CHECKED column: what its sha256 is compared with at launch.
// The lock file counts only with a configuration, as only then is it enforced.
func checkedAgainst(en plugin.Entry, lock *plugin.Lock) string {
	locked := false
	if lock != nil {
		_, locked = lock.Entries[en.Name]
	}
	switch {
	case en.Pinned && locked:
		return "pin+lock"
	case en.Pinned:
		return "pin"
	case locked:
		return "lock"
	}
	return "none"
}

func runPlugins(ctx context.Context, e *env, args []string) int {
	if len(args) > 0 && pluginsSubcommands[args[0]] != nil {
		return pluginsSubcommands[args[0]](ctx, e, args[1:])
	}
	c, fs := newCommand(e, "plugins", "[-config FILE] [-plugin-dir DIR] [-json]\n       pgimaged plugins show|install|verify|check ... (-h for each)", true)
	dir := fs.String("plugin-dir", "", pluginDirUsage)
	if code, ok := parseFlags(e, fs, args, false); !ok {
		return code
	}
	cfg, pdir, lock, code := pluginPlace(e, c.configFile, *dir, "")
	if code != 0 {
		return code
	}
	cat := &plugin.Catalog{Dir: pdir}
	if cfg != nil {
		cat.LockFile, cat.Pins = lock, pins(cfg)
	}
	entries, err := cat.List()
	if err != nil {
		return e.failf(exitFailed, "%v", err)
	}
	var locked *plugin.Lock
	if cat.LockFile != "" {
		if locked, err = plugin.ReadLock(cat.LockFile); err != nil {
			return e.failf(exitFailed, "%v", err)
		}
	}
	rows := make([]pluginRow, 0, len(entries))
	refused := 0
	for _, en := range entries {
		row := pluginRow{Entry: en, Checked: checkedAgainst(en, locked)}
		inst, err := cat.Launch(ctx, en.Name)
		if err != nil {
			row.Error = err.Error()
			refused++
		} else {
			row.Version = inst.Info.Version
			row.Description = inst.Info.Description
			if inst.Info.Name != en.Name {
				row.Warning = fmt.Sprintf("describes itself as %q", inst.Info.Name)
			}
			for _, cp := range inst.Info.Capabilities {
				row.Capabilities = append(row.Capabilities, string(cp))
			}
			row.WorksWithoutSource = inst.Info.WorksWithoutSource
			inst.Kill()
		}
		rows = append(rows, row)
	}
	code = exitOK
	if refused > 0 {
		code = exitRefused // a plugin the agent would not start either
	}
	if c.jsonOut {
		writeJSON(e.stdout, rows)
		return code
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tVERSION\tCAPABILITIES\tCHECKED\tSHA256\tPATH\tDESCRIPTION")
	for _, r := range rows {
		v := r.Version
		if r.Error != "" {
			v = "(refused, see below)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, v, strings.Join(r.Capabilities, ","), r.Checked, r.SHA256[:16]+"…", r.Path, r.Description)
	}
	_ = tw.Flush()
	for _, r := range rows {
		if r.Error != "" {
			fmt.Fprintf(e.stderr, "pgimaged: plugin %s: %s\n", r.Name, r.Error)
		}
		if r.Warning != "" {
			fmt.Fprintf(e.stderr, "pgimaged: warning: plugin %s (%s) %s; pgimaged lists it and the configuration names it by its file name, %q\n", r.Name, r.Path, r.Warning, r.Name)
		}
	}
	return code
}

func runValidate(ctx context.Context, e *env, args []string) int {
	c, fs := newCommand(e, "validate", "-config FILE", true)
	if code, ok := parseFlags(e, fs, args, false); !ok {
		return code
	}
	if code, yamlFile := refuseYAML(e, c.configFile); yamlFile {
		return code
	}
	if c.configFile == "" {
		return e.failf(exitUsage, "no configuration: give -config FILE")
	}
	cfg, diags := config.Load(c.configFile)
	var node *engine.Node
	if !diags.HasErrors() {
		finishConfig(cfg)
		node = newNode(cfg, newLogger(e, cfg, orDefault(c.logLevel, "warn")))
		diags = append(diags, lockDiagnostics(cfg)...)
		diags = append(diags, node.Validate(ctx)...)
		diags = append(diags, node.ValidateHost()...)
	}
	invalid := printDiags(e, cfg, diags)
	if c.jsonOut {
		writeJSON(e.stdout, validation{Valid: !invalid, File: c.configFile, Diagnostics: diagnosticsJSON(diags), StandbyCluster: standbySummary(node, cfg.StandbyCluster)})
	} else if !invalid {
		fmt.Fprintf(e.stdout, "%s: the configuration is valid\n", cfg.Filename)
		if sc := cfg.StandbyCluster; sc != nil {
			remote := "no remote primary (it follows the archive)"
			if src := engine.RemoteSource(node); src != nil {
				remote = "remote primary " + src.Describe()
			}
			fmt.Fprintf(e.stdout, "standby cluster: %s; %s\n", remote, sc.Describe())
		}
	}
	if invalid {
		return exitConfig
	}
	return exitOK
}

// standbySummary is the standby_cluster block as validate -json shows it: the remote as the
// source the standby leader clones from ("" for an archive alone), the methods, and the
// recovery settings it follows with.
func standbySummary(node *engine.Node, sc *config.StandbyCluster) map[string]any {
	if node == nil || sc == nil {
		return nil
	}
	source := ""
	if src := engine.RemoteSource(node); src != nil {
		source = src.Describe()
	}
	return map[string]any{"source": source, "create_replica_methods": sc.CreateReplicaMethods, "recovery": sc.RecoverySettings()}
}

// validation is what `validate -json` prints.
type validation struct {
	Valid       bool             `json:"valid"`
	File        string           `json:"file"`
	Diagnostics []diagnosticJSON `json:"diagnostics"`
	// StandbyCluster is the standby_cluster block (see standbySummary).
	StandbyCluster map[string]any `json:"standby_cluster,omitempty"`
}

// diagnosticJSON is one diagnostic as `validate -json` prints it; place is file:line:col.
type diagnosticJSON struct {
	Severity string `json:"severity"`
	Summary  string `json:"summary"`
	Detail   string `json:"detail,omitempty"`
	Place    string `json:"place,omitempty"`
}

func diagnosticsJSON(diags hcl.Diagnostics) []diagnosticJSON {
	out := []diagnosticJSON{}
	for _, d := range diags {
		dj := diagnosticJSON{Severity: "error", Summary: d.Summary, Detail: d.Detail}
		if d.Severity == hcl.DiagWarning {
			dj.Severity = "warning"
		}
		if d.Subject != nil {
			dj.Place = fmt.Sprintf("%s:%d:%d", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column)
		}
		out = append(out, dj)
	}
	return out
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// oneShot are the flags of `bootstrap` and `clone`, including Patroni's.
type oneShot struct {
	common
	imageOnly  bool
	stop       bool
	scope      string
	datadir    string
	role       string
	connstring string
	name       string
}

// config loads -config if given, else builds a minimal configuration from the flags (enough
// for basebackup or initdb with no configuration at all), then applies the flags.
func (o *oneShot) config(e *env) (*config.Config, int) {
	var cfg *config.Config
	if o.configFile != "" {
		var code int
		cfg, code = loadConfig(e, o.configFile)
		if cfg == nil {
			return nil, code
		}
	} else {
		host, _ := os.Hostname()
		c := config.Config{Filename: "<command line>", Name: host, LogLevel: "info"}
		c.PostgreSQL.Listen = "127.0.0.1:5432"
		cfg = config.New(c)
	}
	if o.scope != "" {
		cfg.Scope = o.scope
	}
	if o.datadir != "" {
		cfg.DataDir = o.datadir
	}
	if o.name != "" {
		cfg.Name = o.name
	}
	finishConfig(cfg)
	switch {
	case cfg.DataDir == "":
		return nil, e.failf(exitUsage, "no data directory: set data_dir in the configuration or pass --datadir")
	case cfg.Scope == "":
		return nil, e.failf(exitUsage, "no scope: set scope in the configuration or pass --scope")
	}
	return cfg, 0
}

// register registers the flags bootstrap and clone share; imageOnly is the help of
// --image-only, made what --stop waits for ("cluster", "replica").
func (o *oneShot) register(fs *flag.FlagSet, imageOnly, made string) {
	o.common.register(fs, true)
	fs.BoolVar(&o.imageOnly, "image-only", false, imageOnly)
	fs.BoolVar(&o.stop, "stop", false, "stop PostgreSQL (fast) once the "+made+" is made, instead of leaving it running")
	fs.StringVar(&o.scope, "scope", "", "cluster name (overrides the configuration)")
	fs.StringVar(&o.datadir, "datadir", "", "data directory (overrides the configuration)")
	fs.StringVar(&o.name, "name", "", "member name (overrides the configuration)")
}

// start parses the flags, makes the node, holds its data directory (see [holdDataDir]) and
// validates the configuration for path. A nil node comes with the exit code; else release
// ends the hold.
func (o *oneShot) start(ctx context.Context, e *env, fs *flag.FlagSet, args []string, path sdk.Path) (node *engine.Node, release func(), code int) {
	if code, ok := parseFlags(e, fs, args, true); !ok {
		return nil, nil, code
	}
	if o.role != "" && o.role != "replica" {
		return nil, nil, e.failf(exitUsage, "--role=%s: clone makes replicas only", o.role)
	}
	cfg, code := o.config(e)
	if cfg == nil {
		return nil, nil, code
	}
	node = newNode(cfg, newLogger(e, cfg, o.logLevel))
	if release, code = holdDataDir(e, node, fs.Name(), nil); release == nil {
		return nil, nil, code
	}
	if d := node.Validate(ctx, path); printDiags(e, cfg, d) {
		release()
		return nil, nil, exitConfig
	}
	return node, release, 0
}

func runBootstrap(ctx context.Context, e *env, args []string) int {
	var o oneShot
	fs := newFlagSet(e, "bootstrap", "[-config FILE] [--image-only] [--scope S --datadir D]")
	o.register(fs, "stop once the method has filled the data directory and recovery settings are written", "cluster")
	node, release, code := o.start(ctx, e, fs, args, sdk.PathBootstrap)
	if node == nil {
		return code
	}
	defer release()
	endProgress := showProgress(e, node)
	defer endProgress()
	res, err := node.Bootstrap(ctx, engine.BootstrapOptions{ImageOnly: o.imageOnly})
	endProgress()
	logCriticalPath(node.Logger, res.CriticalPath)
	if err != nil {
		return e.failf(refusalCode(err), "bootstrap failed: %v", err)
	}
	if res.Running && o.stop {
		if err := stopAfterOneShot(ctx, e, node); err != nil {
			return e.failf(exitFailed, "%v", err)
		}
		res.Running = false
	} else if res.Running {
		defer sayLeftRunning(e, node)
	}
	if o.jsonOut {
		writeJSON(e.stdout, map[string]any{
			"method": res.Method, "system_identifier": fmt.Sprint(res.SystemIdentifier),
			"data_dir": node.Config.DataDir, "running": res.Running, "image_only": o.imageOnly,
			"summary": res.Result.Summary,
		})
		return exitOK
	}
	fmt.Fprintln(e.stdout, res.SystemIdentifier)
	return exitOK
}

func runClone(ctx context.Context, e *env, args []string) int {
	var o oneShot
	fs := newFlagSet(e, "clone", "[-config FILE] [--image-only] [--scope S --datadir D --role replica --connstring C]")
	o.register(fs, "stop once a method has filled the data directory (what Patroni expects of a replica method)", "replica")
	fs.StringVar(&o.role, "role", "", "Patroni passes --role=replica")
	fs.StringVar(&o.connstring, "connstring", "", "source to clone from (libpq string or URL; a password in it goes into a pgpass file); empty: no source")
	node, release, code := o.start(ctx, e, fs, args, sdk.PathClone)
	if node == nil {
		return code
	}
	defer release()
	cfg := node.Config
	src, err := oneShotSource(cfg, o.connstring)
	if err != nil {
		return e.failf(exitUsage, "%v", err)
	}
	endProgress := showProgress(e, node)
	defer endProgress()
	res, err := node.Clone(ctx, engine.CloneOptions{Source: src, ImageOnly: o.imageOnly})
	endProgress()
	logCriticalPath(node.Logger, res.CriticalPath)
	if err == nil && res.Running && o.stop {
		if err := stopAfterOneShot(ctx, e, node); err != nil {
			return e.failf(exitFailed, "%v", err)
		}
		res.Running = false
	} else if err == nil && res.Running {
		defer sayLeftRunning(e, node)
	}
	if o.jsonOut {
		out := map[string]any{
			"method": res.Chain.Method, "attempts": res.Chain.Attempts, "skipped": res.Chain.Skipped,
			"data_dir": cfg.DataDir, "running": res.Running, "image_only": o.imageOnly, "source": src.Describe(),
			"summary": res.Chain.Result.Summary,
		}
		if res.SystemIdentifier != 0 {
			out["system_identifier"] = fmt.Sprint(res.SystemIdentifier)
		}
		if err != nil {
			out["error"] = err.Error()
		}
		writeJSON(e.stdout, out)
	}
	for _, s := range res.Chain.Skipped {
		fmt.Fprintf(e.stderr, "pgimaged: skipped method %s: %s\n", s.Method, s.Reason)
	}
	if err != nil {
		return e.failf(refusalCode(err), "clone failed: %v", oneLine(err.Error()))
	}
	if !o.jsonOut {
		fmt.Fprintf(e.stdout, "replica created with method %s (system identifier %d)", res.Chain.Method, res.SystemIdentifier)
		if sum := res.Chain.Result.Summary; sum != "" {
			fmt.Fprintf(e.stdout, ": %s", sum)
		}
		fmt.Fprintln(e.stdout)
	}
	return exitOK
}

// logCriticalPath sums up, at DEBUG, the phases of a bootstrap or clone (each was logged as it
// ended).
func logCriticalPath(logger hclog.Logger, path *dcs.CriticalPath) {
	if path == nil || len(path.Phases) == 0 {
		return
	}
	logger.Debug("critical path", "kind", path.Kind, "seconds", path.Total().Seconds(), "phases", path.String())
}

// refusalCode is the exit code of a failed one-shot bootstrap or clone: exitRefused when it
// refused to touch the data directory (a cluster in it, files pgimaged did not create, inside
// another cluster), else exitFailed.
func refusalCode(err error) int {
	if engine.IsRefusal(err) {
		return exitRefused
	}
	return exitFailed
}

// oneShotSource is the clone source of a one-shot clone: --connstring, else the configuration's
// source; credentials (and TLS settings the string does not give) are the replication role's
// unless the connection string names another role.
func oneShotSource(cfg *config.Config, connstring string) (*engine.Source, error) {
	s := connstring
	if s == "" {
		s = cfg.Source
	}
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	conn, password, err := pg.ParseConnURL(s)
	if err != nil {
		return nil, fmt.Errorf("clone source: %w", err)
	}
	if conn.User == "" {
		conn.User = cfg.PostgreSQL.Replication.Username
	}
	if password == "" && conn.User == cfg.PostgreSQL.Replication.Username {
		password = cfg.PostgreSQL.Replication.Password
	}
	if conn.Database == "" {
		conn.Database = "postgres"
	}
	if conn.User == cfg.PostgreSQL.Replication.Username { // its TLS settings fill what the string leaves out
		conn = conn.WithTLS(cfg.PostgreSQL.Replication.TLS, false)
	}
	return &engine.Source{Conn: conn, Password: password}, nil
}

func oneLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// showProgress draws the node's progress on stderr when it is a terminal, with the log lines
// written there above the bar. The returned function ends the bar; it may be called again.
func showProgress(e *env, node *engine.Node) func() {
	f, ok := e.stderr.(*os.File)
	if !ok || !isTerminal(f) {
		return func() {}
	}
	disp := newProgressDisplay(e.stderr)
	node.Progress = disp.Update
	if e.sink != nil {
		e.sink.showProgress(disp)
	}
	return func() {
		if e.sink != nil {
			e.sink.showProgress(nil)
		}
		disp.Close()
	}
}
