// Command pgimaged-plugin-copydir is an example of a third-party pgimaged method plugin, built
// in its own module against nothing but github.com/pgimaged/pgimaged/sdk.
//
// It clones a replica by copying a snapshot of a data directory that an operator keeps on this
// host (a copy of a cleanly stopped member, or an atomic file-system snapshot of a running one,
// mounted read-only). It needs no running member, so a method using it may set no_master:
//
//	method "snapshot" {
//	  plugin       = "copydir"
//	  no_master    = true
//	  snapshot_dir = "/srv/snapshots/batman/latest"
//	}
//
// The copy skips postmaster.pid and postmaster.opts, refuses snapshots with tablespaces (their
// links would point into the snapshot), reports progress in bytes, and finally checks that
// PG_VERSION and global/pg_control in the copy have the checksums they had in the snapshot
// before the copy began, so that a snapshot that changed underneath fails the method instead of
// producing a broken replica. pgimaged then writes the standby settings and starts the replica,
// which catches up from the source or the archive.
package main

import "github.com/pgimaged/pgimaged/sdk"

func main() {
	sdk.Serve(New())
}
