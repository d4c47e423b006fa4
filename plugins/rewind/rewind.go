package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/pgimaged/pgimaged/plugins/internal/pgtool"
	"github.com/pgimaged/pgimaged/sdk"
	"github.com/pgimaged/pgimaged/sdk/libpq"
)

// version is the plugin's version; release builds set it with -ldflags "-X main.version=...".
var version = "0.1.0"

// ErrNoHintLog is why a target cannot be rewound: pg_rewind can tell which pages changed only
// if the target logged hint-bit changes too.
var ErrNoHintLog = errors.New("rewind needs wal_log_hints = on or data checksums")

const (
	connReason  = "the source is the member pgimaged rewinds toward (the leader)"
	exitReason  = "it makes pg_rewind exit without rewinding"
	neverReason = "the daemon writes the standby settings itself, toward the leader"
)

// schema lists pg_rewind's long options (PostgreSQL 15), typed; those pgimaged sets itself or
// that would leave nothing the daemon can start are refused with the reason.
var schema = sdk.Schema{Options: []sdk.OptionSpec{
	{Name: "restore-target-wal", Type: sdk.TypeBool,
		Description: "fetch WAL the target lacks with the restore_command of its configuration"},
	{Name: "config-file", Type: sdk.TypeString,
		Description: "the main configuration file to run the target with (for restore_command and the crash recovery pg_rewind runs)"},
	{Name: "no-ensure-shutdown", Type: sdk.TypeBool,
		Description: "do not finish a crashed target's recovery in single-user mode first (pg_rewind then refuses such a target)"},
	{Name: "no-sync", Type: sdk.TypeBool, Description: "do not fsync the rewound directory (a crash soon after can corrupt it)"},
	{Name: "debug", Type: sdk.TypeBool, Description: "pg_rewind's debug output, in pgimaged's log"},
	{Name: "progress", Type: sdk.TypeBool, Default: "true", Description: "report progress (always on: it feeds pgimaged's progress)"},
	{Name: "target-pgdata", Refused: "pgimaged passes the data directory (data_dir) itself"},
	{Name: "source-server", Refused: connReason},
	{Name: "source-pgdata", Refused: connReason + "; a rewind from a stopped directory is not one pgimaged makes"},
	{Name: "dry-run", Refused: "it leaves the data directory as it was, and the member would start on its old timeline as if rewound"},
	{Name: "write-recovery-conf", Refused: neverReason},
	{Name: "version", Refused: exitReason},
	{Name: "help", Refused: exitReason},
}}

// Plugin is the rewind method.
type Plugin struct{}

var (
	_ sdk.Plugin       = (*Plugin)(nil)
	_ sdk.Validator    = (*Plugin)(nil)
	_ sdk.Cloner       = (*Plugin)(nil)
	_ sdk.ClonePlanner = (*Plugin)(nil)
)

// New returns the rewind method.
func New() *Plugin { return &Plugin{} }

// Describe names the plugin. It needs a running source: the leader.
func (p *Plugin) Describe(context.Context, sdk.DescribeRequest) (sdk.DescribeResponse, error) {
	return sdk.DescribeResponse{
		Schema:      schema,
		Name:        "rewind",
		Version:     version,
		Description: "brings a member's own diverged data directory back in line with a running member, with pg_rewind",
	}, nil
}

// Validate refuses the options that pgimaged sets or that would not leave a rewound directory.
func (p *Plugin) Validate(_ context.Context, req sdk.ValidateRequest) (sdk.ValidateResponse, error) {
	var diags []sdk.Diagnostic
	if req.Path == sdk.PathBootstrap {
		diags = append(diags, sdk.Errorf("", "rewind cannot bootstrap a new cluster",
			"pg_rewind brings an existing data directory in line with a running member; bootstrap with initdb or a custom method"))
	}
	diags = append(diags, checkOptions(req.Values)...)
	return sdk.ValidateResponse{Diagnostics: diags}, nil
}

// checkOptions warns about no-sync.
func checkOptions(v sdk.Values) []sdk.Diagnostic {
	if !v.Bool("no-sync") {
		return nil
	}
	return []sdk.Diagnostic{{Severity: sdk.SeverityWarning, Option: "no-sync",
		Summary: "the rewound directory is not synced to disk",
		Detail:  "with no-sync a crash soon after the rewind can leave a corrupt data directory"}}
}

// argv builds pg_rewind's command line.
func argv(program string, req sdk.CloneRequest) []string {
	conn, _ := sourceSession(req)
	args := []string{program, "--target-pgdata=" + req.Cluster.DataDir, "--source-server=" + conn}
	for _, o := range req.Options {
		if spec, _, _ := schema.Lookup(o.Name); spec.Name != "progress" {
			args = append(args, pgtool.LongOption(spec, o)...)
		}
	}
	return append(args, "--progress") // its output feeds progress events
}

func checkRequest(req sdk.CloneRequest) error {
	return pgtool.CheckCloneRequest(req, "pg_rewind rewinds toward a running member", checkOptions(req.Values))
}

// environment is what pg_rewind and pg_controldata run with: the request's, with their
// messages in English (the plugin reads them) unless the request says otherwise.
func environment(req sdk.CloneRequest) map[string]string {
	env := map[string]string{"LC_MESSAGES": "C"}
	maps.Copy(env, req.Env)
	return env
}

// jitOff is what pg_rewind's session on the source runs with. pg_rewind lists the source's
// files with one recursive query over pg_ls_dir and pg_stat_file; the planner's row estimates
// for those functions put its cost far above jit_above_cost and jit_optimize_above_cost, so a
// server with JIT (PostgreSQL 11 and later, on by default since 12) compiles it with LLVM,
// inlined and optimised: a quarter of a second, where the listing itself takes milliseconds.
const jitOff = "-c jit=off"

// sourceSession returns the connection string and environment pg_rewind runs with: the
// request's, with jitOff added to the session's options (PGOPTIONS, or the connection string's
// options when it sets them, which libpq then prefers) before whatever options the request
// gives, so that a jit setting of the user's still wins. Unchanged before PostgreSQL 11, which
// has no jit setting and would refuse the connection; pg_rewind works only between servers of
// the same major version, so the member's own version stands for the source's.
func sourceSession(req sdk.CloneRequest) (conn string, env map[string]string) {
	conn, env = req.ConnString, environment(req)
	if req.Cluster.ServerVersion < 110000 {
		return conn, env
	}
	settings, _, err := libpq.Parse(conn)
	if err != nil {
		return conn, env // pg_rewind refuses it with libpq's reason
	}
	if opts, ok := settings["options"]; ok {
		return libpq.With(conn, "options", jitOff+" "+opts), env
	}
	opts, ok := env["PGOPTIONS"]
	if !ok {
		opts = os.Getenv("PGOPTIONS")
	}
	env["PGOPTIONS"] = strings.TrimSpace(jitOff + " " + opts)
	return conn, env
}

// PlanClone returns pg_rewind's command line, secrets masked.
func (p *Plugin) PlanClone(_ context.Context, req sdk.CloneRequest) (sdk.Plan, error) {
	if err := checkRequest(req); err != nil {
		return sdk.Plan{}, err
	}
	prog, lookErr := req.Cluster.Program("pg_rewind")
	mask := sdk.Masker(pgtool.Secrets(req.ConnString, req.Env))
	plan := sdk.Plan{
		Commands: []sdk.Command{{Argv: mask.MaskArgv(argv(prog, req)), Env: planEnv(req)}},
		Notes: []string{"first checks that the data directory holds a cluster (PG_VERSION, global/pg_control), that its server is stopped, " +
			"and with pg_controldata that it runs with wal_log_hints = on or data checksums; " +
			"a server not shut down cleanly first finishes its crash recovery in single-user mode (postgres --single), with archive_mode = on and archive_command = false so that it keeps the WAL pg_rewind reads",
			"pg_rewind's session on the source runs with jit = off (" + jitOff + "): its listing of the source's files would otherwise be compiled by the source's JIT, which takes longer than the listing"},
	}
	if lookErr != nil {
		plan.Notes = append(plan.Notes, lookErr.Error())
	}
	return plan, nil
}

// planEnv is the environment a plan shows pg_rewind running with: the request's, with the
// PGOPTIONS sourceSession sets.
func planEnv(req sdk.CloneRequest) map[string]string {
	_, env := sourceSession(req)
	if v, ok := env["PGOPTIONS"]; ok {
		out := maps.Clone(req.Env)
		if out == nil {
			out = map[string]string{}
		}
		out["PGOPTIONS"] = v
		return out
	}
	return req.Env
}

// Clone rewinds the member's own data directory toward the source.
func (p *Plugin) Clone(ctx context.Context, req sdk.CloneRequest, rep sdk.Reporter) (sdk.Result, error) {
	if err := ctx.Err(); err != nil {
		return sdk.Result{}, err
	}
	if err := checkRequest(req); err != nil {
		return sdk.Result{}, err
	}
	dir := req.Cluster.DataDir
	ctl, err := checkTarget(ctx, req, rep)
	if err != nil {
		return sdk.Result{}, fmt.Errorf("%w: cannot rewind %q: %w", sdk.ErrMethodFailed, dir, err)
	}
	if !ctl.shutDown() && !req.Values.Bool("no-ensure-shutdown") {
		if err := recoverTarget(ctx, req, rep, ctl["Database cluster state"]); err != nil {
			return sdk.Result{}, fmt.Errorf("%w: cannot rewind %q: %w", sdk.ErrMethodFailed, dir, err)
		}
	}
	prog, err := req.Cluster.Program("pg_rewind")
	if err != nil {
		return sdk.Result{}, fmt.Errorf("%w: %w", sdk.ErrMethodFailed, err)
	}
	meter := &progressMeter{rep: rep}
	_, env := sourceSession(req)
	proc := sdk.Process{
		Argv:    argv(prog, req),
		Env:     env,
		Secrets: pgtool.Secrets(req.ConnString, req.Env),
		OnLine:  meter.line,
	}
	if err := sdk.Run(ctx, proc, rep); err != nil {
		what := fmt.Sprintf("while rewinding %q with pg_rewind", dir)
		var ee *sdk.ExitError
		if errors.As(err, &ee) {
			if l := pgtool.ErrorLine(ee.Tail); l != "" {
				what += " (" + l + ")"
			}
			if socketInSource(ee.Tail) {
				what += "; " + socketHint
			}
		}
		return sdk.Result{}, fmt.Errorf("%s: %w", what, err)
	}
	if meter.noRewind() {
		return sdk.Result{Summary: "pg_rewind found nothing to rewind: the data directory had not diverged"}, nil
	}
	return sdk.Result{Summary: "data directory rewound with pg_rewind"}, nil
}

// socketHint explains pg_rewind's failure to read the source's unix socket.
const socketHint = "the source keeps its unix socket in its data directory, which pg_rewind copies whole and cannot read a socket of: " +
	"set the source's unix_socket_directories to a directory outside its data directory"

// socketInSource reports whether pg_rewind failed on a unix socket (".s.PGSQL.5432") in the
// source's data directory.
func socketInSource(tail []string) bool {
	for _, l := range tail {
		if strings.Contains(l, `could not open file ".s.PGSQL.`) {
			return true
		}
	}
	return false
}

// checkTarget checks what pg_rewind needs of the target before it changes anything: a cluster
// in dir, its server stopped, hint-bit changes logged (wal_log_hints or data checksums), and,
// before PostgreSQL 13 (whose pg_rewind cannot finish a crashed server's recovery itself), a
// clean shutdown.
func checkTarget(ctx context.Context, req sdk.CloneRequest, rep sdk.Reporter) (control, error) {
	dir := req.Cluster.DataDir
	for _, f := range []string{"PG_VERSION", filepath.Join("global", "pg_control")} {
		if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("it holds no cluster (no %s): rewind works only on the member's own data directory holding the cluster", f)
		}
	}
	if pid, ok := serverRunning(dir); ok {
		return nil, fmt.Errorf("its server is running (postmaster.pid names pid %d): it must be stopped before a rewind", pid)
	}
	ctl, err := controlData(ctx, req, rep)
	if err != nil {
		return nil, err
	}
	return ctl, ctl.rewindable(req.Cluster.ServerVersion)
}

// recoverTarget finishes the recovery of a target that was not shut down cleanly (state is
// what its control file says), in single-user mode, as pg_rewind would, but with WAL
// archiving on and an archive_command that always fails: the end-of-recovery checkpoint then
// keeps every WAL segment as not yet archived (a .ready mark in archive_status) instead of
// removing or recycling it, and pg_rewind still finds the WAL from the last checkpoint before
// the timelines diverged (after its own crash recovery it would not, and fail with "could not
// find previous WAL record"). pg_rewind then removes those marks with the target's other
// files the source does not have.
func recoverTarget(ctx context.Context, req sdk.CloneRequest, rep sdk.Reporter, state string) error {
	prog, err := req.Cluster.Program("postgres")
	if err != nil {
		return err
	}
	dir := req.Cluster.DataDir
	argv := []string{prog, "--single", "-F", "-D", dir, "-c", "archive_mode=on", "-c", "archive_command=false"}
	if f := req.Values.String("config-file"); f != "" {
		argv = append(argv, "-c", "config_file="+f)
	}
	argv = append(argv, "template1") // single-user mode needs a database; its input is empty
	restore, err := setSignalsAside(dir)
	defer func() {
		if rerr := restore(); rerr != nil {
			rep.Log(sdk.LevelError, "could not put a recovery signal file back", "error", rerr.Error())
		}
	}()
	if err != nil {
		return err
	}
	rep.Log(sdk.LevelInfo, "finishing the crash recovery of the data directory in single-user mode before pg_rewind, keeping its WAL",
		"state", state, "data_dir", dir)
	if err := sdk.Run(ctx, sdk.Process{Argv: argv, Env: environment(req)}, rep); err != nil {
		what := "while finishing its crash recovery in single-user mode"
		var ee *sdk.ExitError
		if errors.As(err, &ee) {
			if l := pgtool.ErrorLine(ee.Tail); l != "" {
				what += " (" + l + ")"
			}
		}
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// setSignalsAside renames standby.signal and recovery.signal in dir out of the way, for a
// single-user server, which refuses standby mode and has no archive recovery to finish; restore
// puts back those it renamed.
func setSignalsAside(dir string) (restore func() error, err error) {
	var moved []string
	restore = func() error {
		var errs []error
		for _, f := range moved {
			errs = append(errs, os.Rename(f+".pgimaged-rewind", f))
		}
		moved = nil
		return errors.Join(errs...)
	}
	for _, name := range []string{"standby.signal", "recovery.signal"} {
		f := filepath.Join(dir, name)
		if err := os.Rename(f, f+".pgimaged-rewind"); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return restore, err
		}
		moved = append(moved, f)
	}
	return restore, nil
}

// serverRunning reports whether postmaster.pid in dir names a live process.
func serverRunning(dir string) (int, bool) {
	b, err := os.ReadFile(filepath.Join(dir, "postmaster.pid"))
	if err != nil {
		return 0, false
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil || pid <= 0 {
		return 0, false
	}
	err = syscall.Kill(pid, 0)
	return pid, err == nil || errors.Is(err, syscall.EPERM)
}

// control is what pg_controldata says of the target.
type control map[string]string

// controlData runs pg_controldata on the target.
func controlData(ctx context.Context, req sdk.CloneRequest, rep sdk.Reporter) (control, error) {
	prog, err := req.Cluster.Program("pg_controldata")
	if err != nil {
		return nil, err
	}
	var mu sync.Mutex
	ctl := control{}
	proc := sdk.Process{
		Argv: []string{prog, "--pgdata=" + req.Cluster.DataDir},
		Env:  environment(req),
		OnLine: func(stream, line string) bool {
			if k, v, ok := strings.Cut(line, ":"); ok && stream == "stdout" {
				mu.Lock()
				ctl[strings.TrimSpace(k)] = strings.TrimSpace(v)
				mu.Unlock()
				return false
			}
			return true
		},
	}
	if err := sdk.Run(ctx, proc, rep); err != nil {
		return nil, fmt.Errorf("while reading its control file with pg_controldata: %w", err)
	}
	return ctl, nil
}

// rewindable checks the control file's settings: hint-bit changes logged, and a clean shutdown
// where pg_rewind (before 13) cannot finish a crash recovery itself. serverVersion 0 is unknown.
func (c control) rewindable(serverVersion int) error {
	hints, ok1 := c["wal_log_hints setting"]
	sums, ok2 := c["Data page checksum version"]
	if !ok1 || !ok2 {
		return errors.New("pg_controldata does not say whether the cluster logs hint bits (wal_log_hints, data checksums)")
	}
	if hints != "on" && sums == "0" {
		return fmt.Errorf("%w: the cluster has neither (wal_log_hints = %s at its last start, no data checksums); re-copy it instead", ErrNoHintLog, hints)
	}
	if !c.shutDown() && serverVersion > 0 && serverVersion < 130000 {
		return fmt.Errorf("it was not shut down cleanly (%s), and pg_rewind before PostgreSQL 13 cannot finish its recovery: start and stop it once", c["Database cluster state"])
	}
	return nil
}

// shutDown reports whether the target's server was shut down cleanly.
func (c control) shutDown() bool {
	state := c["Database cluster state"]
	return state == "shut down" || state == "shut down in recovery"
}

// progressLine matches pg_rewind's --progress output: "  1234/5678 kB (21%) copied".
var progressLine = regexp.MustCompile(`^\s*(\d+)/(\d+) kB \((\d+)%\) copied`)

// progressMeter turns pg_rewind's progress lines into progress events, keeping them out of the
// log but for the last, and notes whether pg_rewind found nothing to do.
type progressMeter struct {
	rep sdk.Reporter

	mu      sync.Mutex
	nothing bool
}

// line handles one output line; it returns false for the progress lines that stay out of the
// log.
func (m *progressMeter) line(_, line string) bool {
	if strings.Contains(line, "no rewind required") {
		m.mu.Lock()
		m.nothing = true
		m.mu.Unlock()
	}
	match := progressLine.FindStringSubmatch(line)
	if match == nil {
		return true
	}
	done, _ := strconv.ParseInt(match[1], 10, 64)
	total, _ := strconv.ParseInt(match[2], 10, 64)
	if m.rep != nil {
		m.rep.Progress(sdk.Progress{Phase: "rewind", Done: done * 1024, Total: max(total, done) * 1024})
	}
	return done >= total
}

func (m *progressMeter) noRewind() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.nothing
}
