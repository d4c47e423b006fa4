// Package pg is everything pgimaged does to a PostgreSQL data directory and server: it inspects a
// data directory ([HasCluster], [SystemIdentifier], [DataDirVersion]), empties it ([EmptyDir]),
// writes the configuration PostgreSQL reads at its first start ([WriteSettings], [WriteRecovery],
// [RemoveRecovery]), writes pgpass files ([WritePgpass]), builds and parses connection strings
// ([Conn], [ParseConnURL]), controls the server through pg_ctl ([Server]) and creates the roles a
// cluster needs ([EnsureRoles]).
//
// # Files pgimaged manages in a data directory
//
//   - postgresql.pgimaged.conf: listen address, port, socket directory and parameters, included
//     from the end of postgresql.conf. Rewritten whole by [WriteSettings].
//   - postgresql.pgimaged-recovery.conf: recovery settings (PostgreSQL 12 and later), included
//     after it. Rewritten whole by [WriteRecovery], removed by [RemoveRecovery].
//   - pg_hba.conf and pg_ident.conf: a block between "# BEGIN pgimaged" and "# END pgimaged" at
//     the top of each, see [Settings].
//   - log/pgimaged-postgres.log: where pg_ctl sends the server's output unless [Server.LogFile]
//     says otherwise (pgimaged's agent and commands name a file beside the data directory).
//
// postgresql.auto.conf is read after all of these, so ALTER SYSTEM still overrides them.
//
// # Ownership
//
// pgimaged runs as the PostgreSQL OS user and every file it writes is that user's. When it runs as
// root instead, a file it writes takes the owner of the directory it is written into, so that the
// PostgreSQL OS user that owns a data directory can still read everything in it. Programs that
// [Server] runs (pg_ctl and, through it, postgres) can be adjusted before they start with
// [Server.Prepare], for example to switch to that OS user.
package pg

import "errors"

var (
	// ErrNotACluster means a directory holds no PostgreSQL cluster: PG_VERSION or
	// global/pg_control is missing or unreadable.
	ErrNotACluster = errors.New("not a PostgreSQL data directory")

	// ErrControlFileCorrupt means global/pg_control exists but its checksum does not match.
	ErrControlFileCorrupt = errors.New("pg_control is corrupt")

	// ErrNotRunning means the server is not running (no postmaster.pid, or its process is gone).
	ErrNotRunning = errors.New("PostgreSQL is not running")

	// ErrNotInRecovery means a server that was expected to be a standby is not in recovery.
	ErrNotInRecovery = errors.New("PostgreSQL is not in recovery")

	// ErrNoSocket means the server has created its sockets but the unix socket pgimaged
	// connects to is not there.
	ErrNoSocket = errors.New("PostgreSQL's unix socket is missing")

	// ErrRecoveryPaused means a recovery that was expected to end has paused: it will not go on
	// by itself.
	ErrRecoveryPaused = errors.New("recovery is paused")
)
