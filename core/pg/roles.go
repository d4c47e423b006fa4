package pg

import (
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/pgimaged/pgimaged/sdk"
)

// Role is a login role and its password (masked when printed). An empty Password leaves the
// role's password as it is.
type Role = sdk.Credentials

// scramIterations is PostgreSQL's default scram_iterations.
const scramIterations = 4096

// EnsureRoles connects with connDSN and makes sure superuser exists with SUPERUSER LOGIN and
// replication with REPLICATION LOGIN, creating or altering them and setting their passwords. An
// empty replication Username, or one equal to the superuser's, is skipped (a superuser may open
// replication connections). A rewind role (at most one; Patroni's authentication.rewind) gets
// LOGIN and the functions pg_rewind reads its source with ([rewindFunctions]); one named as the
// superuser is skipped, one named as the replication role only gets the functions.
//
// A password never reaches the server in clear when it can be helped: it is hashed here into a
// SCRAM-SHA-256 or MD5 verifier, as the server's password_encryption asks (what psql's
// \password does). Only a non-ASCII password under SCRAM, whose normalisation is the server's
// business, is sent as it is. Either way statement logging is switched off for the transaction.
func EnsureRoles(ctx context.Context, connDSN string, superuser Role, replication Role, rewind ...Role) error {
	if superuser.Username == "" {
		return errors.New("while creating roles: no superuser name")
	}
	conn, err := pgx.Connect(ctx, connDSN)
	if err != nil {
		return fmt.Errorf("while connecting to create the superuser and replication roles: %w", err)
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	return ensureRoles(ctx, conn, superuser, replication, rewind...)
}

// rewindFunctions are what a role other than a superuser needs to be pg_rewind's source
// (PostgreSQL's pg_rewind documentation). Before PostgreSQL 11 they check for a superuser
// themselves: granted there, they still refuse.
var rewindFunctions = []string{
	"pg_catalog.pg_ls_dir(text, boolean, boolean)",
	"pg_catalog.pg_stat_file(text, boolean)",
	"pg_catalog.pg_read_binary_file(text)",
	"pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean)",
}

// ensureRoles is EnsureRoles on an open connection.
func ensureRoles(ctx context.Context, conn *pgx.Conn, superuser Role, replication Role, rewind ...Role) error {
	if superuser.Username == "" {
		return errors.New("while creating roles: no superuser name")
	}
	var encryption string
	if err := conn.QueryRow(ctx, "SHOW password_encryption").Scan(&encryption); err != nil {
		return fmt.Errorf("while reading password_encryption: %w", err)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("while creating roles: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	for _, q := range []string{
		"SET LOCAL log_statement = 'none'",
		"SET LOCAL log_min_duration_statement = -1",
		"SET LOCAL log_min_error_statement = 'panic'",
		"SET LOCAL pg_stat_statements.track_utility = off",
	} {
		if _, err := tx.Exec(ctx, q); err != nil {
			return fmt.Errorf("while switching off statement logging to create roles (%s): %w", q, err)
		}
	}
	if err := ensureRole(ctx, tx, superuser, "SUPERUSER LOGIN", encryption); err != nil {
		return err
	}
	if replication.Username != "" && replication.Username != superuser.Username {
		if err := ensureRole(ctx, tx, replication, "REPLICATION LOGIN", encryption); err != nil {
			return err
		}
	}
	for _, r := range rewind {
		if r.Username == "" || r.Username == superuser.Username {
			continue
		}
		if r.Username != replication.Username {
			if err := ensureRole(ctx, tx, r, "LOGIN", encryption); err != nil {
				return err
			}
		}
		for _, f := range rewindFunctions {
			if _, err := tx.Exec(ctx, "GRANT EXECUTE ON FUNCTION "+f+" TO "+pgx.Identifier{r.Username}.Sanitize()); err != nil {
				return fmt.Errorf("while letting role %q run %s for pg_rewind: %w", r.Username, f, err)
			}
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("while committing the superuser and replication roles: %w", err)
	}
	return nil
}

func ensureRole(ctx context.Context, tx pgx.Tx, r Role, attrs, encryption string) error {
	var exists bool
	if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)", r.Username).Scan(&exists); err != nil {
		return fmt.Errorf("while looking up role %q: %w", r.Username, err)
	}
	verb := "CREATE"
	if exists {
		verb = "ALTER"
	}
	stmt := verb + " ROLE " + pgx.Identifier{r.Username}.Sanitize() + " WITH " + attrs
	if r.Password != "" {
		secret, err := passwordVerifier(r, encryption)
		if err != nil {
			return fmt.Errorf("while setting the password of role %q: %w", r.Username, err)
		}
		stmt += " PASSWORD " + quoteLiteral(secret)
	}
	if _, err := tx.Exec(ctx, stmt); err != nil {
		what := "creating"
		if exists {
			what = "altering"
		}
		return fmt.Errorf("while %s role %q: %w", what, r.Username, err)
	}
	return nil
}

// passwordVerifier returns what to put after PASSWORD: a verifier in the format
// password_encryption asks for, or the password itself when only the server can hash it right.
func passwordVerifier(r Role, encryption string) (string, error) {
	if strings.ContainsRune(r.Password, 0) {
		return "", errors.New("the password holds a NUL byte")
	}
	switch strings.ToLower(encryption) {
	case "md5":
		sum := md5.Sum([]byte(r.Password + r.Username))
		return "md5" + hex.EncodeToString(sum[:]), nil
	case "scram-sha-256":
		if !isASCII(r.Password) {
			// The server applies SASLprep (Unicode 3.2) to non-ASCII passwords.
			return r.Password, nil
		}
		return scramVerifier(r.Password)
	}
	return r.Password, nil
}

// scramVerifier computes a SCRAM-SHA-256 verifier as PostgreSQL stores it:
// SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>.
func scramVerifier(password string) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	salted, err := pbkdf2.Key(sha256.New, password, salt, scramIterations, sha256.Size)
	if err != nil {
		return "", err
	}
	mac := func(key []byte, msg string) []byte {
		h := hmac.New(sha256.New, key)
		h.Write([]byte(msg))
		return h.Sum(nil)
	}
	storedKey := sha256.Sum256(mac(salted, "Client Key"))
	serverKey := mac(salted, "Server Key")
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Sprintf("SCRAM-SHA-256$%d:%s$%s:%s", scramIterations, b64(salt), b64(storedKey[:]), b64(serverKey)), nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// quoteLiteral quotes s as an SQL string literal, correct whatever standard_conforming_strings
// says: with a backslash inside it becomes an escape string (E prefix), backslashes doubled.
func quoteLiteral(s string) string {
	q := strings.ReplaceAll(s, "'", "''")
	if strings.Contains(q, `\`) {
		return "E'" + strings.ReplaceAll(q, `\`, `\\`) + "'"
	}
	return "'" + q + "'"
}
