package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/pgimaged/pgimaged/sdk"
)

// version is the plugin's version; release builds set it with -ldflags "-X main.version=...".
var version = "0.1.0"

// pwfilePlaceholder stands for the temporary password file in a plan.
const pwfilePlaceholder = "<temporary password file>"

// refused are initdb's long options a user may not give, and why.
var refused = map[string]string{
	"pgdata":    "pgimaged passes the data directory (data_dir) itself",
	"username":  "the superuser's name comes from postgresql.authentication.superuser.username",
	"pwfile":    "the superuser's password comes from postgresql.authentication.superuser.password; pgimaged hands it to initdb in a temporary file",
	"pwprompt":  "initdb cannot prompt for a password; set postgresql.authentication.superuser.password",
	"nosync":    "a cluster that initdb did not sync to disk can be lost in a crash",
	"no-sync":   "a cluster that initdb did not sync to disk can be lost in a crash",
	"sync-only": "it makes initdb exit without creating a cluster",
	"show":      "it makes initdb exit without creating a cluster",
	"version":   "it makes initdb exit without creating a cluster",
	"help":      "it makes initdb exit without creating a cluster",
}

// flags are initdb's long options that take no value.
var flags = map[string]bool{
	"allow-group-access": true, "data-checksums": true, "no-data-checksums": true, "no-locale": true,
	"debug": true, "discard-caches": true, "no-clean": true, "noclean": true, "no-instructions": true,
	"no-sync-data-files": true,
}

// Plugin is the initdb method.
type Plugin struct{}

var (
	_ sdk.Plugin           = (*Plugin)(nil)
	_ sdk.Validator        = (*Plugin)(nil)
	_ sdk.Bootstrapper     = (*Plugin)(nil)
	_ sdk.BootstrapPlanner = (*Plugin)(nil)
)

// New returns the initdb method.
func New() *Plugin { return &Plugin{} }

// Describe names the plugin.
func (p *Plugin) Describe(context.Context, sdk.DescribeRequest) (sdk.DescribeResponse, error) {
	return sdk.DescribeResponse{
		Schema:      sdk.Schema{Open: true},
		Name:        "initdb",
		Version:     version,
		Description: "creates a new cluster with PostgreSQL's initdb",
	}, nil
}

// Validate refuses the options pgimaged owns and the ones that keep initdb from creating a
// durable cluster.
func (p *Plugin) Validate(_ context.Context, req sdk.ValidateRequest) (sdk.ValidateResponse, error) {
	var diags []sdk.Diagnostic
	if req.Path == sdk.PathClone {
		diags = append(diags, sdk.Errorf("", "initdb cannot create a replica",
			"initdb only bootstraps new clusters; use basebackup or another replica method"))
	}
	diags = append(diags, checkOptions(req.Options)...)
	return sdk.ValidateResponse{Diagnostics: diags}, nil
}

func checkOptions(opts sdk.Options) []sdk.Diagnostic {
	var diags []sdk.Diagnostic
	for _, o := range opts {
		if err := sdk.CheckName(o.Name); err != nil {
			diags = append(diags, sdk.Errorf(o.Name, "invalid initdb option name", "%v", err))
			continue
		}
		if len([]rune(o.Name)) == 1 {
			diags = append(diags, sdk.Errorf(o.Name, "short options are not accepted",
				"option %q: give initdb's long option name (for example data-checksums rather than k)", o.Name))
			continue
		}
		if why, ok := refused[o.Name]; ok {
			diags = append(diags, sdk.Errorf(o.Name, fmt.Sprintf("initdb option %q is not allowed", o.Name), "%s", why))
			continue
		}
		if full := abbreviates(o.Name); full != "" {
			diags = append(diags, sdk.Errorf(o.Name, fmt.Sprintf("initdb option %q is not allowed", o.Name),
				"initdb would read it as --%s: %s", full, refused[full]))
			continue
		}
		if strings.ContainsRune(o.Value, 0) {
			diags = append(diags, sdk.Errorf(o.Name, "invalid initdb option value", "option %q: a value cannot contain a NUL character", o.Name))
			continue
		}
		if flags[o.Name] && !o.Flag && o.Value != "true" {
			diags = append(diags, sdk.Errorf(o.Name, fmt.Sprintf("initdb option %q takes no value", o.Name),
				"write it as a list entry (%q) or as %s = true, or leave it out", o.Name, o.Name))
		}
	}
	return diags
}

// abbreviates returns the refused option that name is a strict prefix of, if any: getopt_long
// takes any unambiguous prefix of a long option.
func abbreviates(name string) string {
	for full := range refused {
		if len(name) < len(full) && strings.HasPrefix(full, name) {
			return full
		}
	}
	return ""
}

// authMethod is the password authentication method for the server version (0 when unknown).
func authMethod(serverVersion int) string {
	if serverVersion > 0 && serverVersion < 100000 {
		return "md5"
	}
	return "scram-sha-256"
}

// argv builds initdb's command line; pwfile is the password file's path (or a placeholder).
func argv(initdb string, req sdk.BootstrapRequest, pwfile string) []string {
	args := []string{initdb, "--pgdata=" + req.Cluster.DataDir}
	for _, o := range req.Options {
		if flags[o.Name] && o.Value == "true" {
			o = sdk.Option{Name: o.Name, Flag: true}
		}
		args = append(args, o.String())
	}
	if req.Superuser.Username != "" {
		args = append(args, "--username="+req.Superuser.Username)
	}
	if req.Superuser.Password != "" {
		args = append(args, "--pwfile="+pwfile)
	}
	if req.Options.Has("auth") {
		return args
	}
	local, host := "trust", "reject"
	if req.Superuser.Password != "" {
		local, host = authMethod(req.Cluster.ServerVersion), authMethod(req.Cluster.ServerVersion)
	}
	if !req.Options.Has("auth-local") {
		args = append(args, "--auth-local="+local)
	}
	if !req.Options.Has("auth-host") {
		args = append(args, "--auth-host="+host)
	}
	return args
}

// program is initdb in bin_dir, or from PATH when bin_dir is not set.
func program(binDir string) (string, error) {
	if binDir != "" {
		return filepath.Join(binDir, "initdb"), nil
	}
	p, err := exec.LookPath("initdb")
	if err != nil {
		return "initdb", fmt.Errorf("while looking for initdb (postgresql.bin_dir is not set): %w", err)
	}
	return p, nil
}

func checkRequest(req sdk.BootstrapRequest) error {
	if err := sdk.CheckDiagnostics(checkOptions(req.Options)); err != nil {
		return err
	}
	if req.Cluster.DataDir == "" {
		return fmt.Errorf("%w: the request names no data directory", sdk.ErrInvalidOptions)
	}
	if strings.ContainsAny(req.Superuser.Password, "\r\n") {
		// initdb reads only the password file's first line.
		return fmt.Errorf("%w: the superuser's password contains a line break, which initdb cannot read", sdk.ErrInvalidOptions)
	}
	return nil
}

// PlanBootstrap returns initdb's command line; the password file is a placeholder there.
func (p *Plugin) PlanBootstrap(_ context.Context, req sdk.BootstrapRequest) (sdk.Plan, error) {
	if err := checkRequest(req); err != nil {
		return sdk.Plan{}, err
	}
	initdb, lookErr := program(req.Cluster.BinDir)
	plan := sdk.Plan{Commands: []sdk.Command{{Argv: argv(initdb, req, pwfilePlaceholder), Env: req.Env}}}
	if lookErr != nil {
		plan.Notes = append(plan.Notes, lookErr.Error())
	}
	if req.Superuser.Password != "" {
		plan.Notes = append(plan.Notes, "the superuser's password reaches initdb in a temporary file (mode 0600) whose name is removed before initdb starts; initdb reads it as /dev/fd/3")
	} else {
		plan.Notes = append(plan.Notes, noPasswordWarning)
	}
	return plan, nil
}

const noPasswordWarning = "the superuser has no password: initdb trusts local connections and rejects TCP connections until pg_hba.conf is configured"

// Bootstrap runs initdb.
func (p *Plugin) Bootstrap(ctx context.Context, req sdk.BootstrapRequest, rep sdk.Reporter) (res sdk.Result, err error) {
	if err := ctx.Err(); err != nil {
		return sdk.Result{}, err
	}
	if err := checkRequest(req); err != nil {
		return sdk.Result{}, err
	}
	initdb, err := program(req.Cluster.BinDir)
	if err != nil {
		return sdk.Result{}, fmt.Errorf("%w: %w", sdk.ErrMethodFailed, err)
	}
	pwfile := ""
	var extra []*os.File
	if req.Superuser.Password != "" {
		f, err := openPasswordFile(req.Superuser.Password)
		if err != nil {
			return sdk.Result{}, err
		}
		defer f.Close()
		extra, pwfile = []*os.File{f}, "/dev/fd/3"
	} else if rep != nil {
		rep.Log(sdk.LevelWarn, noPasswordWarning)
	}
	proc := sdk.Process{Argv: argv(initdb, req, pwfile), Env: req.Env, ExtraFiles: extra, Secrets: []string{req.Superuser.Password}}
	if err := sdk.Run(ctx, proc, rep); err != nil {
		return sdk.Result{}, fmt.Errorf("while creating a new cluster in %q with initdb: %w", req.Cluster.DataDir, err)
	}
	return sdk.Result{Summary: "initdb created a new cluster in " + req.Cluster.DataDir}, nil
}

// openPasswordFile puts the password into a new file only its owner can read and removes the
// file's name at once: initdb reads it through the open descriptor (as /dev/fd/3), and the
// file disappears with the last descriptor, even if this process is killed.
func openPasswordFile(password string) (*os.File, error) {
	f, err := os.CreateTemp("", "pgimaged-initdb-pw-*")
	if err != nil {
		return nil, fmt.Errorf("while creating a temporary password file for initdb: %w", err)
	}
	name := f.Name()
	fail := func(what string, err error) (*os.File, error) {
		f.Close()
		os.Remove(name)
		return nil, fmt.Errorf("while %s the temporary password file %q: %w", what, name, err)
	}
	if err := f.Chmod(0o600); err != nil {
		return fail("restricting", err)
	}
	if _, err := f.WriteString(password + "\n"); err != nil {
		return fail("writing", err)
	}
	if err := os.Remove(name); err != nil {
		return fail("removing the name of", err)
	}
	if _, err := f.Seek(0, 0); err != nil {
		f.Close()
		return nil, fmt.Errorf("while rewinding the temporary password file: %w", err)
	}
	return f, nil
}
