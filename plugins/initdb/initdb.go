package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/pgimaged/pgimaged/sdk"
	"github.com/pgimaged/pgimaged/sdk/syncfs"
)

// version is the plugin's version; release builds set it with -ldflags "-X main.version=...".
var version = "0.1.0"

// pwfilePlaceholder stands for the temporary password file in a plan.
const pwfilePlaceholder = "<temporary password file>"

const exitReason = "it makes initdb exit without creating a cluster"

// schema lists initdb's long options, typed; those pgimaged sets itself or that would not leave
// a durable cluster are refused with the reason.
var schema = sdk.Schema{Options: []sdk.OptionSpec{
	{Name: "auth", Type: sdk.TypeString, Description: "the authentication method for local and host connections until pgimaged writes pg_hba.conf"},
	{Name: "auth-host", Type: sdk.TypeString, Description: "the authentication method for host connections until pgimaged writes pg_hba.conf"},
	{Name: "auth-local", Type: sdk.TypeString, Description: "the authentication method for local connections until pgimaged writes pg_hba.conf"},
	{Name: "encoding", Type: sdk.TypeString, Description: "the template databases' encoding (UTF8, ...)"},
	{Name: "locale", Type: sdk.TypeString, Description: "the default locale"},
	{Name: "locale-provider", Type: sdk.TypeEnum, EnumValues: []string{"libc", "icu", "builtin"}, Description: "the default locale provider (builtin: PostgreSQL 17+)"},
	{Name: "icu-locale", Type: sdk.TypeString, Description: "the ICU locale (with locale-provider = \"icu\")"},
	{Name: "icu-rules", Type: sdk.TypeString, Description: "extra ICU collation rules (PostgreSQL 16+)"},
	{Name: "builtin-locale", Type: sdk.TypeString, Description: "the builtin provider's locale (PostgreSQL 17+)"},
	{Name: "lc-collate", Type: sdk.TypeString, Description: "the default collation"},
	{Name: "lc-ctype", Type: sdk.TypeString, Description: "the default character classification"},
	{Name: "lc-messages", Type: sdk.TypeString, Description: "the default language of messages"},
	{Name: "lc-monetary", Type: sdk.TypeString, Description: "the default monetary format"},
	{Name: "lc-numeric", Type: sdk.TypeString, Description: "the default number format"},
	{Name: "lc-time", Type: sdk.TypeString, Description: "the default date and time format"},
	{Name: "no-locale", Type: sdk.TypeBool, Description: "the C locale"},
	{Name: "text-search-config", Type: sdk.TypeString, Description: "the default text search configuration"},
	{Name: "waldir", Type: sdk.TypeString, Description: "a directory of its own for pg_wal"},
	{Name: "wal-segsize", Type: sdk.TypeInt, Min: sdk.Bound(1), Max: sdk.Bound(1024), Description: "the WAL segment size in MB, a power of 2"},
	{Name: "set", Type: sdk.TypeString, Description: "NAME=VALUE: a server setting in postgresql.conf (PostgreSQL 16+)"},
	{Name: "data-checksums", Type: sdk.TypeBool, Description: "data page checksums"},
	{Name: "no-data-checksums", Type: sdk.TypeBool, Description: "no data page checksums (PostgreSQL 18+)"},
	{Name: "allow-group-access", Type: sdk.TypeBool, Description: "let the group read the data directory"},
	{Name: "debug", Type: sdk.TypeBool, Description: "initdb's debugging output"},
	{Name: "discard-caches", Type: sdk.TypeBool, Description: "run the bootstrap backend with debug_discard_caches=1"},
	{Name: "no-clean", Type: sdk.TypeBool, Aliases: []string{"noclean"}, Description: "leave a failed cluster in place (pgimaged empties the data directory anyway)"},
	{Name: "no-instructions", Type: sdk.TypeBool, Description: "no instructions on starting the server at the end"},
	{Name: "no-sync-data-files", Type: sdk.TypeBool, Description: "do not sync data files (PostgreSQL 18+)"},
	{Name: "sync-method", Type: sdk.TypeEnum, EnumValues: []string{"fsync", "syncfs"}, Description: "how to sync the cluster to disk (PostgreSQL 17+)"},
	{Name: "pgdata", Refused: "pgimaged passes the data directory (data_dir) itself"},
	{Name: "username", Refused: "the superuser's name comes from postgresql.authentication.superuser.username"},
	{Name: "pwfile", Refused: "the superuser's password comes from postgresql.authentication.superuser.password; pgimaged hands it to initdb in a temporary file"},
	{Name: "pwprompt", Refused: "initdb cannot prompt for a password; set postgresql.authentication.superuser.password"},
	{Name: "no-sync", Aliases: []string{"nosync"}, Refused: "a cluster that initdb did not sync to disk can be lost in a crash"},
	{Name: "sync-only", Refused: exitReason},
	{Name: "show", Refused: exitReason},
	{Name: "version", Refused: exitReason},
	{Name: "help", Refused: exitReason},
}}

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
		Schema:      schema,
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
	if n := req.Values.Int("wal-segsize"); n&(n-1) != 0 {
		diags = append(diags, sdk.Errorf("wal-segsize", "invalid WAL segment size", "wal-segsize must be a power of 2 from 1 to 1024 (MB), not %d", n))
	}
	return sdk.ValidateResponse{Diagnostics: diags}, nil
}

// authMethod is the password authentication method for the server version (0 when unknown).
func authMethod(serverVersion int) string {
	if serverVersion > 0 && serverVersion < 100000 {
		return "md5"
	}
	return "scram-sha-256"
}

// syncItself reports whether the plugin syncs the new cluster itself, with one syncfs(2) per
// file system once initdb is done, instead of initdb's fsync of every file: where syncfs reports
// writeback errors, unless the user chose how initdb syncs (sync-method, no-sync-data-files).
func syncItself(req sdk.BootstrapRequest) bool {
	return syncfs.Supported() && !req.Options.Has("sync-method") && !req.Options.Has("no-sync-data-files")
}

// syncedDirs are the directories whose file systems hold what initdb writes: the data
// directory and, with waldir, the WAL directory.
func syncedDirs(req sdk.BootstrapRequest) []string {
	dirs := []string{req.Cluster.DataDir}
	if w, _ := req.Options.Get("waldir"); w != "" {
		if !filepath.IsAbs(w) {
			w = filepath.Join(req.Cluster.DataDir, w)
		}
		dirs = append(dirs, w)
	}
	return dirs
}

// noSyncNotice is what initdb --no-sync prints; the plugin syncs, so it is not passed on.
var noSyncNotice = []string{"Sync to disk skipped.", "The data directory might become corrupt if the operating system crashes."}

// argv builds initdb's command line; pwfile is the password file's path (or a placeholder);
// noSync adds --no-sync, for a cluster the plugin syncs itself.
func argv(initdb string, req sdk.BootstrapRequest, pwfile string, noSync bool) []string {
	args := []string{initdb, "--pgdata=" + req.Cluster.DataDir}
	for _, o := range req.Options {
		if spec, _, _ := schema.Lookup(o.Name); spec.Type == sdk.TypeBool {
			if on, err := sdk.ParseBool(o.Value); o.Flag || err == nil && on {
				args = append(args, "--"+spec.Name)
			}
			continue
		}
		args = append(args, o.String())
	}
	if req.Superuser.Username != "" {
		args = append(args, "--username="+req.Superuser.Username)
	}
	if req.Superuser.Password != "" {
		args = append(args, "--pwfile="+pwfile)
	}
	if noSync {
		args = append(args, "--no-sync")
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

func checkRequest(req sdk.BootstrapRequest) error {
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
	initdb, lookErr := req.Cluster.Program("initdb")
	noSync := syncItself(req)
	plan := sdk.Plan{Commands: []sdk.Command{{Argv: argv(initdb, req, pwfilePlaceholder, noSync), Env: req.Env}}}
	if lookErr != nil {
		plan.Notes = append(plan.Notes, lookErr.Error())
	}
	if noSync {
		plan.Notes = append(plan.Notes, "initdb does not sync each file (--no-sync): once it is done, the plugin syncs the data directory's file system with syncfs(2), and fails the bootstrap if that reports an error")
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
	initdb, err := req.Cluster.Program("initdb")
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
	// Opened before initdb writes anything, so that the sync afterwards reports every
	// writeback error on those file systems. If that is not possible, initdb syncs itself.
	var guard *syncfs.Guard
	if syncItself(req) {
		if guard, err = syncfs.Open(syncedDirs(req)...); err != nil && rep != nil {
			rep.Log(sdk.LevelDebug, "initdb syncs each file itself: "+err.Error())
		}
		defer guard.Close()
	}
	proc := sdk.Process{Argv: argv(initdb, req, pwfile, guard != nil), Env: req.Env, ExtraFiles: extra, Secrets: []string{req.Superuser.Password}}
	if guard != nil {
		proc.OnLine = func(_, line string) bool { return !slices.Contains(noSyncNotice, strings.TrimSpace(line)) }
	}
	if err := sdk.Run(ctx, proc, rep); err != nil {
		return sdk.Result{}, fmt.Errorf("while creating a new cluster in %q with initdb: %w", req.Cluster.DataDir, err)
	}
	if guard != nil {
		if err := guard.Sync(); err != nil {
			return sdk.Result{}, fmt.Errorf("%w: the new cluster in %q may not be on disk: %w", sdk.ErrMethodFailed, req.Cluster.DataDir, err)
		}
		if rep != nil {
			rep.Log(sdk.LevelInfo, "synced the new cluster to disk (syncfs)")
		}
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
