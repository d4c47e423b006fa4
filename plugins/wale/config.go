package main

import (
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/pgimaged/pgimaged/sdk"
)

// Tools the plugin drives.
const (
	ToolWALE = "wal-e"
	ToolWALG = "wal-g"
)

// Option names, as Patroni's wale_restore spells them (plus tool and tool_path).
const (
	optTool         = "tool"
	optToolPath     = "tool_path"
	optEnvdir       = "envdir"
	optUseIAM       = "use_iam"
	optRetries      = "retries"
	optThresholdMB  = "threshold_megabytes"
	optThresholdPct = "threshold_backup_size_percentage"
)

// Defaults, as in Patroni's wale_restore.
const (
	DefaultRetries      = 2
	DefaultThresholdMB  = 10240
	DefaultThresholdPct = 30
)

// schema types the options Patroni's wale_restore reads. It is open: Patroni passes wale_restore
// more (scope, datadir, connstring), which the plugin ignores with a warning.
var schema = sdk.Schema{Open: true, Options: []sdk.OptionSpec{
	{Name: optTool, Type: sdk.TypeEnum, EnumValues: []string{ToolWALE, ToolWALG}, Default: ToolWALE, Description: "the tool to restore with"},
	{Name: optToolPath, Type: sdk.TypeString, Description: "the tool's executable (default: the tool's name, looked up in PATH; or the method's command)"},
	{Name: optEnvdir, Type: sdk.TypeString, Description: "a directory holding the tool's environment, one file per variable (envdir(8))"},
	{Name: optUseIAM, Type: sdk.TypeBool, Description: "WAL-E: use the instance profile's credentials (--aws-instance-profile)"},
	{Name: optRetries, Type: sdk.TypeInt, Min: sdk.Bound(0), Default: strconv.Itoa(DefaultRetries), Description: "how many times to retry a failed restore"},
	{Name: optThresholdMB, Type: sdk.TypeString, Default: strconv.Itoa(DefaultThresholdMB),
		Description: "a number ≥ 0: the most WAL, in MB, the backup may be behind the source for it to be used"},
	{Name: optThresholdPct, Type: sdk.TypeString, Default: strconv.Itoa(DefaultThresholdPct),
		Description: "a number ≥ 0: the most WAL, as a percentage of the backup's size, it may be behind the source"},
}}

var knownOptions = map[string]bool{
	optTool: true, optToolPath: true, optEnvdir: true, optUseIAM: true,
	optRetries: true, optThresholdMB: true, optThresholdPct: true,
}

// config is a method's options, checked.
type config struct {
	tool string
	// exe is the program to run and any leading arguments (from tool_path or command).
	exe          []string
	envdir       string
	useIAM       bool
	retries      int
	thresholdMB  float64
	thresholdPct float64
}

// parseConfig reads and checks a method's options. Errors and warnings come back as diagnostics;
// the config is usable only when no diagnostic is an error.
func parseConfig(command string, opts sdk.Options) (config, []sdk.Diagnostic) {
	c := config{tool: ToolWALE, retries: DefaultRetries, thresholdMB: DefaultThresholdMB, thresholdPct: DefaultThresholdPct}
	var diags []sdk.Diagnostic
	value := func(name string) (string, bool) {
		for i := len(opts) - 1; i >= 0; i-- {
			if opts[i].Name == name {
				if opts[i].Flag {
					diags = append(diags, sdk.Errorf(name, "option needs a value", "write %s = <value>", name))
					return "", false
				}
				return strings.TrimSpace(opts[i].Value), true
			}
		}
		return "", false
	}

	var unknown []string
	for _, o := range opts {
		if !knownOptions[o.Name] {
			unknown = append(unknown, o.Name)
		}
	}
	sort.Strings(unknown)
	for _, n := range unknown {
		diags = append(diags, sdk.Diagnostic{Severity: sdk.SeverityWarning, Option: n,
			Summary: "unknown option " + strconv.Quote(n) + " is ignored",
			Detail:  "the wale method reads tool, tool_path, envdir, use_iam, retries, threshold_megabytes and threshold_backup_size_percentage"})
	}

	if v, ok := value(optTool); ok {
		switch v {
		case ToolWALE, ToolWALG:
			c.tool = v
		default:
			diags = append(diags, sdk.Errorf(optTool, "unknown tool", "tool is %q; use %q or %q", v, ToolWALE, ToolWALG))
		}
	}

	toolPath, hasToolPath := value(optToolPath)
	switch {
	case hasToolPath && command != "":
		diags = append(diags, sdk.Errorf(optToolPath, "both tool_path and command are set", "give the executable once"))
	case hasToolPath && toolPath == "":
		diags = append(diags, sdk.Errorf(optToolPath, "tool_path is empty", "give the path of the %s executable", c.tool))
	case hasToolPath:
		c.exe = []string{toolPath}
	case command != "":
		argv, err := sdk.SplitCommand(command)
		switch {
		case err != nil:
			diags = append(diags, sdk.Errorf("command", "cannot split command", "%v", err))
		case len(argv) == 0:
			diags = append(diags, sdk.Errorf("command", "command is empty", "give the %s executable or leave command out", c.tool))
		default:
			c.exe = argv
		}
	}
	if c.exe == nil {
		c.exe = []string{c.tool}
	}

	if v, ok := value(optEnvdir); ok {
		fi, err := os.Stat(v)
		switch {
		case v == "":
			diags = append(diags, sdk.Errorf(optEnvdir, "envdir is empty", "give the directory holding the tool's environment, one file per variable"))
		case err != nil:
			diags = append(diags, sdk.Errorf(optEnvdir, "envdir does not exist", "%v", err))
		case !fi.IsDir():
			diags = append(diags, sdk.Errorf(optEnvdir, "envdir is not a directory", "%q is a file; envdir names a directory with one file per variable", v))
		default:
			c.envdir = v
		}
	}

	if v, ok := value(optUseIAM); ok {
		if on, err := sdk.ParseBool(v); err == nil {
			c.useIAM = on
		} else if v != "" {
			diags = append(diags, sdk.Errorf(optUseIAM, "use_iam must be 0 or 1", "%v", err))
		}
	}
	if c.useIAM && c.tool == ToolWALG {
		diags = append(diags, sdk.Diagnostic{Severity: sdk.SeverityWarning, Option: optUseIAM,
			Summary: "use_iam has no effect with wal-g",
			Detail:  "WAL-G finds instance-profile credentials by itself; --aws-instance-profile is a WAL-E option"})
	}

	if v, ok := value(optRetries); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			diags = append(diags, sdk.Errorf(optRetries, "retries must be a whole number ≥ 0", "got %q", v))
		} else {
			c.retries = n
		}
	}
	number := func(name string, dst *float64) {
		v, ok := value(name)
		if !ok {
			return
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < 0 || f != f {
			diags = append(diags, sdk.Errorf(name, name+" must be a number ≥ 0", "got %q", v))
			return
		}
		*dst = f
	}
	number(optThresholdMB, &c.thresholdMB)
	number(optThresholdPct, &c.thresholdPct)
	return c, diags
}

// loadConfig is parseConfig for a call: any error diagnostic fails it.
func loadConfig(command string, opts sdk.Options) (config, error) {
	c, diags := parseConfig(command, opts)
	if err := sdk.CheckDiagnostics(diags); err != nil {
		return config{}, err
	}
	return c, nil
}

// env is what the tool runs with: the request's environment plus the envdir's variables.
func (c config) env(base map[string]string) (map[string]string, []string, error) {
	out := make(map[string]string, len(base))
	for k, v := range base {
		out[k] = v
	}
	var secrets []string
	if c.envdir == "" {
		return out, secrets, nil
	}
	ed, err := ReadEnvdir(c.envdir)
	if err != nil {
		return nil, nil, err
	}
	for k, v := range ed.ProcessEnv() {
		out[k] = v
		if secretName(k) && len(v) >= 4 {
			secrets = append(secrets, v)
		}
	}
	sort.Strings(secrets)
	return out, secrets, nil
}

// secretName says whether a variable's value is a credential to keep out of logs and plans.
func secretName(k string) bool {
	u := strings.ToUpper(k)
	for _, s := range []string{"SECRET", "PASSWORD", "TOKEN", "KEY", "CREDENTIAL", "PASSPHRASE"} {
		if strings.Contains(u, s) {
			return true
		}
	}
	return false
}

// globalArgs are the tool's options that precede its command.
func (c config) globalArgs() []string {
	if c.useIAM && c.tool == ToolWALE {
		return []string{"--aws-instance-profile"}
	}
	return nil
}

// argv renders `<tool> [global options] <command...>`.
func (c config) argv(command ...string) []string {
	out := append([]string(nil), c.exe...)
	out = append(out, c.globalArgs()...)
	return append(out, command...)
}
