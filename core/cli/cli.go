// Package cli is pgimaged's command line: it parses arguments, loads the configuration and
// hands the work to the engine. cmd/pgimaged only calls [Main].
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/hcl/v2"

	"github.com/pgimaged/pgimaged/core/config"
	"github.com/pgimaged/pgimaged/core/engine"
	"github.com/pgimaged/pgimaged/core/pg"
	"github.com/pgimaged/pgimaged/core/plugin"
)

// Version is pgimaged's version; the build may set it with -ldflags "-X ...cli.Version=...".
var Version = "0.1.0-dev"

// Exit codes.
const (
	exitOK      = 0
	exitFailed  = 1
	exitUsage   = 2
	exitConfig  = 3
	exitRefused = 4
	// exitPending: the request was written into the DCS, but the agent that carries it out
	// does not run; it waits there.
	exitPending = 5
)

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, e *env, args []string) int
}

var commands []command

func init() {
	commands = []command{
		{"run", "the node agent: adopt, bootstrap or clone, then keep the member published", runAgent},
		{"bootstrap", "create a new cluster once, without a DCS (initdb or the configured method)", runBootstrap},
		{"clone", "clone a replica once, without a DCS, trying the replica methods in order", runClone},
		{"reinit", "re-clone this replica: stop PostgreSQL, empty its data directory, clone again (never the leader)", runReinit},
		{"switchover", "hand the primary role to a replica while the primary runs; nothing is lost", runSwitchover},
		{"failover", "make a member the primary when no member leads (the most advanced, unless --force)", runFailover},
		{"reload", "have a member's agent re-read its configuration file (also: SIGHUP, POST /reload)", runReload},
		{"standby", "standby promote: the standby cluster's leader becomes its primary; standby follow: the primary becomes the standby leader of a standby cluster of the remote; the DCS records it", runStandby},
		{"restart", "restart PostgreSQL through the agents: a member, or all (replicas first, the leader last)", runRestart},
		{"pause", "maintenance mode: the agents start, stop, clone and re-point nothing", runPause},
		{"resume", "end maintenance mode", runResume},
		{"history", "list a member's bootstrap and clone attempts and the cluster's timeline switches, kept in the DCS", runHistory},
		{"plan", "show what this node would do now, with exact commands", runPlan},
		{"status", "show the cluster's members, roles, states and last errors (also: list)", runStatus},
		{"validate", "check a configuration, including each plugin's options", runValidate},
		{"plugins", "list the installed plugins; plugins show NAME|install FILE|verify|check FILE: see -h", runPlugins},
		{"version", "print pgimaged's version", runVersion},
		{"import", "convert a Patroni configuration: import patroni FILE.yml [-o FILE.hcl]", runImport},
		{"completion", "print a shell completion script: completion bash|zsh", runCompletion},
	}
}

// aliases are other names of commands, as patronictl users type them.
var aliases = map[string]string{"list": "status"}

// commandName is the command name or alias typed stands for.
func commandName(typed string) string {
	if name, ok := aliases[typed]; ok {
		return name
	}
	return typed
}

// env is what every command gets.
type env struct {
	stdout, stderr io.Writer
	sink           *logSink // where the command's logger writes, once it has one
	closers        []func() // run when the command ends
	flagSets       []*flag.FlagSet
}

func (e *env) failf(code int, format string, args ...any) int {
	msg := fmt.Sprintf(format, args...)
	fmt.Fprintf(e.stderr, "pgimaged: %s\n", msg)
	return code
}

// Main runs pgimaged with args (without the program name) and returns the exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	e := &env{stdout: stdout, stderr: stderr}
	switch {
	case len(args) == 0:
		usage(stderr)
		return exitUsage
	case args[0] == "-h" || args[0] == "-help" || args[0] == "--help":
		usage(stdout)
		return exitOK
	case args[0] == "help":
		return runHelp(context.Background(), e, args[1:])
	case args[0] == "--version" || args[0] == "-version" || args[0] == "-v":
		return runVersion(context.Background(), e, args[1:])
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	defer func() {
		for _, c := range e.closers {
			c()
		}
		// A server this command started is up; the pg_ctl that started it ends by itself a
		// moment later: not left running behind the command.
		pg.Settle(5 * time.Second)
	}()
	for _, c := range commands {
		if c.name == commandName(args[0]) {
			return c.run(ctx, e, args[1:])
		}
	}
	usage(stderr)
	return e.failf(exitUsage, "unknown command %q", args[0])
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "pgimaged makes PostgreSQL data directories appear: it bootstraps the first member of a\ncluster and clones replicas for the others.\n\nUsage: pgimaged <command> [flags]\n\nCommands:\n")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nEvery command takes -config FILE (or -c FILE); `pgimaged help <command>` (or `pgimaged <command> -h`)\nexplains it, with an example, its flags and exit codes. `pgimaged --version` prints the version.\n")
}

// common holds the flags most commands share.
type common struct {
	configFile string
	jsonOut    bool
	logLevel   string
}

// newCommand makes a command's flag set with the flags most commands share.
func newCommand(e *env, name, args string, withJSON bool) (*common, *flag.FlagSet) {
	var c common
	fs := newFlagSet(e, name, args)
	c.register(fs, withJSON)
	return &c, fs
}

func (c *common) register(fs *flag.FlagSet, withJSON bool) {
	fs.StringVar(&c.configFile, "config", "", "configuration file (HCL)")
	fs.StringVar(&c.configFile, "c", "", "same as -config (patronictl's spelling)")
	if withJSON {
		fs.BoolVar(&c.jsonOut, "json", false, "machine-readable output")
	}
	fs.StringVar(&c.logLevel, "log-level", "", "trace, debug, info, warn or error (default: the configuration's log_level)")
}

func newFlagSet(e *env, name, args string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	out := &helpOutput{w: e.stderr}
	fs.SetOutput(out)
	fs.Usage = func() {
		if !out.mistake {
			// -h or --help: asked for, so on stdout.
			writeHelp(e.stdout, fs, name, args)
			return
		}
		fmt.Fprintf(e.stderr, "Usage: pgimaged %s %s\n\nFlags:\n", name, args)
		fs.PrintDefaults()
		fmt.Fprintf(e.stderr, "\n`pgimaged help %s` explains the command.\n", name)
	}
	e.flagSets = append(e.flagSets, fs)
	return fs
}

// parseFlags parses args; with lenient set, unknown --name=value options (which Patroni adds
// from a method's parameters) are dropped with a note instead of failing.
func parseFlags(e *env, fs *flag.FlagSet, args []string, lenient bool) (int, bool) {
	if lenient {
		var kept []string
		for _, a := range args {
			if strings.HasPrefix(a, "-") {
				name := strings.TrimLeft(a, "-")
				name, _, _ = strings.Cut(name, "=")
				if name != "" && fs.Lookup(name) == nil && name != "h" && name != "help" {
					fmt.Fprintf(e.stderr, "pgimaged: ignoring unknown option %s\n", strings.SplitN(a, "=", 2)[0])
					continue
				}
			}
			kept = append(kept, a)
		}
		args = kept
	}
	if err := fs.Parse(args); err != nil {
		return parseFailure(err), false
	}
	if fs.NArg() > 0 {
		return e.failf(exitUsage, "unexpected argument %q", fs.Arg(0)), false
	}
	return 0, true
}

// parseFailure is the exit code when fs.Parse fails: exitOK for -h (the help was asked for and
// printed), else exitUsage (the flag package has printed the mistake).
func parseFailure(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	return exitUsage
}

// load parses a command's flags, registered on fs with register, loads -config and checks that
// it sets the settings the command requires. A nil configuration comes with the exit code.
func (c *common) load(e *env, fs *flag.FlagSet, args []string, required ...string) (*config.Config, int) {
	if code, ok := parseFlags(e, fs, args, false); !ok {
		return nil, code
	}
	cfg, code := loadConfig(e, c.configFile)
	if cfg != nil && printDiags(e, cfg, cfg.Require("pgimaged "+fs.Name(), required...)) {
		return nil, exitConfig
	}
	return cfg, code
}

// loadConfig loads and checks the configuration file, printing diagnostics. It fills in what
// the file leaves to the command line: an absolute data directory and the plugin directory.
func loadConfig(e *env, file string) (*config.Config, int) {
	if file == "" {
		return nil, e.failf(exitUsage, "no configuration: give -config FILE")
	}
	cfg, diags := config.Load(file)
	if printDiags(e, cfg, diags) {
		return nil, exitConfig
	}
	finishConfig(cfg)
	return cfg, 0
}

func finishConfig(cfg *config.Config) {
	if cfg.PluginDir == "" {
		cfg.PluginDir = plugin.DefaultDir()
	}
	if cfg.DataDir != "" {
		if abs, err := filepath.Abs(cfg.DataDir); err == nil {
			cfg.DataDir = abs
		}
	}
}

// printDiags writes diagnostics with their source lines and reports whether any is an error.
func printDiags(e *env, cfg *config.Config, diags hcl.Diagnostics) bool {
	if len(diags) == 0 {
		return false
	}
	var files map[string]*hcl.File
	if cfg != nil {
		files = cfg.Files()
	}
	_ = config.WriteDiagnostics(e.stderr, withLockFiles(files, diags), diags, false)
	return diags.HasErrors()
}

// pins are the configuration's plugin blocks, as the catalog takes them.
func pins(cfg *config.Config) map[string]plugin.Pin {
	out := map[string]plugin.Pin{}
	for name, p := range cfg.Plugins {
		out[name] = plugin.Pin{Path: p.Path, SHA256: p.SHA256}
	}
	return out
}

func newNode(cfg *config.Config, logger hclog.Logger) *engine.Node {
	return &engine.Node{
		Config:  cfg,
		Catalog: &plugin.Catalog{Dir: cfg.PluginDir, Pins: pins(cfg), Logger: logger, LockFile: lockFileFor(cfg, "")},
		Logger:  logger,
		Version: Version,
	}
}

// holdDataDir makes this pgimaged the only one working on the node's data directory for the
// whole command (run, bootstrap, clone, reinit), then ends what a method of an earlier
// pgimaged, killed before it could, left running, and has the node's methods record their
// processes. It returns the lock's release, or the exit code when the directory is not ours to
// work on: when another pgimaged holds the lock, the command is refused, or whenLocked, if
// given, answers instead.
func holdDataDir(e *env, node *engine.Node, command string, whenLocked func() int) (func(), int) {
	cfg := node.Config
	release, err := pg.LockDataDir(cfg.DataDir, "pgimaged "+command)
	if err != nil {
		switch {
		case errors.Is(err, pg.ErrLocked) && whenLocked != nil:
			return nil, whenLocked()
		case errors.Is(err, pg.ErrLocked):
			return nil, e.failf(exitRefused, "%s refused: %v", command, err)
		}
		return nil, e.failf(exitFailed, "%s: %v", command, err)
	}
	record := pg.ProcessRecordPath(cfg.DataDir)
	if n, err := plugin.EndRecorded(record, node.Logger); err != nil {
		release()
		return nil, e.failf(exitFailed, "%s: %v", command, err)
	} else if n > 0 {
		node.Logger.Warn("ended processes a method of an earlier pgimaged left running", "count", n, "record", record)
	}
	node.Catalog.ProcessRecord = record
	return release, 0
}

func writeJSON(w io.Writer, v any) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func runVersion(_ context.Context, e *env, args []string) int {
	var c common
	fs := newFlagSet(e, "version", "[-json]")
	fs.BoolVar(&c.jsonOut, "json", false, "machine-readable output")
	if code, ok := parseFlags(e, fs, args, false); !ok {
		return code
	}
	if c.jsonOut {
		writeJSON(e.stdout, map[string]any{"version": Version, "protocol": pluginProtocol()})
		return exitOK
	}
	fmt.Fprintf(e.stdout, "pgimaged %s (plugin protocol %d)\n", Version, pluginProtocol())
	return exitOK
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
