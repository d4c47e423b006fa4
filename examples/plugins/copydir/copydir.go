package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/pgimaged/pgimaged/sdk"
)

// version is the plugin's version; release builds set it with -ldflags "-X main.version=...".
var version = "1.0.0"

// optSnapshotDir names the snapshot to copy.
const optSnapshotDir = "snapshot_dir"

// schema is what a method using the plugin may set: pgimaged checks the configuration against it
// (unknown options, types, the required snapshot_dir) before anything runs, and the SDK hands
// the values to the calls in req.Values.
var schema = sdk.Schema{Options: []sdk.OptionSpec{
	{Name: optSnapshotDir, Type: sdk.TypePath, Required: true,
		Description: "the directory holding the data directory snapshot (a relative path starts at the configuration file's directory)"},
}}

// skipped are files of a running server that a replica must not inherit.
var skipped = map[string]bool{"postmaster.pid": true, "postmaster.opts": true}

// emptied are the directories whose contents a replica must not inherit, as pg_basebackup
// leaves them out: the source's replication slots (pg_replslot: they would hold WAL on the
// replica for ever) and what lives only while a server runs. The directories themselves are
// copied, empty.
var emptied = map[string]bool{
	"pg_replslot": true, "pg_dynshmem": true, "pg_notify": true, "pg_serial": true,
	"pg_snapshots": true, "pg_stat_tmp": true, "pg_subtrans": true,
}

// leftOut reports whether rel, a path relative to the snapshot, stays out of the copy.
func leftOut(rel string) bool {
	top, rest, nested := strings.Cut(filepath.ToSlash(rel), "/")
	if !nested {
		return skipped[top]
	}
	return emptied[top] && rest != ""
}

// verified are the files whose checksums must survive the copy.
var verified = []string{"PG_VERSION", filepath.Join("global", "pg_control")}

// progressStep is how many bytes pass between two progress events, at most.
const progressStep = 4 << 20

// Plugin copies a data directory snapshot.
type Plugin struct{}

var (
	_ sdk.Plugin       = (*Plugin)(nil)
	_ sdk.Validator    = (*Plugin)(nil)
	_ sdk.Cloner       = (*Plugin)(nil)
	_ sdk.ClonePlanner = (*Plugin)(nil)
)

// New returns the plugin.
func New() *Plugin { return &Plugin{} }

// Describe names the plugin. It needs no running member: the snapshot is local.
func (p *Plugin) Describe(context.Context, sdk.DescribeRequest) (sdk.DescribeResponse, error) {
	return sdk.DescribeResponse{
		Schema:             schema,
		Name:               "copydir",
		Version:            version,
		Description:        "clones a replica by copying a local snapshot of a data directory",
		WorksWithoutSource: true,
	}, nil
}

// Validate checks what the schema cannot: that snapshot_dir is an absolute path.
func (p *Plugin) Validate(_ context.Context, req sdk.ValidateRequest) (sdk.ValidateResponse, error) {
	var diags []sdk.Diagnostic
	if req.Path == sdk.PathBootstrap {
		diags = append(diags, sdk.Errorf("", "copydir cannot bootstrap a new cluster",
			"it clones replicas; list it in postgresql.create_replica_methods"))
	}
	diags = append(diags, checkOptions(req.Values)...)
	return sdk.ValidateResponse{Diagnostics: diags}, nil
}

func checkOptions(v sdk.Values) []sdk.Diagnostic {
	if snap := v.String(optSnapshotDir); v.Has(optSnapshotDir) && !filepath.IsAbs(snap) {
		return []sdk.Diagnostic{sdk.Errorf(optSnapshotDir, "snapshot_dir must be an absolute path", "%q is relative", snap)}
	}
	return nil
}

// PlanClone describes the copy; it runs no program.
func (p *Plugin) PlanClone(_ context.Context, req sdk.CloneRequest) (sdk.Plan, error) {
	if err := sdk.CheckDiagnostics(checkOptions(req.Values)); err != nil {
		return sdk.Plan{}, err
	}
	snap := req.Values.String(optSnapshotDir)
	return sdk.Plan{Notes: []string{
		fmt.Sprintf("copy the snapshot in %s into %s (without postmaster.pid, postmaster.opts and the contents of pg_replslot and the other directories pg_basebackup leaves empty)", snap, req.Cluster.DataDir),
		"check that PG_VERSION and global/pg_control kept their checksums",
	}}, nil
}

// Clone copies the snapshot into the data directory, which pgimaged has created empty.
func (p *Plugin) Clone(ctx context.Context, req sdk.CloneRequest, rep sdk.Reporter) (sdk.Result, error) {
	if err := ctx.Err(); err != nil {
		return sdk.Result{}, err
	}
	if err := sdk.CheckDiagnostics(checkOptions(req.Values)); err != nil {
		return sdk.Result{}, err
	}
	if rep == nil {
		rep = discard{}
	}
	snap := req.Values.String(optSnapshotDir)
	dst := req.Cluster.DataDir

	sums, err := checkSnapshot(snap, req.Cluster.ServerVersion)
	if err != nil {
		return sdk.Result{}, fmt.Errorf("%w: %w", sdk.ErrMethodFailed, err)
	}
	total, err := size(snap)
	if err != nil {
		return sdk.Result{}, fmt.Errorf("%w: while measuring snapshot %q: %w", sdk.ErrMethodFailed, snap, err)
	}
	rep.Log(sdk.LevelInfo, "copying snapshot", "snapshot", snap, "datadir", dst, "bytes", strconv.FormatInt(total, 10))

	c := &copier{ctx: ctx, rep: rep, total: total}
	c.report(true)
	if err := c.tree(snap, dst); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return sdk.Result{}, fmt.Errorf("while copying snapshot %q into %q: %w", snap, dst, ctxErr)
		}
		return sdk.Result{}, fmt.Errorf("%w: while copying snapshot %q into %q: %w", sdk.ErrMethodFailed, snap, dst, err)
	}
	c.total = c.done // files may have grown or shrunk since they were measured
	c.report(true)

	for _, f := range verified {
		got, err := checksum(filepath.Join(dst, f))
		if err != nil {
			return sdk.Result{}, fmt.Errorf("%w: while checking the copy: %w", sdk.ErrMethodFailed, err)
		}
		if got != sums[f] {
			return sdk.Result{}, fmt.Errorf("%w: %s changed while snapshot %q was copied; the snapshot is not stable", sdk.ErrMethodFailed, f, snap)
		}
	}
	rep.Log(sdk.LevelInfo, "snapshot copied and verified", "bytes", strconv.FormatInt(c.done, 10))
	return sdk.Result{Summary: fmt.Sprintf("copied %d bytes from snapshot %s", c.done, snap)}, nil
}

// checkSnapshot makes sure snap holds a data directory this server version can run, without
// tablespaces, and returns the checksums of the verified files.
func checkSnapshot(snap string, serverVersion int) (map[string]string, error) {
	sums := map[string]string{}
	for _, f := range verified {
		sum, err := checksum(filepath.Join(snap, f))
		if err != nil {
			return nil, fmt.Errorf("snapshot %q is not a PostgreSQL data directory: %w", snap, err)
		}
		sums[f] = sum
	}
	b, err := os.ReadFile(filepath.Join(snap, "PG_VERSION"))
	if err != nil {
		return nil, fmt.Errorf("while reading the snapshot's PG_VERSION: %w", err)
	}
	major := strings.TrimSpace(string(b))
	if serverVersion >= 100000 && major != strconv.Itoa(serverVersion/10000) {
		return nil, fmt.Errorf("snapshot %q is of PostgreSQL %s, the binaries are %d", snap, major, serverVersion/10000)
	}
	links, err := os.ReadDir(filepath.Join(snap, "pg_tblspc"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("while reading the snapshot's tablespaces: %w", err)
	}
	if len(links) > 0 {
		return nil, fmt.Errorf("snapshot %q has tablespaces (pg_tblspc/%s), which copydir cannot copy", snap, links[0].Name())
	}
	return sums, nil
}

func checksum(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("while reading %q: %w", path, err)
	}
	return fmt.Sprintf("%x", h.Sum(nil)), nil
}

// size is the number of bytes the copy will move.
func size(root string) (int64, error) {
	var n int64
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() || leftOut(rel) {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		n += fi.Size()
		return nil
	})
	return n, err
}

// copier copies a tree and reports progress in bytes.
type copier struct {
	ctx         context.Context
	rep         sdk.Reporter
	done, total int64
	reported    int64
}

func (c *copier) report(force bool) {
	if !force && c.done-c.reported < progressStep {
		return
	}
	c.reported = c.done
	total := c.total
	if c.done > total {
		total = c.done
	}
	c.rep.Progress(sdk.Progress{Phase: "copy", Done: c.done, Total: total, Unit: sdk.UnitBytes})
}

// tree copies the contents of src into the existing directory dst.
func (c *copier) tree(src, dst string) error {
	var dirs []string
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := c.ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case rel == ".":
			dirs = append(dirs, target)
			return nil
		case leftOut(rel):
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		case d.IsDir():
			if err := os.Mkdir(target, fi.Mode().Perm()); err != nil {
				return err
			}
			dirs = append(dirs, target)
			return nil
		case d.Type()&fs.ModeSymlink != 0:
			return fmt.Errorf("%s is a symbolic link; copydir copies only plain data directories", path)
		case !d.Type().IsRegular():
			return fmt.Errorf("%s is not a regular file", path)
		}
		return c.file(path, target, fi.Mode().Perm())
	})
	if err != nil {
		return err
	}
	for _, d := range dirs {
		if err := syncPath(d); err != nil {
			return err
		}
	}
	return nil
}

func (c *copier) file(src, dst string, perm fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	buf := make([]byte, 1<<20)
	for {
		if err := c.ctx.Err(); err != nil {
			out.Close()
			return err
		}
		n, rerr := in.Read(buf)
		if n > 0 {
			if _, err := out.Write(buf[:n]); err != nil {
				out.Close()
				return err
			}
			c.done += int64(n)
			c.report(false)
		}
		if errors.Is(rerr, io.EOF) {
			break
		}
		if rerr != nil {
			out.Close()
			return rerr
		}
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func syncPath(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// discard is a Reporter for callers that want no events.
type discard struct{}

func (discard) Log(sdk.Level, string, ...any) {}
func (discard) Progress(sdk.Progress)         {}
