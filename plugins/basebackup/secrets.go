package main

import (
	"github.com/jackc/pgpassfile"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgimaged/pgimaged/sdk"
)

// secrets are the passwords to mask in anything shown: the ones in the pgpass file the request
// names and the one libpq would use for the connection string (pgimaged never puts one there, a
// caller might; one libpq would find elsewhere is masked too).
func secrets(req sdk.CloneRequest) []string {
	var out []string
	if cfg, err := pgconn.ParseConfig(req.ConnString); err == nil && cfg.Password != "" {
		out = append(out, cfg.Password)
	}
	if pf := req.Env["PGPASSFILE"]; pf != "" {
		if f, err := pgpassfile.ReadPassfile(pf); err == nil {
			for _, e := range f.Entries {
				if e.Password != "" {
					out = append(out, e.Password)
				}
			}
		}
	}
	return out
}
