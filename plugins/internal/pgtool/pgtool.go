// Package pgtool holds what the built-in plugins that run PostgreSQL's client programs
// (pg_basebackup, pg_rewind) share: the checks of a request, options as long options, the
// secrets to mask in what they show, and the line of a failed program's output that says why.
package pgtool

import (
	"fmt"
	"os"
	"strings"

	"github.com/jackc/pgpassfile"

	"github.com/pgimaged/pgimaged/sdk"
	"github.com/pgimaged/pgimaged/sdk/libpq"
)

// Secrets are the passwords to mask in anything shown: the ones in the pgpass file env names
// (PGPASSFILE), one in connString (pgimaged never puts one there, a caller might) and one in
// the plugin's PGPASSWORD, which libpq would use too.
func Secrets(connString string, env map[string]string) []string {
	var out []string
	if _, pw, err := libpq.Parse(connString); err == nil && pw != "" {
		out = append(out, pw)
	}
	if pw := os.Getenv("PGPASSWORD"); pw != "" {
		out = append(out, pw)
	}
	if pf := env["PGPASSFILE"]; pf != "" {
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

// ErrorLine returns the last of a PostgreSQL program's error lines in tail ("pg_rewind: error:
// ...", a server's "FATAL: ..."), unless it is the very last line, which an error shows anyway.
// libpq's reasons can span lines ("...password authentication failed" then "password retrieved
// from file ...").
func ErrorLine(tail []string) string {
	for i := len(tail) - 1; i >= 0; i-- {
		if strings.Contains(tail[i], "error: ") || strings.Contains(tail[i], "FATAL: ") {
			if i == len(tail)-1 {
				return ""
			}
			return tail[i]
		}
	}
	return ""
}

// LongOption is option o, as its spec types it, on a program's command line: a true boolean is
// the bare --name, a false one nothing, anything else --name=value.
func LongOption(spec sdk.OptionSpec, o sdk.Option) []string {
	if spec.Type != sdk.TypeBool {
		return []string{o.String()}
	}
	if on, err := sdk.ParseBool(o.Value); o.Flag || err == nil && on {
		return []string{"--" + spec.Name}
	}
	return nil
}

// CheckCloneRequest checks what every run of a program that copies from a running source
// needs: the options' diagnostics (diags) without errors, a source (ErrNoSource, saying what
// program does with one) and a data directory.
func CheckCloneRequest(req sdk.CloneRequest, program string, diags []sdk.Diagnostic) error {
	if err := sdk.CheckDiagnostics(diags); err != nil {
		return err
	}
	if req.ConnString == "" {
		return fmt.Errorf("%s: %w", program, sdk.ErrNoSource)
	}
	if req.Cluster.DataDir == "" {
		return fmt.Errorf("%w: the request names no data directory", sdk.ErrInvalidOptions)
	}
	return nil
}
