// Command pgimaged-plugin-basebackup is pgimaged's built-in replica method: it copies a running
// member with PostgreSQL's pg_basebackup. It needs a source; it cannot bootstrap.
//
// It runs
//
//	<bin_dir>/pg_basebackup --pgdata=D -X stream --dbname=CONN [--name=value | --flag]... --progress
//
// where CONN is the clone source's connection string (without a password: PGPASSFILE in the
// environment names the password file) and the options are the method's, as long options in
// configuration order (`max-rate = "100M"`, or `options = ["verbose", { max-rate = "100M" }]`).
// The options are typed by the plugin's schema (`pgimaged plugins show basebackup`): a boolean
// option that is true becomes the bare flag, max-rate is passed in kB. --progress is always
// given: its output becomes progress events (phase "copy", bytes done and total) and a log line
// every 10%. bin_dir empty: pg_basebackup is looked up in PATH.
//
// Refused, with the reason, because the result would not be a replica pgimaged can start or
// because pgimaged sets them itself: pgdata, format, wal-method, xlog-method, gzip, client-side
// compress (server-side `compress = "server-gzip"` and "none" are fine), target, dbname, host,
// port, username, password, version, help. Abbreviations and one-letter short options are not
// in the schema, so they are unknown options.
//
// The method does not retry: pgimaged re-runs it according to the method's attempts.
package main

import "github.com/pgimaged/pgimaged/sdk"

func main() {
	sdk.Serve(New())
}
