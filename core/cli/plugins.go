package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/pgimaged/pgimaged/core/config"
	"github.com/pgimaged/pgimaged/core/engine"
	"github.com/pgimaged/pgimaged/core/pg"
	"github.com/pgimaged/pgimaged/core/plugin"
	"github.com/pgimaged/pgimaged/sdk"
)

// pluginsSubcommands are `pgimaged plugins <sub>`.
var pluginsSubcommands = map[string]func(ctx context.Context, e *env, args []string) int{
	"install": runPluginsInstall,
	"verify":  runPluginsVerify,
	"check":   runPluginsCheck,
	"show":    runPluginsShow,
}

// lockFileFor is the plugin lock file: -lock if given, else beside the configuration file,
// else the packaged place.
func lockFileFor(cfg *config.Config, override string) string {
	switch {
	case override != "":
		return override
	case cfg != nil && cfg.Filename != "" && cfg.Filename != "<command line>":
		if abs, err := filepath.Abs(cfg.Filename); err == nil {
			return plugin.LockPath(abs)
		}
		return plugin.LockPath(cfg.Filename)
	}
	return plugin.DefaultLockFile
}

// pluginDirUsage is the help of -plugin-dir.
const pluginDirUsage = "plugin directory (default: the configuration's plugin_dir, else plugins/ beside pgimaged)"

// placeFlags registers -plugin-dir and -lock, the places [pluginPlace] reads.
func placeFlags(fs *flag.FlagSet) (dir, lock *string) {
	return fs.String("plugin-dir", "", pluginDirUsage),
		fs.String("lock", "", "lock file (default: "+plugin.LockFileName+" beside the configuration, else "+plugin.DefaultLockFile+")")
}

// parseWithFile parses flags around exactly one positional argument, which may come first
// (`install FILE -config F`) or last.
func parseWithFile(e *env, fs *flag.FlagSet, args []string, what string) (string, int, bool) {
	if err := fs.Parse(args); err != nil {
		return "", parseFailure(err), false
	}
	if fs.NArg() == 0 {
		usageMistake(fs)
		return "", e.failf(exitUsage, "no %s given", what), false
	}
	file := fs.Arg(0)
	code, ok := parseFlags(e, fs, fs.Args()[1:], false)
	return file, code, ok
}

// pluginPlace loads -config if given and returns the plugin directory and the lock file.
func pluginPlace(e *env, configFile, dirFlag, lockFlag string) (cfg *config.Config, dir, lock string, code int) {
	if configFile != "" {
		cfg, code = loadConfig(e, configFile)
		if cfg == nil {
			return nil, "", "", code
		}
		dir = cfg.PluginDir
	}
	if dirFlag != "" {
		dir = dirFlag
	}
	if dir == "" {
		dir = plugin.DefaultDir()
	}
	return cfg, dir, lockFileFor(cfg, lockFlag), 0
}

func runPluginsInstall(ctx context.Context, e *env, args []string) int {
	c, fs := newCommand(e, "plugins install", "FILE [-config FILE] [-plugin-dir DIR] [-lock FILE]", true)
	dir, lockFlag := placeFlags(fs)
	timeout := fs.Duration("timeout", 30*time.Second, "how long the plugin has to start and describe itself")
	file, code, ok := parseWithFile(e, fs, args, "plugin file")
	if !ok {
		return code
	}
	cfg, pdir, lock, code := pluginPlace(e, c.configFile, *dir, *lockFlag)
	if code != 0 {
		return code
	}
	res, err := plugin.Install(ctx, file, plugin.InstallOptions{Dir: pdir, LockFile: lock, Timeout: *timeout,
		Logger: newLogger(e, cfg, orDefault(c.logLevel, "warn"))})
	if err != nil {
		if errors.Is(err, plugin.ErrNameMismatch) {
			return e.failf(exitRefused, "install refused: %v", err)
		}
		return e.failf(exitFailed, "install: %v", err)
	}
	if c.jsonOut {
		writeJSON(e.stdout, map[string]any{"name": res.Name, "version": res.Version, "sha256": res.SHA256,
			"path": res.Path, "description": res.Description, "lock_file": lock, "replaced": res.Replaced})
	} else {
		fmt.Fprintf(e.stdout, "installed plugin %s %s as %s\nrecorded sha256 %s in %s\n", res.Name, res.Version, res.Path, res.SHA256, lock)
	}
	if cfg != nil {
		if pin, ok := cfg.Plugins[res.Name]; ok && pin.SHA256 != "" && pin.SHA256 != res.SHA256 {
			r := cfg.RangeOf("plugin." + res.Name + ".sha256")
			fmt.Fprintf(e.stderr, "pgimaged: warning: %s: the configuration pins plugin %s to sha256 %s; set it to %s\n", r.String(), res.Name, pin.SHA256, res.SHA256)
		}
	}
	return exitOK
}

func runPluginsVerify(_ context.Context, e *env, args []string) int {
	c, fs := newCommand(e, "plugins verify", "[-config FILE] [-plugin-dir DIR] [-lock FILE] [-json]", true)
	dir, lockFlag := placeFlags(fs)
	if code, ok := parseFlags(e, fs, args, false); !ok {
		return code
	}
	_, pdir, lock, code := pluginPlace(e, c.configFile, *dir, *lockFlag)
	if code != 0 {
		return code
	}
	diffs, err := plugin.Verify(pdir, lock)
	if err != nil {
		return e.failf(exitFailed, "verify: %v", err)
	}
	if c.jsonOut {
		writeJSON(e.stdout, map[string]any{"plugin_dir": pdir, "lock_file": lock, "ok": len(diffs) == 0, "differences": orEmpty(diffs)})
	} else if len(diffs) == 0 {
		fmt.Fprintf(e.stdout, "%s matches %s\n", pdir, lock)
	} else {
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tPROBLEM\tDETAIL")
		for _, d := range diffs {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", d.Name, d.Kind, d.Detail)
		}
		_ = tw.Flush()
	}
	if len(diffs) > 0 {
		return e.failf(exitFailed, "%d difference(s) between %s and %s", len(diffs), pdir, lock)
	}
	return exitOK
}

func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func runPluginsCheck(ctx context.Context, e *env, args []string) int {
	c, fs := newCommand(e, "plugins check", "FILE [-option NAME=VALUE ...] [-config FILE -method LABEL] [-source CONNSTRING] [-bin-dir DIR] [-json]", true)
	source := fs.String("source", "", "a running primary (libpq connection string or URL) to clone into a temporary directory")
	var given sdk.Options
	fs.Func("option", "a method option the checks' calls carry, as a method block would give it: NAME=VALUE, or NAME alone for a flag (repeatable; command=PROGRAM sets the method's command)", func(v string) error {
		name, value, ok := strings.Cut(v, "=")
		if name == "" {
			return errors.New("want NAME=VALUE or NAME")
		}
		given = append(given, sdk.Option{Name: name, Value: value, Flag: !ok})
		return nil
	})
	method := fs.String("method", "", "take the options (and command) of this method block of -config; -option adds to them")
	binDir := fs.String("bin-dir", "", "PostgreSQL binaries (default: the configuration's bin_dir, else the newest installed)")
	tmp := fs.String("temp-dir", "", "where the temporary data directories go (default: the system's)")
	file, code, ok := parseWithFile(e, fs, args, "plugin file")
	if !ok {
		return code
	}
	var cfg *config.Config
	if c.configFile != "" {
		if cfg, code = loadConfig(e, c.configFile); cfg == nil {
			return code
		}
	}
	// The plugin's own log lines would flood the table; failures carry its last stderr lines.
	opts := plugin.CheckOptions{BinDir: *binDir, TempDir: *tmp, Logger: newLogger(e, nil, orDefault(c.logLevel, "off"))}
	if *method != "" {
		m, ok := (*config.Method)(nil), false
		if cfg != nil {
			m, ok = cfg.Methods[*method]
		}
		if !ok {
			return e.failf(exitUsage, "-method %s: no such method block (give -config with a method %q block)", *method, *method)
		}
		opts.Command, opts.Options = m.Command, append(sdk.Options{}, m.Options...)
	}
	for _, o := range given {
		if o.Name == "command" {
			opts.Command = o.Value
			continue
		}
		opts.Options = append(opts.Options, o)
	}
	if opts.BinDir == "" && cfg != nil {
		opts.BinDir = cfg.PostgreSQL.BinDir
	}
	if opts.BinDir == "" {
		opts.BinDir = engine.FindBinDir()
	}
	if *source != "" {
		conn, password, err := pg.ParseConnURL(*source)
		if err != nil {
			return e.failf(exitUsage, "-source: %v", err)
		}
		opts.Source = conn.DSN()
		if password != "" {
			dir, err := os.MkdirTemp(*tmp, "pgimaged-check-pass-")
			if err != nil {
				return e.failf(exitFailed, "while writing a password file: %v", err)
			}
			defer os.RemoveAll(dir)
			pass := filepath.Join(dir, "pgpass")
			if err := pg.WritePgpass(pass, pg.PassEntry{Host: "*", Port: "*", User: "*", Password: password}); err != nil {
				return e.failf(exitFailed, "while writing a password file: %v", err)
			}
			opts.SourceEnv = pg.PassfileEnv(pass)
		}
	}
	results := plugin.Check(ctx, file, opts)
	failed := 0
	for _, r := range results {
		if !r.OK {
			failed++
		}
	}
	if c.jsonOut {
		writeJSON(e.stdout, map[string]any{"plugin": file, "ok": failed == 0, "checks": results})
	} else {
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "CHECK\tRESULT\tDETAIL")
		for _, r := range results {
			res, detail := "ok", r.Detail
			switch {
			case !r.OK:
				res = "FAIL"
			case r.Skipped != "":
				res, detail = "skipped", r.Skipped
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Name, res, strings.ReplaceAll(detail, "\n", " "))
		}
		_ = tw.Flush()
	}
	if failed > 0 {
		return e.failf(exitFailed, "%s failed %d of %d checks", file, failed, len(results))
	}
	return exitOK
}

// lockDiagnostics are the configuration's sha256 pins that disagree with the lock file, each at
// the pin's sha256 attribute.
func lockDiagnostics(cfg *config.Config) hcl.Diagnostics {
	lockFile := lockFileFor(cfg, "")
	lock, err := plugin.ReadLock(lockFile)
	if err != nil {
		r := cfg.RangeOf("plugin_dir")
		return hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Unreadable plugin lock file", Detail: err.Error(), Subject: &r}}
	}
	if lock == nil {
		return nil
	}
	var diags hcl.Diagnostics
	for _, name := range sortedKeys(cfg.Plugins) {
		pin := cfg.Plugins[name]
		if pin.SHA256 == "" {
			continue
		}
		e, ok := lock.Entries[name]
		if !ok {
			continue
		}
		if e.SHA256 != pin.SHA256 {
			r := cfg.RangeOf("plugin." + name + ".sha256")
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Pin disagrees with the lock file",
				Detail: fmt.Sprintf("Plugin %q is pinned to sha256 %s here, but %s records %s (version %s). Set the pin to the lock file's sum, or install the plugin the pin names with `pgimaged plugins install`.",
					name, pin.SHA256, lock.Path, e.SHA256, e.Version),
				Subject: &r,
			})
		}
	}
	return diags
}

// withLockFiles adds to files the lock files diags point at, so that their lines are shown.
func withLockFiles(files map[string]*hcl.File, diags hcl.Diagnostics) map[string]*hcl.File {
	out := files
	for _, d := range diags {
		if d.Subject == nil || filepath.Base(d.Subject.Filename) != plugin.LockFileName || out[d.Subject.Filename] != nil {
			continue
		}
		src, err := os.ReadFile(d.Subject.Filename)
		if err != nil {
			continue
		}
		f, _ := hclsyntax.ParseConfig(src, d.Subject.Filename, hcl.InitialPos)
		if f == nil {
			continue
		}
		cp := make(map[string]*hcl.File, len(out)+1)
		for k, v := range out {
			cp[k] = v
		}
		cp[d.Subject.Filename] = f
		out = cp
	}
	return out
}
