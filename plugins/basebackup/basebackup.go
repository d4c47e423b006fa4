package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/pgimaged/pgimaged/plugins/internal/pgtool"
	"github.com/pgimaged/pgimaged/sdk"
	"github.com/pgimaged/pgimaged/sdk/syncfs"
)

// version is the plugin's version; release builds set it with -ldflags "-X main.version=...".
var version = "0.1.0"

const (
	formatReason = "pgimaged needs a plain data directory it can start"
	walReason    = "pgimaged streams WAL during the copy (-X stream) so that the copy is consistent"
	connReason   = "the connection comes from the clone source pgimaged picks (a member tagged clonefrom, else the leader)"
	exitReason   = "it makes pg_basebackup exit without copying anything"
)

// schema lists pg_basebackup's long options (PostgreSQL 15), typed; those pgimaged sets itself or
// that would not leave a replica it can start are refused with the reason. compress is checked
// further by Validate: only server-side compression and none leave a plain directory.
var schema = sdk.Schema{Options: []sdk.OptionSpec{
	{Name: "checkpoint", Type: sdk.TypeEnum, EnumValues: []string{"fast", "spread"}, Default: "spread",
		Description: "how the source checkpoints before the copy: fast (at once, more I/O) or spread (as scheduled)"},
	{Name: "max-rate", Type: sdk.TypeSize, SizeUnit: 1024, Min: sdk.Bound(32 << 10), Max: sdk.Bound(1 << 30),
		Description: "the most the source sends per second, 32kB to 1GB (a bare number counts kB; suffixes kB, MB, GB or k, M)"},
	{Name: "label", Type: sdk.TypeString, Description: "the backup's label", Default: "pg_basebackup base backup"},
	{Name: "slot", Type: sdk.TypeString, Description: "the replication slot to stream WAL through"},
	{Name: "create-slot", Type: sdk.TypeBool, Description: "create the slot named by slot first"},
	{Name: "no-slot", Type: sdk.TypeBool, Description: "stream WAL without a temporary slot"},
	{Name: "progress", Type: sdk.TypeBool, Default: "true", Description: "report progress (always on: it feeds pgimaged's progress)"},
	{Name: "verbose", Type: sdk.TypeBool, Description: "pg_basebackup's verbose output, in pgimaged's log"},
	{Name: "write-recovery-conf", Type: sdk.TypeBool, Description: "let pg_basebackup write primary_conninfo and standby.signal (pgimaged writes its own)"},
	{Name: "no-clean", Type: sdk.TypeBool, Description: "leave a failed copy in place (pgimaged empties the data directory anyway)"},
	{Name: "no-sync", Type: sdk.TypeBool, Description: "do not fsync the copy (a crash soon after can corrupt it)"},
	{Name: "no-estimate-size", Type: sdk.TypeBool, Description: "do not estimate the size first (progress has no total)"},
	{Name: "no-manifest", Type: sdk.TypeBool, Description: "do not write a backup manifest"},
	{Name: "no-verify-checksums", Type: sdk.TypeBool, Description: "do not verify data checksums during the copy"},
	{Name: "manifest-force-encode", Type: sdk.TypeBool, Description: "hex-encode every file name in the manifest"},
	{Name: "manifest-checksums", Type: sdk.TypeEnum, EnumValues: []string{"NONE", "CRC32C", "SHA224", "SHA256", "SHA384", "SHA512"},
		Description: "the checksum algorithm of the backup manifest"},
	{Name: "no-password", Type: sdk.TypeBool, Description: "never prompt for a password"},
	{Name: "status-interval", Type: sdk.TypeInt, Min: sdk.Bound(0), Description: "seconds between status packets to the source"},
	{Name: "tablespace-mapping", Type: sdk.TypeList, Description: "OLDDIR=NEWDIR pairs, one per tablespace to put elsewhere (pg_basebackup -T, once per element)"},
	{Name: "waldir", Type: sdk.TypeString, Description: "a directory of its own for pg_wal"},
	{Name: "compress", Type: sdk.TypeString,
		Description: "server-side compression only (server-gzip, server-lz4, server-zstd, with :LEVEL or options) or none"},
	{Name: "pgdata", Refused: "pgimaged passes the data directory (data_dir) itself"},
	{Name: "format", Refused: formatReason},
	{Name: "gzip", Refused: formatReason + "; compressed tar output is not one"},
	{Name: "target", Refused: formatReason + "; the backup must arrive in the data directory"},
	{Name: "wal-method", Refused: walReason},
	{Name: "xlog-method", Refused: walReason},
	{Name: "dbname", Refused: connReason},
	{Name: "host", Refused: connReason},
	{Name: "port", Refused: connReason},
	{Name: "username", Refused: connReason + "; the user is postgresql.authentication.replication.username"},
	{Name: "password", Refused: "pg_basebackup cannot prompt for a password; pgimaged hands it over in PGPASSFILE"},
	{Name: "version", Refused: exitReason},
	{Name: "help", Refused: exitReason},
}}

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
		Schema:      schema,
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
	diags = append(diags, checkOptions(req.Values)...)
	return sdk.ValidateResponse{Diagnostics: diags}, nil
}

// checkOptions checks what the schema cannot: the form of compress, and warns about no-sync.
func checkOptions(v sdk.Values) []sdk.Diagnostic {
	var diags []sdk.Diagnostic
	if v.Has("compress") {
		diags = append(diags, checkCompress(v.String("compress"))...)
	}
	for _, m := range v.List("tablespace-mapping") {
		diags = append(diags, checkTablespaceMapping(m)...)
	}
	if v.Bool("no-sync") {
		diags = append(diags, sdk.Diagnostic{Severity: sdk.SeverityWarning, Option: "no-sync",
			Summary: "the replica is not synced to disk",
			Detail:  "with no-sync a crash soon after the copy can leave a corrupt replica"})
	}
	return diags
}

// checkTablespaceMapping checks one OLDDIR=NEWDIR element as pg_basebackup reads it ("\=" is
// an '=' inside a directory): both directories absolute. The value is not shown: it may be read
// by env() or file().
func checkTablespaceMapping(m string) []sdk.Diagnostic {
	old, dir, found := splitMapping(m)
	if !found || !strings.HasPrefix(old, "/") || !strings.HasPrefix(dir, "/") {
		return []sdk.Diagnostic{sdk.Errorf("tablespace-mapping", "invalid tablespace mapping",
			"each element must be OLDDIR=NEWDIR with both directories absolute, for example \"/srv/ts1=/data/ts1\"")}
	}
	return nil
}

// splitMapping splits OLDDIR=NEWDIR at its first '=' that is not escaped ("\\="); NEWDIR is
// returned as pg_basebackup reads it, with "\\=" for '='.
func splitMapping(m string) (old, dir string, found bool) {
	for i := 0; i < len(m); i++ {
		if m[i] == '\\' && i+1 < len(m) && m[i+1] == '=' {
			i++
			continue
		}
		if m[i] == '=' {
			return m[:i], strings.ReplaceAll(m[i+1:], `\=`, "="), true
		}
	}
	return "", "", false
}

// checkCompress allows server-side compression, which still leaves a plain directory, and none.
func checkCompress(value string) []sdk.Diagnostic {
	if value == "none" || strings.HasPrefix(value, "server-") {
		return nil
	}
	return []sdk.Diagnostic{sdk.Errorf("compress", "client-side compression is not allowed",
		"%s; use server-side compression (for example compress = \"server-gzip\") to save network bandwidth", formatReason)}
}

// syncItself reports whether the plugin syncs the copy itself, with one syncfs(2) per file
// system once pg_basebackup is done, instead of pg_basebackup's fsync of every file: where
// syncfs reports writeback errors, unless the user chose how pg_basebackup syncs (no-sync,
// sync-method).
func syncItself(req sdk.CloneRequest) bool {
	return syncfs.Supported() && !req.Options.Has("no-sync") && !req.Options.Has("sync-method")
}

// targetDirs are the directories pg_basebackup is told to write to: the data directory,
// waldir, and the new places of mapped tablespaces.
func targetDirs(req sdk.CloneRequest) []string {
	dirs := []string{req.Cluster.DataDir}
	if w, _ := req.Options.Get("waldir"); w != "" {
		dirs = append(dirs, w)
	}
	for _, o := range req.Options {
		if spec, _, _ := schema.Lookup(o.Name); spec.Name != "tablespace-mapping" {
			continue
		}
		for _, m := range o.List {
			if _, dir, ok := splitMapping(m); ok {
				dirs = append(dirs, dir)
			}
		}
	}
	return dirs
}

// writtenDirs are the places the copy landed in, read from the copy itself: the data
// directory, pg_wal and every tablespace, wherever their links point.
func writtenDirs(dataDir string) []string {
	dirs := []string{dataDir}
	if d, err := filepath.EvalSymlinks(filepath.Join(dataDir, "pg_wal")); err == nil {
		dirs = append(dirs, d)
	}
	ents, _ := os.ReadDir(filepath.Join(dataDir, "pg_tblspc"))
	for _, e := range ents {
		if d, err := filepath.EvalSymlinks(filepath.Join(dataDir, "pg_tblspc", e.Name())); err == nil {
			dirs = append(dirs, d)
		}
	}
	return dirs
}

// argv builds pg_basebackup's command line; noSync adds --no-sync, for a copy the plugin syncs
// itself.
func argv(program string, req sdk.CloneRequest, noSync bool) []string {
	args := []string{program, "--pgdata=" + req.Cluster.DataDir, "-X", "stream", "--dbname=" + req.ConnString}
	for _, o := range req.Options {
		spec, _, _ := schema.Lookup(o.Name)
		switch {
		case spec.Name == "progress":
		case spec.Name == "tablespace-mapping": // -T OLDDIR=NEWDIR, once per tablespace
			for _, m := range req.Values.List("tablespace-mapping") {
				args = append(args, "-T", m)
			}
		case spec.Name == "max-rate": // pg_basebackup reads kB, or k and M suffixes only
			args = append(args, "--max-rate="+strconv.FormatInt(req.Values.Size("max-rate")/1024, 10))
		default:
			args = append(args, pgtool.LongOption(spec, o)...)
		}
	}
	if noSync {
		args = append(args, "--no-sync")
	}
	return append(args, "--progress") // its output feeds progress events
}

func checkRequest(req sdk.CloneRequest) error {
	return pgtool.CheckCloneRequest(req, "pg_basebackup copies a running member", checkOptions(req.Values))
}

// PlanClone returns pg_basebackup's command line, secrets masked.
func (p *Plugin) PlanClone(_ context.Context, req sdk.CloneRequest) (sdk.Plan, error) {
	if err := checkRequest(req); err != nil {
		return sdk.Plan{}, err
	}
	prog, lookErr := req.Cluster.Program("pg_basebackup")
	mask := sdk.Masker(secrets(req))
	noSync := syncItself(req)
	plan := sdk.Plan{Commands: []sdk.Command{{Argv: mask.MaskArgv(argv(prog, req, noSync)), Env: req.Env}}}
	if lookErr != nil {
		plan.Notes = append(plan.Notes, lookErr.Error())
	}
	if noSync {
		plan.Notes = append(plan.Notes, "pg_basebackup does not sync each file (--no-sync): once it is done, the plugin syncs the file systems of the copy (data directory, pg_wal, tablespaces) with syncfs(2), and fails the clone if that reports an error")
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
	prog, err := req.Cluster.Program("pg_basebackup")
	if err != nil {
		return sdk.Result{}, fmt.Errorf("%w: %w", sdk.ErrMethodFailed, err)
	}
	// Opened before the copy starts, so that the sync afterwards reports every writeback error
	// on those file systems. If that is not possible, pg_basebackup syncs itself.
	var guard *syncfs.Guard
	if syncItself(req) {
		if guard, err = syncfs.Open(targetDirs(req)...); err != nil && rep != nil {
			rep.Log(sdk.LevelDebug, "pg_basebackup syncs each file itself: "+err.Error())
		}
		defer guard.Close()
	}
	meter := newProgressMeter(rep)
	proc := sdk.Process{
		Argv:    argv(prog, req, guard != nil),
		Env:     req.Env,
		Secrets: secrets(req),
		OnLine:  meter.line,
	}
	if err := sdk.Run(ctx, proc, rep); err != nil {
		// pg_basebackup's error can span lines ("...password authentication failed" then
		// "password retrieved from file ..."): name its error line, not only the last one.
		var ee *sdk.ExitError
		if errors.As(err, &ee) {
			if l := pgtool.ErrorLine(ee.Tail); l != "" {
				return sdk.Result{}, fmt.Errorf("while copying the source into %q with pg_basebackup (%s): %w", req.Cluster.DataDir, l, err)
			}
		}
		return sdk.Result{}, fmt.Errorf("while copying the source into %q with pg_basebackup: %w", req.Cluster.DataDir, err)
	}
	meter.finish()
	if guard != nil {
		err := guard.Add(writtenDirs(req.Cluster.DataDir)...)
		if err == nil {
			err = guard.Sync()
		}
		if err != nil {
			return sdk.Result{}, fmt.Errorf("%w: the copy in %q may not be on disk: %w", sdk.ErrMethodFailed, req.Cluster.DataDir, err)
		}
		if rep != nil {
			rep.Log(sdk.LevelInfo, "synced the copy to disk (syncfs)")
		}
	}
	return sdk.Result{Summary: "replica copied with pg_basebackup"}, nil
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
