// Package syncfs flushes whole file systems to disk with syncfs(2), in place of a sync of each
// file: what a program wrote with its own sync turned off (initdb --no-sync, pg_basebackup
// --no-sync) reaches disk in one call per file system.
//
// It is as durable as syncing every file only where syncfs reports writeback errors, which
// Linux does from 5.8 on, and only for errors seen after a descriptor was opened on the file
// system: open a [Guard] before the files are written and call [Guard.Sync] after. Elsewhere
// [Supported] is false and callers let the program sync its files itself.
package syncfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// ErrUnsupported means syncfs cannot stand in for a sync of each file here.
var ErrUnsupported = errors.New("syncfs(2) with writeback error reporting (Linux 5.8 or later) is not available")

// Guard holds a descriptor on the file system of each directory it was opened for.
type Guard struct {
	files []*os.File
	paths []string
	devs  []uint64
}

// Open opens a descriptor on the file system of each path: the path itself, or its nearest
// existing parent when it does not exist yet (a directory a program is about to create). Call
// it before the files are written, so that [Guard.Sync] reports every writeback error since.
func Open(paths ...string) (*Guard, error) {
	if !Supported() {
		return nil, ErrUnsupported
	}
	g := &Guard{}
	if err := g.Add(paths...); err != nil {
		g.Close()
		return nil, err
	}
	return g, nil
}

// Add brings the file systems of more paths under the guard (the places a program wrote to
// that were only known afterwards, such as a base backup's tablespaces). A writeback error
// nobody has seen yet is still reported by [Guard.Sync].
func (g *Guard) Add(paths ...string) error {
	for _, p := range paths {
		f, err := openExisting(p)
		if err != nil {
			return err
		}
		dev, err := device(f)
		if err != nil {
			f.Close()
			return fmt.Errorf("while finding the file system of %q: %w", p, err)
		}
		if g.covers(dev) {
			f.Close()
			continue
		}
		g.files = append(g.files, f)
		g.paths = append(g.paths, p)
		g.devs = append(g.devs, dev)
	}
	return nil
}

func (g *Guard) covers(dev uint64) bool {
	for _, d := range g.devs {
		if d == dev {
			return true
		}
	}
	return false
}

// openExisting opens path, or its nearest parent that exists.
func openExisting(path string) (*os.File, error) {
	p, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("while opening %q to sync its file system: %w", path, err)
	}
	for {
		f, err := os.Open(p)
		if err == nil {
			return f, nil
		}
		parent := filepath.Dir(p)
		if !errors.Is(err, os.ErrNotExist) || parent == p {
			return nil, fmt.Errorf("while opening %q to sync its file system: %w", path, err)
		}
		p = parent
	}
}

// Sync flushes each file system to disk and reports the first writeback error any of them
// saw since the guard was opened.
func (g *Guard) Sync() error {
	var errs []error
	for i, f := range g.files {
		if err := syncfs(f); err != nil {
			errs = append(errs, fmt.Errorf("while syncing the file system of %q to disk: %w", g.paths[i], err))
		}
	}
	return errors.Join(errs...)
}

// Close releases the descriptors.
func (g *Guard) Close() {
	if g == nil {
		return
	}
	for _, f := range g.files {
		_ = f.Close()
	}
	g.files, g.paths, g.devs = nil, nil, nil
}
