package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pgimaged/pgimaged/sdk"
)

// Version of this plugin.
const Version = "0.1.0"

// Progress phases.
const (
	PhaseBackupList  = "backup-list"
	PhaseBackupFetch = "backup-fetch"
)

// Plugin restores data directories from WAL-E or WAL-G base backups.
type Plugin struct {
	// RetryWait is the pause before another attempt; default one second, as in Patroni.
	RetryWait time.Duration
	// ProgressEvery is how often backup-fetch progress is measured; default five seconds.
	ProgressEvery time.Duration
	// Self is the executable that serves `envdir` in restore_command when envdir(8) is not
	// installed; default the plugin's own executable.
	Self string
}

var (
	_ sdk.Plugin           = (*Plugin)(nil)
	_ sdk.Validator        = (*Plugin)(nil)
	_ sdk.Cloner           = (*Plugin)(nil)
	_ sdk.Bootstrapper     = (*Plugin)(nil)
	_ sdk.ClonePlanner     = (*Plugin)(nil)
	_ sdk.BootstrapPlanner = (*Plugin)(nil)
)

// New returns the wale plugin.
func New() *Plugin { return &Plugin{} }

// Describe says who the plugin is. It works without a running source (no_master): then the
// backup is used without comparing it with the source's position.
func (p *Plugin) Describe(context.Context, sdk.DescribeRequest) (sdk.DescribeResponse, error) {
	return sdk.DescribeResponse{
		Schema:             schema,
		Name:               "wale",
		Version:            Version,
		Description:        "restores the latest WAL-E or WAL-G base backup (Patroni's wale_restore)",
		WorksWithoutSource: true,
	}, nil
}

// Validate checks a method's options: the tool, the numbers, and that envdir is a directory.
func (p *Plugin) Validate(_ context.Context, req sdk.ValidateRequest) (sdk.ValidateResponse, error) {
	_, diags := parseConfig(req.Command, req.Options)
	return sdk.ValidateResponse{Diagnostics: diags}, nil
}

// Clone makes a replica from the LATEST base backup, unless the source has moved too far past it.
func (p *Plugin) Clone(ctx context.Context, req sdk.CloneRequest, r sdk.Reporter) (sdk.Result, error) {
	return p.image(ctx, sdk.PathClone, req.Command, req.Options, req.Cluster, req.ConnString, req.Env, r)
}

// Bootstrap makes a new cluster from the LATEST base backup. Recovery replays the archive with
// restore_command and ends as the method's recovery_conf says.
func (p *Plugin) Bootstrap(ctx context.Context, req sdk.BootstrapRequest, r sdk.Reporter) (sdk.Result, error) {
	return p.image(ctx, sdk.PathBootstrap, req.Command, req.Options, req.Cluster, "", req.Env, r)
}

// image restores the LATEST base backup into c's data directory, for a replica or a new cluster
// as path says, and hands pgimaged the restore_command that fetches archived WAL.
func (p *Plugin) image(ctx context.Context, path sdk.Path, command string, opts sdk.Options, c sdk.Cluster, connString string, env map[string]string, r sdk.Reporter) (sdk.Result, error) {
	if err := ctx.Err(); err != nil {
		return sdk.Result{}, err
	}
	cfg, err := loadConfig(command, opts)
	if err != nil {
		return sdk.Result{}, err
	}
	b, err := p.restore(ctx, cfg, c, connString, env, r)
	if err != nil {
		return sdk.Result{}, err
	}
	rc, err := p.restoreCommand(cfg)
	if err != nil {
		return sdk.Result{}, err
	}
	return sdk.Result{
		RecoverySettings: map[string]string{"restore_command": rc},
		Standby:          path == sdk.PathClone,
		Summary:          fmt.Sprintf("restored %s backup %s", cfg.tool, b.Name),
	}, nil
}

// PlanClone says what Clone would run.
func (p *Plugin) PlanClone(_ context.Context, req sdk.CloneRequest) (sdk.Plan, error) {
	return p.plan(req.Command, req.Options, req.Cluster, req.ConnString)
}

// PlanBootstrap says what Bootstrap would run.
func (p *Plugin) PlanBootstrap(_ context.Context, req sdk.BootstrapRequest) (sdk.Plan, error) {
	return p.plan(req.Command, req.Options, req.Cluster, "")
}

func (p *Plugin) plan(command string, opts sdk.Options, c sdk.Cluster, connString string) (sdk.Plan, error) {
	cfg, err := loadConfig(command, opts)
	if err != nil {
		return sdk.Plan{}, err
	}
	env := map[string]string{}
	if cfg.envdir != "" {
		ed, err := ReadEnvdir(cfg.envdir)
		if err != nil {
			return sdk.Plan{}, err
		}
		for k, v := range ed.ProcessEnv() {
			if secretName(k) && v != "" {
				v = sdk.Mask
			}
			env[k] = v
		}
	}
	var notes []string
	if connString != "" {
		notes = append(notes, fmt.Sprintf("uses the backup only if the source's WAL is less than %g MB and less than %g%% of the backup's size past the backup's start; else fails so that the next method runs",
			cfg.thresholdMB, cfg.thresholdPct))
	} else {
		notes = append(notes, "no running source: the backup is used without comparing it with a source's WAL position")
	}
	notes = append(notes, fmt.Sprintf("backup-list and backup-fetch are tried %d time(s)", cfg.retries+1))
	if rc, err := p.restoreCommand(cfg); err == nil {
		notes = append(notes, "restore_command = "+rc)
	}
	return sdk.Plan{
		Commands: []sdk.Command{
			{Argv: cfg.argv(p.listArgs(cfg)...), Env: env},
			{Argv: cfg.argv("backup-fetch", c.DataDir, "LATEST"), Env: env},
		},
		Notes: notes,
	}, nil
}

func (p *Plugin) listArgs(cfg config) []string {
	if cfg.tool == ToolWALG {
		return []string{"backup-list", "--detail", "--json"}
	}
	return []string{"backup-list", "--detail", "LATEST"}
}

// retryable marks a failure another attempt may cure: the tool failed, the source was unreachable.
type retryable struct{ err error }

func (e retryable) Error() string { return e.err.Error() }
func (e retryable) Unwrap() error { return e.err }

// restore runs Patroni's wale_restore: list the LATEST backup, compare it with the source, fetch it,
// repair pg_wal. Failures of the tool or of the connection are retried `retries` times.
func (p *Plugin) restore(ctx context.Context, cfg config, c sdk.Cluster, connString string, base map[string]string, r sdk.Reporter) (backupInfo, error) {
	if c.DataDir == "" {
		return backupInfo{}, &sdk.OptionsError{Diagnostics: []sdk.Diagnostic{sdk.Errorf("", "no data directory", "the request names no data directory")}}
	}
	env, secrets, err := cfg.env(base)
	if err != nil {
		return backupInfo{}, sdk.Failed(err)
	}
	wait := p.RetryWait
	if wait <= 0 {
		wait = time.Second
	}
	attempts := cfg.retries + 1
	var last error
	for i := 1; i <= attempts; i++ {
		if i > 1 {
			logf(r, sdk.LevelWarn, "attempt %d of %d failed, trying again: %v", i-1, attempts, last)
			select {
			case <-ctx.Done():
				return backupInfo{}, ctx.Err()
			case <-time.After(wait):
			}
			if err := emptyDir(c.DataDir); err != nil {
				return backupInfo{}, sdk.Failed(err)
			}
		}
		b, err := p.attempt(ctx, cfg, c, connString, env, secrets, r)
		if err == nil {
			return b, nil
		}
		var again retryable
		if !errors.As(err, &again) || ctx.Err() != nil {
			return backupInfo{}, sdk.Failed(err)
		}
		last = again.err
	}
	return backupInfo{}, sdk.Failed(fmt.Errorf("while restoring with %s, after %d attempt(s): %w", cfg.tool, attempts, last))
}

func (p *Plugin) attempt(ctx context.Context, cfg config, c sdk.Cluster, connString string, env map[string]string, secrets []string, r sdk.Reporter) (backupInfo, error) {
	progress(r, sdk.Progress{Phase: PhaseBackupList})
	var stdout []string
	var mu sync.Mutex
	err := sdk.Run(ctx, sdk.Process{
		Argv: cfg.argv(p.listArgs(cfg)...), Env: env, Secrets: secrets,
		OnLine: func(stream, line string) bool {
			if stream != "stdout" {
				return true
			}
			mu.Lock()
			stdout = append(stdout, line)
			mu.Unlock()
			return false
		},
	}, r)
	if err != nil {
		return backupInfo{}, retryable{fmt.Errorf("while listing the latest backup with %s: %w", cfg.tool, err)}
	}
	var b backupInfo
	if cfg.tool == ToolWALG {
		b, err = parseWALGList(strings.Join(stdout, "\n"))
	} else {
		b, err = parseWALEList(strings.Join(stdout, "\n"))
	}
	if err != nil {
		return backupInfo{}, err
	}
	logf(r, sdk.LevelInfo, "latest backup is %s (%s expanded)", b.Name, mb(float64(b.Size)))

	if connString == "" {
		logf(r, sdk.LevelInfo, "no running source: using backup %s without comparing WAL positions", b.Name)
	} else {
		pos, err := walDistance(ctx, connString, env, b)
		if err != nil {
			if ctx.Err() != nil {
				return backupInfo{}, err
			}
			return backupInfo{}, retryable{fmt.Errorf("while comparing backup %s with the source: %w", b.Name, err)}
		}
		if b.Size == 0 {
			logf(r, sdk.LevelWarn, "%s does not give the size of backup %s; only threshold_megabytes applies", cfg.tool, b.Name)
		}
		if err := checkThresholds(pos.Distance, b.Size, cfg.thresholdMB, cfg.thresholdPct); err != nil {
			return backupInfo{}, fmt.Errorf("backup %s starts at %s: %w", b.Name, FormatLSN(pos.StartLSN), err)
		}
		logf(r, sdk.LevelInfo, "backup %s starts at %s, %s of WAL behind the source: within the thresholds",
			b.Name, FormatLSN(pos.StartLSN), mb(float64(pos.Distance)))
	}

	if err := p.fetch(ctx, cfg, c.DataDir, b.Size, env, secrets, r); err != nil {
		return backupInfo{}, retryable{fmt.Errorf("while fetching backup %s with %s: %w", b.Name, cfg.tool, err)}
	}
	if err := repairWALDir(c.DataDir, r); err != nil {
		return backupInfo{}, err
	}
	return b, nil
}

// fetch runs backup-fetch, reporting how much of the backup's size the data directory holds.
func (p *Plugin) fetch(ctx context.Context, cfg config, dataDir string, size int64, env map[string]string, secrets []string, r sdk.Reporter) error {
	progress(r, sdk.Progress{Phase: PhaseBackupFetch, Total: size})
	every := p.ProgressEvery
	if every <= 0 {
		every = 5 * time.Second
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				n := dirSize(dataDir)
				if size > 0 && n > size {
					n = size
				}
				progress(r, sdk.Progress{Phase: PhaseBackupFetch, Done: n, Total: size})
			}
		}
	}()
	err := sdk.Run(ctx, sdk.Process{Argv: cfg.argv("backup-fetch", dataDir, "LATEST"), Env: env, Secrets: secrets}, r)
	close(stop)
	<-done
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(dataDir, "PG_VERSION")); err != nil {
		return fmt.Errorf("backup-fetch succeeded but left no PG_VERSION in %q: %w", dataDir, sdk.ErrMethodFailed)
	}
	progress(r, sdk.Progress{Phase: PhaseBackupFetch, Done: size, Total: size})
	return nil
}

// repairWALDir makes pg_wal (pg_xlog before PostgreSQL 10) a directory when the backup left it
// missing or as a symbolic link to nowhere, like Patroni's fix_subdirectory_path_if_broken.
func repairWALDir(dataDir string, r sdk.Reporter) error {
	name := "pg_wal"
	if b, err := os.ReadFile(filepath.Join(dataDir, "PG_VERSION")); err == nil {
		if major, err := strconv.ParseFloat(strings.TrimSpace(string(b)), 64); err == nil && major < 10 {
			name = "pg_xlog"
		}
	}
	path := filepath.Join(dataDir, name)
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSymlink != 0 {
		target, _ := os.Readlink(path)
		logf(r, sdk.LevelWarn, "%s is a broken symbolic link to %q; replacing it with a directory", name, target)
		if err := os.Remove(path); err != nil {
			return fmt.Errorf("while removing broken %s link %q: %w", name, path, err)
		}
	} else {
		logf(r, sdk.LevelInfo, "the backup has no %s; creating it", name)
	}
	if err := os.Mkdir(path, 0o700); err != nil {
		return fmt.Errorf("while creating %s directory %q: %w", name, path, err)
	}
	return nil
}

// emptyDir removes what an earlier attempt left in dir, keeping dir itself.
func emptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("while emptying data directory %q for another attempt: %w", dir, err)
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return fmt.Errorf("while emptying data directory %q for another attempt: %w", dir, err)
		}
	}
	return nil
}

func dirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// restoreCommand is the restore_command PostgreSQL runs to fetch archived WAL:
// `[envdir DIR] <tool> [--aws-instance-profile] wal-fetch "%f" "%p"`.
func (p *Plugin) restoreCommand(cfg config) (string, error) {
	var words []string
	if cfg.envdir != "" {
		if envdir, err := exec.LookPath("envdir"); err == nil {
			words = append(words, envdir, cfg.envdir)
		} else {
			self := p.Self
			if self == "" {
				if self, err = os.Executable(); err != nil {
					return "", fmt.Errorf("while locating the plugin to serve envdir in restore_command: %w", err)
				}
			}
			words = append(words, self, EnvdirCommand, cfg.envdir)
		}
	}
	exe := append([]string(nil), cfg.exe...)
	if !strings.Contains(exe[0], "/") {
		if abs, err := exec.LookPath(exe[0]); err == nil && filepath.IsAbs(abs) {
			exe[0] = abs
		}
	}
	words = append(words, exe...)
	words = append(words, cfg.globalArgs()...)
	words = append(words, "wal-fetch")
	quoted := make([]string, 0, len(words)+2)
	for _, w := range words {
		quoted = append(quoted, strings.ReplaceAll(shellQuote(w), "%", "%%"))
	}
	quoted = append(quoted, `"%f"`, `"%p"`)
	return strings.Join(quoted, " "), nil
}

var shellSafe = regexp.MustCompile(`^[A-Za-z0-9_@%+=:,./-]+$`)

// shellQuote quotes s for the shell PostgreSQL runs restore_command with.
func shellQuote(s string) string {
	if s != "" && shellSafe.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func progress(r sdk.Reporter, p sdk.Progress) {
	if r != nil {
		r.Progress(p)
	}
}

func logf(r sdk.Reporter, level sdk.Level, format string, args ...any) {
	if r != nil {
		r.Log(level, fmt.Sprintf(format, args...))
	}
}
