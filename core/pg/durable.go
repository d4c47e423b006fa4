package pg

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// WriteFileDurable replaces path with data as [os.WriteFile] would, but atomically and on disk
// before it returns: the file and the rename of it into its directory are synced.
func WriteFileDurable(path string, data []byte, perm fs.FileMode) error {
	return writeFileAtomic(path, data, perm)
}

// SyncDataDir flushes to disk every file and directory of the data directory dir, its WAL
// directory and its tablespaces where they are links to elsewhere, as PostgreSQL's own sync of
// a data directory at the start after a crash does.
func SyncDataDir(dir string) error {
	roots := []string{dir}
	if target, err := filepath.EvalSymlinks(filepath.Join(dir, "pg_wal")); err == nil {
		roots = append(roots, target)
	}
	if links, err := os.ReadDir(filepath.Join(dir, "pg_tblspc")); err == nil {
		for _, l := range links {
			if target, err := filepath.EvalSymlinks(filepath.Join(dir, "pg_tblspc", l.Name())); err == nil {
				roots = append(roots, target)
			}
		}
	}
	var errs []error
	for _, root := range roots {
		errs = append(errs, filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.Type().IsRegular() && !d.IsDir() {
				return nil // links are followed above; sockets and the like hold no data
			}
			f, err := os.Open(path)
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil // removed meanwhile (a server still running)
				}
				return err
			}
			serr := f.Sync()
			return errors.Join(serr, f.Close())
		}))
	}
	return errors.Join(errs...)
}
