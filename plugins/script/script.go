package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/pgimaged/pgimaged/sdk"
)

// version is the plugin's version; release builds set it with -ldflags "-X main.version=...".
var version = "0.1.0"

// cloneParams are the parameters pgimaged gives every replica command (Patroni's convention).
var cloneParams = []string{"scope", "role", "datadir", "connstring"}

// bootstrapParams are the parameters pgimaged gives a custom bootstrap command; Patroni never
// passes user options with these names to a bootstrap command.
var bootstrapParams = []string{"scope", "datadir"}

// schema is open: every option the configuration gives is passed to the command as --name=value
// (a bare list entry as --name, a list as --name=element per element, a map as --name=key=value
// per entry in key order). It names the parameters pgimaged itself passes.
var schema = sdk.Schema{Open: true, Options: []sdk.OptionSpec{
	{Name: "scope", Type: sdk.TypeString, Description: "passed by pgimaged (the cluster's scope); a configured value is not used unless no_params is set on a replica method"},
	{Name: "role", Type: sdk.TypeString, Description: "passed by pgimaged to a replica method (replica); a configured value is not used unless no_params is set"},
	{Name: "datadir", Type: sdk.TypeString, Description: "passed by pgimaged (data_dir); a configured value is not used unless no_params is set on a replica method"},
	{Name: "connstring", Type: sdk.TypeString, Description: "passed by pgimaged to a replica method (the source, without a password); a configured value is not used unless no_params is set"},
}}

// Plugin is the script method.
type Plugin struct{}

var (
	_ sdk.Plugin           = (*Plugin)(nil)
	_ sdk.Validator        = (*Plugin)(nil)
	_ sdk.Cloner           = (*Plugin)(nil)
	_ sdk.Bootstrapper     = (*Plugin)(nil)
	_ sdk.ClonePlanner     = (*Plugin)(nil)
	_ sdk.BootstrapPlanner = (*Plugin)(nil)
)

// New returns the script method.
func New() *Plugin { return &Plugin{} }

// Describe names the plugin. It can clone without a source: whether it is tried without one is
// the method's no_master setting.
func (p *Plugin) Describe(context.Context, sdk.DescribeRequest) (sdk.DescribeResponse, error) {
	return sdk.DescribeResponse{
		Schema:             schema,
		Name:               "script",
		Version:            version,
		Description:        "runs a user's command as a replica or bootstrap method with Patroni's parameters",
		WorksWithoutSource: true,
	}, nil
}

// Validate checks the command and the option names.
func (p *Plugin) Validate(_ context.Context, req sdk.ValidateRequest) (sdk.ValidateResponse, error) {
	diags := checkCommand(req.Command)
	diags = append(diags, checkOptions(req.Options)...)
	var overridden []string
	switch {
	case req.Path == sdk.PathClone && !req.NoParams:
		overridden = cloneParams
	case req.Path == sdk.PathBootstrap:
		overridden = bootstrapParams
	}
	for _, o := range req.Options {
		for _, name := range overridden {
			if o.Name == name {
				diags = append(diags, sdk.Diagnostic{
					Severity: sdk.SeverityWarning,
					Option:   o.Name,
					Summary:  fmt.Sprintf("option %q is ignored", o.Name),
					Detail:   fmt.Sprintf("pgimaged passes --%s itself for this method; the configured value is not used", o.Name),
				})
			}
		}
	}
	return sdk.ValidateResponse{Diagnostics: diags}, nil
}

func checkCommand(command string) []sdk.Diagnostic {
	if strings.TrimSpace(command) == "" {
		return []sdk.Diagnostic{sdk.Errorf("command", "command is missing",
			"a script method runs its command; set command = \"/path/to/program [args]\"")}
	}
	words, err := sdk.SplitCommand(command)
	if err != nil {
		return []sdk.Diagnostic{sdk.Errorf("command", "command cannot be split into words", "%v", err)}
	}
	for _, w := range words {
		if strings.ContainsRune(w, 0) {
			return []sdk.Diagnostic{sdk.Errorf("command", "command contains a NUL character", "a program's arguments cannot contain NUL")}
		}
	}
	if words[0] == "" {
		return []sdk.Diagnostic{sdk.Errorf("command", "command names no program", "the first word of %q is empty", command)}
	}
	return nil
}

func checkOptions(opts sdk.Options) []sdk.Diagnostic {
	var diags []sdk.Diagnostic
	for _, o := range opts {
		if err := sdk.CheckName(o.Name); err != nil {
			diags = append(diags, sdk.Errorf(o.Name, "invalid option name", "%v", err))
			continue
		}
		values := append([]string{o.Value}, o.List...)
		for k, v := range o.Map {
			if k == "" || strings.ContainsAny(k, "=\x00") {
				diags = append(diags, sdk.Errorf(o.Name, "invalid option value",
					"option %q: a map key must not be empty or contain '=' or NUL: it is passed as --%s=key=value", o.Name, o.Name))
			}
			values = append(values, v)
		}
		for _, v := range values {
			if strings.ContainsRune(v, 0) {
				diags = append(diags, sdk.Errorf(o.Name, "invalid option value", "option %q: a value cannot contain a NUL character", o.Name))
				break
			}
		}
	}
	return diags
}

// cloneArgv is the command line of a replica method, before the program is looked up.
func cloneArgv(req sdk.CloneRequest) ([]string, error) {
	words, err := commandWords(req.Command, req.Options)
	if err != nil {
		return nil, err
	}
	opts := req.Options
	if !req.NoParams {
		opts = append(opts.Without(cloneParams...), sdk.DefaultCloneParams(req)...)
	}
	return append(words, opts.Args()...), nil
}

// bootstrapArgv is the command line of a custom bootstrap, before the program is looked up.
func bootstrapArgv(req sdk.BootstrapRequest) ([]string, error) {
	words, err := commandWords(req.Command, req.Options)
	if err != nil {
		return nil, err
	}
	var opts sdk.Options
	if !req.NoParams {
		opts = sdk.DefaultBootstrapParams(req)
	}
	opts = append(opts, req.Options.Without(bootstrapParams...)...)
	return append(words, opts.Args()...), nil
}

func commandWords(command string, opts sdk.Options) ([]string, error) {
	if err := sdk.CheckDiagnostics(append(checkCommand(command), checkOptions(opts)...)); err != nil {
		return nil, err
	}
	return sdk.SplitCommand(command)
}

// cloneEnv is what a replica command gets on top of pgimaged's environment.
func cloneEnv(req sdk.CloneRequest) map[string]string {
	env := copyEnv(req.Env)
	env["PGIMAGED_SCOPE"] = req.Cluster.Scope
	env["PGIMAGED_DATADIR"] = req.Cluster.DataDir
	env["PGIMAGED_ROLE"] = "replica"
	env["PGIMAGED_CONNSTRING"] = req.ConnString
	return env
}

// bootstrapEnv is what a bootstrap command gets on top of pgimaged's environment.
func bootstrapEnv(req sdk.BootstrapRequest) map[string]string {
	env := copyEnv(req.Env)
	env["PGIMAGED_SCOPE"] = req.Cluster.Scope
	env["PGIMAGED_DATADIR"] = req.Cluster.DataDir
	env["PGIMAGED_ROLE"] = "primary"
	return env
}

func copyEnv(in map[string]string) map[string]string {
	out := make(map[string]string, len(in)+4)
	for k, v := range in {
		out[k] = v
	}
	return out
}

// errNotFound: the command's program does not exist or cannot be executed.
var errNotFound = errors.New("program not found")

// lookPath resolves a command's first word: a name without a slash through PATH (from env if it
// has one, else the plugin's own), a relative path with a slash against the working directory.
func lookPath(name string, env map[string]string) (string, error) {
	if strings.Contains(name, "/") {
		abs, err := filepath.Abs(name)
		if err != nil {
			return "", fmt.Errorf("while resolving %q: %w", name, err)
		}
		if err := executable(abs); err != nil {
			return "", fmt.Errorf("%q: %w (%w)", abs, errNotFound, err)
		}
		return abs, nil
	}
	path, ok := env["PATH"]
	if !ok {
		path = os.Getenv("PATH")
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" || !filepath.IsAbs(dir) {
			continue // never run programs from the current directory by accident
		}
		p := filepath.Join(dir, name)
		if executable(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%q: %w in PATH %q", name, errNotFound, path)
}

func executable(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return fmt.Errorf("%q is a directory", path)
	}
	if fi.Mode()&0o111 == 0 {
		return fmt.Errorf("%q is not executable: %w", path, fs.ErrPermission)
	}
	return nil
}

// resolve builds the command that will run; when the program cannot be found the argv keeps
// the name as written and the error says why.
func resolve(argv []string, env map[string]string) (sdk.Command, error) {
	cmd := sdk.Command{Argv: argv, Env: env}
	p, err := lookPath(argv[0], env)
	if err != nil {
		return cmd, err
	}
	cmd.Argv = append([]string{p}, argv[1:]...)
	return cmd, nil
}

// planOf turns a command and its lookup error into a plan.
func planOf(cmd sdk.Command, lookErr error) sdk.Plan {
	plan := sdk.Plan{Commands: []sdk.Command{{Argv: cmd.Argv, Env: planEnv(cmd.Env)}}}
	if lookErr != nil {
		plan.Notes = append(plan.Notes, fmt.Sprintf("the command cannot run here: %v", lookErr))
	}
	return plan
}

// planEnv keeps only the variables the plugin sets, not a PATH copied from the request.
func planEnv(env map[string]string) map[string]string {
	out := make(map[string]string, len(env))
	for k, v := range env {
		if k != "PATH" {
			out[k] = v
		}
	}
	return out
}

// PlanClone returns the replica command exactly as Clone would run it.
func (p *Plugin) PlanClone(_ context.Context, req sdk.CloneRequest) (sdk.Plan, error) {
	argv, err := cloneArgv(req)
	if err != nil {
		return sdk.Plan{}, err
	}
	return planOf(resolve(argv, cloneEnv(req))), nil
}

// PlanBootstrap returns the bootstrap command exactly as Bootstrap would run it.
func (p *Plugin) PlanBootstrap(_ context.Context, req sdk.BootstrapRequest) (sdk.Plan, error) {
	argv, err := bootstrapArgv(req)
	if err != nil {
		return sdk.Plan{}, err
	}
	return planOf(resolve(argv, bootstrapEnv(req))), nil
}

// Clone runs the replica command.
func (p *Plugin) Clone(ctx context.Context, req sdk.CloneRequest, rep sdk.Reporter) (sdk.Result, error) {
	if err := ctx.Err(); err != nil {
		return sdk.Result{}, err
	}
	argv, err := cloneArgv(req)
	if err != nil {
		return sdk.Result{}, err
	}
	if err := run(ctx, argv, cloneEnv(req), nil, rep); err != nil {
		return sdk.Result{}, fmt.Errorf("while creating a replica with %s: %w", argv[0], err)
	}
	return sdk.Result{Summary: "replica created by " + argv[0]}, nil
}

// Bootstrap runs the custom bootstrap command.
func (p *Plugin) Bootstrap(ctx context.Context, req sdk.BootstrapRequest, rep sdk.Reporter) (sdk.Result, error) {
	if err := ctx.Err(); err != nil {
		return sdk.Result{}, err
	}
	argv, err := bootstrapArgv(req)
	if err != nil {
		return sdk.Result{}, err
	}
	if err := run(ctx, argv, bootstrapEnv(req), []string{req.Superuser.Password}, rep); err != nil {
		return sdk.Result{}, fmt.Errorf("while bootstrapping a new cluster with %s: %w", argv[0], err)
	}
	return sdk.Result{Summary: "cluster bootstrapped by " + argv[0]}, nil
}

func run(ctx context.Context, argv []string, env map[string]string, secrets []string, rep sdk.Reporter) error {
	cmd, err := resolve(argv, env)
	if err != nil {
		// A missing program is the method failing, like a command that exits non-zero: pgimaged
		// moves on to the next replica method.
		return fmt.Errorf("%w: %w", sdk.ErrMethodFailed, err)
	}
	return sdk.Run(ctx, sdk.Process{Argv: cmd.Argv, Env: cmd.Env, Secrets: secrets}, rep)
}
