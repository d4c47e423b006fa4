// Command pgimaged-plugin-initdb is pgimaged's default bootstrap method: it creates a new cluster
// with PostgreSQL's initdb. It cannot clone replicas.
//
// It runs
//
//	<bin_dir>/initdb --pgdata=D [--name=value | --flag]... --username=U --pwfile=F --auth-local=A --auth-host=A
//
// where the options are the bootstrap section's `initdb` list or map, as long options, in order
// (`initdb = ["data-checksums", { encoding = "UTF8" }]`); a boolean option that is true becomes the
// bare flag. bin_dir empty: initdb is looked up
// in PATH.
//
// The superuser's name comes from postgresql.authentication.superuser and is passed as
// --username. Its password never appears on a command line: it is written to a temporary file
// (os.CreateTemp in the system's temporary directory, mode 0600), passed with --pwfile, and
// removed when initdb ends, whether it succeeded, failed or was cancelled.
//
// Authentication: pgimaged rewrites pg_hba.conf before it first starts the cluster, so initdb's
// defaults matter only until then, and only when the user gives neither --auth nor the method
// for that kind of connection. With a superuser password the defaults are
// --auth-local=scram-sha-256 --auth-host=scram-sha-256 (md5 before PostgreSQL 10): pgimaged
// connects over the local socket as the superuser with the password, and nobody gets in without
// it. Without a password they are --auth-local=trust (pgimaged must still be able to connect, and
// peer would require the OS user to be named like the superuser) and --auth-host=reject (no
// network access until pg_hba.conf is configured); a warning is logged.
//
// The options are typed by the plugin's schema (`pgimaged plugins show initdb`). Refused, with
// the reason: options pgimaged sets itself (pgdata, username, pwfile, pwprompt) and options that
// make initdb skip syncing or exit without creating a cluster (no-sync and its old name nosync,
// sync-only, show, version, help). Abbreviations and one-letter short options are not in the
// schema, so they are unknown options.
//
// Syncing: on Linux 5.8 and later, where syncfs(2) reports writeback errors, the plugin runs
// initdb with --no-sync and, once initdb is done, syncs the file systems of the data directory
// (and of waldir) with one syncfs each, opened before initdb starts; an error fails the
// bootstrap. That is as durable as initdb's fsync of every file, and faster. A user who sets
// sync-method or no-sync-data-files keeps initdb's own syncing, as on other systems.
package main

import "github.com/pgimaged/pgimaged/sdk"

func main() {
	sdk.Serve(New())
}
