// Command pgimaged-plugin-rewind is pgimaged's built-in rejoin method: it brings a member's own
// data directory, which holds the cluster but has diverged from it (a former primary, or a
// replica that received WAL past a change of primary), back in line with a running member with
// PostgreSQL's pg_rewind, copying only what changed since the timelines split. It needs a
// source; it cannot bootstrap, and it never fills an empty directory.
//
// It runs
//
//	<bin_dir>/pg_rewind --target-pgdata=D --source-server=CONN [--name=value | --flag]... --progress
//
// where CONN is the source's connection string (a normal connection, not a replication one,
// as a superuser or a role granted pg_rewind's functions; without a password: PGPASSFILE in the
// environment names the password file) and the options are the method's, as long options in
// configuration order (`restore-target-wal = true`, or `options = ["restore-target-wal"]`).
// --progress is always given: its output becomes progress events (phase "rewind", bytes done
// and total).
//
// Before pg_rewind changes anything the plugin refuses, with the reason, a directory without
// PG_VERSION and global/pg_control (it works only on a directory that already holds the
// cluster: the daemon calls it only for the member's own data_dir holding this cluster's system
// identifier), a directory whose server is running (postmaster.pid names a live process: the
// daemon stops it first), and, read with pg_controldata, a cluster that logs no hint-bit changes
// ("rewind needs wal_log_hints = on or data checksums"): pg_rewind could not tell which pages
// changed. The method then fails and a chain goes on to its next method. A target that crashed
// (not shut down cleanly) first has its crash recovery finished by the plugin, in single-user
// mode (postgres --single) with archive_mode = on and archive_command = false, so that its
// end-of-recovery checkpoint keeps the WAL segments (as not yet archived) that pg_rewind reads
// back to the last checkpoint before the divergence; pg_rewind's own crash recovery would
// remove them ("could not find previous WAL record"). With no-ensure-shutdown neither runs.
// Before PostgreSQL 13 such a target is refused: start and stop it once.
//
// pg_rewind copies the source's configuration files too; afterwards the daemon writes its own
// settings and the standby settings toward the source, and starts the server: the plugin does
// not. A pg_rewind that fails or is stopped midway fails the method: the directory is then
// neither the old cluster nor the new, and the daemon's incomplete marker keeps it from being
// started.
//
// Refused, with the reason: target-pgdata, source-server, source-pgdata, dry-run,
// write-recovery-conf, version, help.
package main

import "github.com/pgimaged/pgimaged/sdk"

func main() {
	sdk.Serve(New())
}
