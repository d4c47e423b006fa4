package pg

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// RemoveCopyLeftovers removes from the copy of a data directory in dir, which no server runs
// (the caller made it and holds it), what it must not keep of the server it was copied from, as
// pg_basebackup leaves them out (PostgreSQL's "Making a Base Backup Using the Low Level API"):
// postmaster.pid and postmaster.opts, which describe a server that is not this one, and the
// replication slots in pg_replslot, which would retain WAL on the copy for ever and are out of
// date anyway. It returns what it removed, relative to dir.
func RemoveCopyLeftovers(dir string) ([]string, error) {
	var removed []string
	for _, name := range []string{"postmaster.pid", "postmaster.opts"} {
		err := os.Remove(filepath.Join(dir, name))
		switch {
		case err == nil:
			removed = append(removed, name)
		case !errors.Is(err, fs.ErrNotExist):
			return removed, fmt.Errorf("while removing the source's %s from the copy: %w", name, err)
		}
	}
	slots := filepath.Join(dir, "pg_replslot")
	des, err := os.ReadDir(slots)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return removed, fmt.Errorf("while reading the copy's replication slots: %w", err)
	}
	for _, de := range des {
		if err := os.RemoveAll(filepath.Join(slots, de.Name())); err != nil {
			return removed, fmt.Errorf("while removing the source's replication slot %s from the copy: %w", de.Name(), err)
		}
		removed = append(removed, filepath.Join("pg_replslot", de.Name()))
	}
	return removed, nil
}
