package pg

import (
	"os"
	"strings"
)

// clientVars are libpq's environment variables that stand in for connection parameters
// (PostgreSQL's libpq documentation, "Environment Variables"), up to PostgreSQL 18. In a
// server's environment, libpq takes them for every connection the server opens itself: its WAL
// receiver's (primary_conninfo), dblink's, postgres_fdw's.
var clientVars = map[string]bool{
	"PGHOST": true, "PGHOSTADDR": true, "PGPORT": true, "PGDATABASE": true, "PGUSER": true,
	"PGPASSWORD": true, "PGPASSFILE": true, "PGREQUIREAUTH": true, "PGCHANNELBINDING": true,
	"PGSERVICE": true, "PGSERVICEFILE": true, "PGOPTIONS": true, "PGAPPNAME": true,
	"PGSSLMODE": true, "PGREQUIRESSL": true, "PGSSLNEGOTIATION": true, "PGSSLCOMPRESSION": true,
	"PGSSLCERT": true, "PGSSLKEY": true, "PGSSLCERTMODE": true, "PGSSLROOTCERT": true,
	"PGSSLCRL": true, "PGSSLCRLDIR": true, "PGSSLSNI": true, "PGREQUIREPEER": true,
	"PGSSLMINPROTOCOLVERSION": true, "PGSSLMAXPROTOCOLVERSION": true, "PGMINPROTOCOLVERSION": true,
	"PGMAXPROTOCOLVERSION": true, "PGGSSENCMODE": true, "PGKRBSRVNAME": true, "PGGSSLIB": true,
	"PGGSSDELEGATION": true, "PGCONNECT_TIMEOUT": true, "PGCLIENTENCODING": true,
	"PGTARGETSESSIONATTRS": true, "PGLOADBALANCEHOSTS": true,
}

// serverEnv is the environment of the programs [Server] runs (pg_ctl, and through it the
// server): pgimaged's own without libpq's connection variables. A standby's WAL receiver
// connects as primary_conninfo says, and nothing else: a PGPASSWORD in the shell that started
// the agent would win over the pgpass file primary_conninfo names, a PGHOSTADDR would send it
// elsewhere, and either would be there for any dblink of the server's users to take.
func serverEnv() []string {
	env := os.Environ()
	out := env[:0:0]
	for _, kv := range env {
		if k, _, _ := strings.Cut(kv, "="); !clientVars[k] {
			out = append(out, kv)
		}
	}
	return out
}

// PassfileEnv is the environment that hands a libpq program the password in the pgpass file at
// path: PGPASSFILE, and an empty PGPASSWORD, since libpq (and pgx) take a password from the
// environment over any pgpass file, and an empty one means none.
func PassfileEnv(path string) map[string]string {
	return map[string]string{"PGPASSFILE": path, "PGPASSWORD": ""}
}
