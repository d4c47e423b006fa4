package pg

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// IsEmptyDir reports whether dir exists and whether it has no entries at all. A directory that
// does not exist is empty (empty true, exists false). Hidden files and lost+found count as
// entries: initdb and pg_basebackup refuse a directory holding them, and pgimaged refuses one it
// did not fill itself.
func IsEmptyDir(dir string) (empty bool, exists bool, err error) {
	f, err := os.Open(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return true, false, nil
	}
	if err != nil {
		return false, false, fmt.Errorf("while checking whether data directory %q is empty: %w", dir, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return false, true, fmt.Errorf("while checking whether data directory %q is empty: %w", dir, err)
	}
	if !fi.IsDir() {
		return false, true, fmt.Errorf("while checking whether data directory %q is empty: not a directory", dir)
	}
	_, err = f.Readdirnames(1)
	if errors.Is(err, io.EOF) {
		return true, true, nil
	}
	if err != nil {
		return false, true, fmt.Errorf("while checking whether data directory %q is empty: %w", dir, err)
	}
	return false, true, nil
}

// HasCluster reports whether dir holds a PostgreSQL cluster: a PG_VERSION file and a readable
// global/pg_control long enough to hold a system identifier. Whether pg_control's checksum
// matches is [SystemIdentifier]'s concern; a directory with a damaged pg_control still holds a
// cluster that must not be overwritten.
func HasCluster(dir string) bool {
	if fi, err := os.Stat(filepath.Join(dir, "PG_VERSION")); err != nil || !fi.Mode().IsRegular() {
		return false
	}
	f, err := os.Open(filepath.Join(dir, "global", "pg_control"))
	if err != nil {
		return false
	}
	defer f.Close()
	var head [controlHeaderLen]byte
	_, err = io.ReadFull(f, head[:])
	return err == nil
}

// EmptyDir removes everything inside dir but keeps dir itself, with its owner and mode, so a
// mount point or a directory prepared by an operator survives. Symbolic links are removed as
// links: a pg_wal or tablespace link pointing out of dir loses the link, never the target's
// contents. A directory that does not exist is already empty.
func EmptyDir(dir string) error {
	if dir == "" || filepath.Clean(dir) == "/" {
		return fmt.Errorf("while emptying data directory %q: refusing to empty the root directory", dir)
	}
	f, err := os.Open(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("while emptying data directory %q: %w", dir, err)
	}
	names, err := f.Readdirnames(-1)
	_ = f.Close()
	if err != nil {
		return fmt.Errorf("while emptying data directory %q: %w", dir, err)
	}
	for _, n := range names {
		if err := os.RemoveAll(filepath.Join(dir, n)); err != nil {
			return fmt.Errorf("while emptying data directory %q: %w", dir, err)
		}
	}
	return nil
}

// ClusterAbove returns the nearest directory above dir (dir itself excluded) that holds a
// PostgreSQL cluster (see [HasCluster]), or "" when none does. A data directory inside another
// cluster's would be copied along by every base backup of that cluster and removed with it.
// dir is made absolute first; symbolic links are not resolved.
func ClusterAbove(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("while resolving data directory %q: %w", dir, err)
	}
	for p := filepath.Dir(abs); ; p = filepath.Dir(p) {
		if HasCluster(p) {
			return p, nil
		}
		if p == filepath.Dir(p) {
			return "", nil
		}
	}
}

// maxScan bounds how many directories [ClusterBelow] looks at.
const maxScan = 100000

// ClusterBelow returns the first directory strictly below dir that holds a PostgreSQL cluster
// (see [HasCluster]), or "" when none does. Symbolic links are not followed and directories
// that cannot be read are passed over. The walk stops after maxScan directories; complete is
// false then (nothing found within the bound, which is not proof that nothing is there).
func ClusterBelow(dir string) (found string, complete bool, err error) {
	root := filepath.Clean(dir)
	seen := 0
	complete = true
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, werr error) error {
		if werr != nil {
			if p == root {
				return werr
			}
			if d != nil && d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.IsDir() {
			return nil
		}
		if p != root && HasCluster(p) {
			found = p
			return filepath.SkipAll
		}
		seen++
		if seen > maxScan {
			complete = false
			return filepath.SkipAll
		}
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return "", true, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("while looking for clusters below %q: %w", dir, err)
	}
	return found, complete, nil
}
