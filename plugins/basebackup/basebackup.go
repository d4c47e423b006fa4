package main

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/pgimaged/pgimaged/sdk"
)

// version is the plugin's version; release builds set it with -ldflags "-X main.version=...".
var version = "0.1.0"

const (
	formatReason = "pgimaged needs a plain data directory it can start"
	walReason    = "pgimaged streams WAL during the copy (-X stream) so that the copy is consistent"
	connReason   = "the connection comes from the clone source pgimaged picks (a member tagged clonefrom, else the leader)"
	exitReason   = "it makes pg_basebackup exit without copying anything"
)

// refused are pg_basebackup's long options a user may not give, and why. compress is refused
// only for client-side compression (see checkCompress).
var refused = map[string]string{
	"pgdata":      "pgimaged passes the data directory (data_dir) itself",
	"format":      formatReason,
	"gzip":        formatReason + "; compressed tar output is not one",
	"target":      formatReason + "; the backup must arrive in the data directory",
	"wal-method":  walReason,
	"xlog-method": walReason,
	"dbname":      connReason,
	"host":        connReason,
	"port":        connReason,
	"username":    connReason + "; the user is postgresql.authentication.replication.username",
	"password":    "pg_basebackup cannot prompt for a password; pgimaged hands it over in PGPASSFILE",
	"version":     exitReason,
	"help":        exitReason,
	"compress":    "",
}

// flags are pg_basebackup's long options that take no value.
var flags = map[string]bool{
	"progress": true, "verbose": true, "write-recovery-conf": true, "create-slot": true, "no-slot": true,
	"no-clean": true, "no-sync": true, "no-estimate-size": true, "no-manifest": true, "no-verify-checksums": true,
	"manifest-force-encode": true, "no-password": true,
}

// Plugin is the basebackup method.
type Plugin struct{}

var (
	_ sdk.Plugin       = (*Plugin)(nil)
	_ sdk.Validator    = (*Plugin)(nil)
	_ sdk.Cloner       = (*Plugin)(nil)
	_ sdk.ClonePlanner = (*Plugin)(nil)
)

// New returns the basebackup method.
func New() *Plugin { return &Plugin{} }

// Describe names the plugin. It always needs a running source.
func (p *Plugin) Describe(context.Context, sdk.DescribeRequest) (sdk.DescribeResponse, error) {
	return sdk.DescribeResponse{
		Schema:      sdk.Schema{Open: true},
		Name:        "basebackup",
		Version:     version,
		Description: "copies a running member with pg_basebackup",
	}, nil
}

// Validate refuses the options that pgimaged sets or that would not leave a startable replica.
func (p *Plugin) Validate(_ context.Context, req sdk.ValidateRequest) (sdk.ValidateResponse, error) {
	var diags []sdk.Diagnostic
	if req.Path == sdk.PathBootstrap {
		diags = append(diags, sdk.Errorf("", "basebackup cannot bootstrap a new cluster",
			"pg_basebackup copies a running member; bootstrap with initdb or a custom method"))
	}
	diags = append(diags, checkOptions(req.Options)...)
	return sdk.ValidateResponse{Diagnostics: diags}, nil
}

func checkOptions(opts sdk.Options) []sdk.Diagnostic {
	var diags []sdk.Diagnostic
	for _, o := range opts {
		if err := sdk.CheckName(o.Name); err != nil {
			diags = append(diags, sdk.Errorf(o.Name, "invalid pg_basebackup option name", "%v", err))
			continue
		}
		if len([]rune(o.Name)) == 1 {
			diags = append(diags, sdk.Errorf(o.Name, "short options are not accepted",
				"option %q: give pg_basebackup's long option name (for example max-rate rather than r)", o.Name))
			continue
		}
		if o.Name == "compress" {
			diags = append(diags, checkCompress(o)...)
			continue
		}
		if why, ok := refused[o.Name]; ok {
			diags = append(diags, sdk.Errorf(o.Name, fmt.Sprintf("pg_basebackup option %q is not allowed", o.Name), "%s", why))
			continue
		}
		if full := abbreviates(o.Name); full != "" {
			diags = append(diags, sdk.Errorf(o.Name, fmt.Sprintf("pg_basebackup option %q is not allowed", o.Name),
				"pg_basebackup would read it as --%s; write options in full", full))
			continue
		}
		if strings.ContainsRune(o.Value, 0) {
			diags = append(diags, sdk.Errorf(o.Name, "invalid pg_basebackup option value", "option %q: a value cannot contain a NUL character", o.Name))
			continue
		}
		if flags[o.Name] && !o.Flag && o.Value != "true" {
			diags = append(diags, sdk.Errorf(o.Name, fmt.Sprintf("pg_basebackup option %q takes no value", o.Name),
				"write it as a list entry (%q) or as %s = true, or leave it out", o.Name, o.Name))
			continue
		}
		if o.Name == "no-sync" {
			diags = append(diags, sdk.Diagnostic{Severity: sdk.SeverityWarning, Option: o.Name,
				Summary: "the replica is not synced to disk",
				Detail:  "with no-sync a crash soon after the copy can leave a corrupt replica"})
		}
	}
	return diags
}

// checkCompress allows server-side compression, which still leaves a plain directory, and none.
func checkCompress(o sdk.Option) []sdk.Diagnostic {
	if !o.Flag && (o.Value == "none" || strings.HasPrefix(o.Value, "server-")) {
		return nil
	}
	return []sdk.Diagnostic{sdk.Errorf(o.Name, "client-side compression is not allowed",
		"%s; use server-side compression (for example compress = \"server-gzip\") to save network bandwidth", formatReason)}
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

// argv builds pg_basebackup's command line.
func argv(program string, req sdk.CloneRequest) []string {
	args := []string{program, "--pgdata=" + req.Cluster.DataDir, "-X", "stream", "--dbname=" + req.ConnString}
	for _, o := range req.Options {
		if flags[o.Name] && o.Value == "true" {
			o = sdk.Option{Name: o.Name, Flag: true}
		}
		args = append(args, o.String())
	}
	if !req.Options.Has("progress") {
		args = append(args, "--progress")
	}
	return args
}

// program is pg_basebackup in bin_dir, or from PATH when bin_dir is not set.
func program(binDir string) (string, error) {
	if binDir != "" {
		return filepath.Join(binDir, "pg_basebackup"), nil
	}
	p, err := exec.LookPath("pg_basebackup")
	if err != nil {
		return "pg_basebackup", fmt.Errorf("while looking for pg_basebackup (postgresql.bin_dir is not set): %w", err)
	}
	return p, nil
}

func checkRequest(req sdk.CloneRequest) error {
	if err := sdk.CheckDiagnostics(checkOptions(req.Options)); err != nil {
		return err
	}
	if req.ConnString == "" {
		return fmt.Errorf("pg_basebackup copies a running member: %w", sdk.ErrNoSource)
	}
	if req.Cluster.DataDir == "" {
		return fmt.Errorf("%w: the request names no data directory", sdk.ErrInvalidOptions)
	}
	return nil
}

// PlanClone returns pg_basebackup's command line, secrets masked.
func (p *Plugin) PlanClone(_ context.Context, req sdk.CloneRequest) (sdk.Plan, error) {
	if err := checkRequest(req); err != nil {
		return sdk.Plan{}, err
	}
	prog, lookErr := program(req.Cluster.BinDir)
	mask := sdk.Masker(secrets(req))
	plan := sdk.Plan{Commands: []sdk.Command{{Argv: mask.MaskArgv(argv(prog, req)), Env: req.Env}}}
	if lookErr != nil {
		plan.Notes = append(plan.Notes, lookErr.Error())
	}
	return plan, nil
}

// Clone copies the source into the data directory.
func (p *Plugin) Clone(ctx context.Context, req sdk.CloneRequest, rep sdk.Reporter) (sdk.Result, error) {
	if err := ctx.Err(); err != nil {
		return sdk.Result{}, err
	}
	if err := checkRequest(req); err != nil {
		return sdk.Result{}, err
	}
	prog, err := program(req.Cluster.BinDir)
	if err != nil {
		return sdk.Result{}, fmt.Errorf("%w: %w", sdk.ErrMethodFailed, err)
	}
	meter := newProgressMeter(rep)
	proc := sdk.Process{
		Argv:    argv(prog, req),
		Env:     req.Env,
		Secrets: secrets(req),
		OnLine:  meter.line,
	}
	if err := sdk.Run(ctx, proc, rep); err != nil {
		// pg_basebackup's error can span lines ("...password authentication failed" then
		// "password retrieved from file ..."): name its error line, not only the last one.
		var ee *sdk.ExitError
		if errors.As(err, &ee) {
			if l := errorLine(ee.Tail); l != "" {
				return sdk.Result{}, fmt.Errorf("while copying the source into %q with pg_basebackup (%s): %w", req.Cluster.DataDir, l, err)
			}
		}
		return sdk.Result{}, fmt.Errorf("while copying the source into %q with pg_basebackup: %w", req.Cluster.DataDir, err)
	}
	meter.finish()
	return sdk.Result{Summary: "replica copied with pg_basebackup"}, nil
}

// errorLine returns the last of pg_basebackup's error lines in tail unless it is the very last
// line, which the error shows anyway.
func errorLine(tail []string) string {
	for i := len(tail) - 1; i >= 0; i-- {
		if strings.Contains(tail[i], "error: ") || strings.Contains(tail[i], "FATAL: ") {
			if i == len(tail)-1 {
				return ""
			}
			return tail[i]
		}
	}
	return ""
}

// progressLine matches pg_basebackup's --progress output, with or without --verbose:
// "  12345/678901 kB (1%), 0/1 tablespace (data/base/1/2604)".
var progressLine = regexp.MustCompile(`^\s*(\d+)/(\d+) \S+ \((\d+)%\)`)

// progressMeter turns pg_basebackup's progress lines into progress events, and lets one of them
// into the log every 10%.
type progressMeter struct {
	rep sdk.Reporter

	mu        sync.Mutex
	last      sdk.Progress
	seen      bool
	logged    int // last logged tenth of the copy, -1 before the first
	completed bool
}

func newProgressMeter(rep sdk.Reporter) *progressMeter {
	return &progressMeter{rep: rep, logged: -1}
}

// line handles one output line; it returns false for progress lines that stay out of the log.
func (m *progressMeter) line(_, line string) bool {
	match := progressLine.FindStringSubmatch(line)
	if match == nil {
		return true
	}
	done, err1 := strconv.ParseInt(match[1], 10, 64)
	total, err2 := strconv.ParseInt(match[2], 10, 64)
	percent, err3 := strconv.Atoi(match[3])
	if err1 != nil || err2 != nil || err3 != nil {
		return true
	}
	if total < done {
		total = done
	}
	p := sdk.Progress{Phase: "copy", Done: done * 1024, Total: total * 1024}
	m.mu.Lock()
	m.last, m.seen = p, true
	m.completed = p.Done == p.Total
	tenth := percent / 10
	show := tenth > m.logged
	if show {
		m.logged = tenth
	}
	m.mu.Unlock()
	if m.rep != nil {
		m.rep.Progress(p)
	}
	return show
}

// finish reports the copy complete: after a successful run everything that was to be copied
// has been, whatever the last estimate said.
func (m *progressMeter) finish() {
	m.mu.Lock()
	p, seen, completed := m.last, m.seen, m.completed
	m.mu.Unlock()
	if !seen || completed || m.rep == nil {
		return
	}
	m.rep.Progress(sdk.Progress{Phase: "copy", Done: p.Done, Total: p.Done})
}
