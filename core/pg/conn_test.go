package pg_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgimaged/pgimaged/core/pg"
	"github.com/pgimaged/pgimaged/internal/testenv"
)

func TestWritePgpass(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pgpass")
	mustWrite(t, path, "old content")
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	err := pg.WritePgpass(path,
		pg.PassEntry{Host: "10.0.0.1", Port: "5432", User: "replicator", Password: `pa:ss\word`},
		pg.PassEntry{Host: "/var/run/postgresql", Port: "5432", Database: "db:1", User: "postgres", Password: "it's"},
		pg.PassEntry{Host: "::1", User: "u", Password: ""},
	)
	if err != nil {
		t.Fatal(err)
	}
	want := `10.0.0.1:5432:*:replicator:pa\:ss\\word
/var/run/postgresql:5432:db\:1:postgres:it's
\:\:1:*:*:u:
`
	if got := readFile(t, path); got != want {
		t.Errorf("pgpass:\n%s\nwant:\n%s", got, want)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("pgpass mode %v (%v), want 0600", fi.Mode().Perm(), err)
	}
}

func TestWritePgpassRefusesLineBreaksWithoutLeakingPasswords(t *testing.T) {
	err := pg.WritePgpass(filepath.Join(t.TempDir(), "pgpass"), pg.PassEntry{User: "u", Password: "sec\nret"})
	if err == nil {
		t.Fatal("WritePgpass accepted a password with a line break")
	}
	if strings.Contains(err.Error(), "sec") {
		t.Errorf("error shows the password: %v", err)
	}
}

func TestConnDSN(t *testing.T) {
	cases := []struct {
		name string
		c    pg.Conn
		want string
	}{
		{"plain", pg.Conn{Host: "10.0.0.1", Port: 5432, User: "replicator", Database: "postgres"},
			"host=10.0.0.1 port=5432 user=replicator dbname=postgres"},
		{"unix socket, defaults left out", pg.Conn{Host: "/var/run/postgresql"}, "host=/var/run/postgresql"},
		{"space", pg.Conn{Host: "h", Params: map[string]string{"application_name": "my replica"}},
			"host=h application_name='my replica'"},
		{"quote and backslash", pg.Conn{User: `o'brien`, Params: map[string]string{"options": `C:\pg\pass`}},
			`user='o\'brien' options='C:\\pg\\pass'`},
		{"empty value", pg.Conn{Host: "h", Params: map[string]string{"options": ""}}, "host=h options=''"},
		{"params sorted, password dropped", pg.Conn{Host: "h", Params: map[string]string{
			"sslmode": "disable", "password": "secret", "application_name": "a"}},
			"host=h application_name=a sslmode=disable"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.c.DSN()
			if got != tc.want {
				t.Errorf("DSN = %s, want %s", got, tc.want)
			}
			back, _, err := pg.ParseConnURL(got)
			if err != nil {
				t.Fatalf("ParseConnURL(DSN): %v", err)
			}
			if back.DSN() != got {
				t.Errorf("round trip: %s became %s", got, back.DSN())
			}
		})
	}
}

func TestParseConnURL(t *testing.T) {
	cases := []struct {
		name     string
		in       string
		want     pg.Conn
		password string
		wantErr  bool
	}{
		{"url", "postgres://replicator:s3cr%3At@10.0.0.1:5433/postgres?application_name=node2&sslmode=disable",
			pg.Conn{Host: "10.0.0.1", Port: 5433, User: "replicator", Database: "postgres",
				Params: map[string]string{"application_name": "node2", "sslmode": "disable"}}, "s3cr:t", false},
		{"postgresql scheme, no port", "postgresql://db.example.com/app",
			pg.Conn{Host: "db.example.com", Database: "app"}, "", false},
		{"url ipv6", "postgres://[::1]:5432/postgres", pg.Conn{Host: "::1", Port: 5432, Database: "postgres"}, "", false},
		{"url socket in query", "postgres:///postgres?host=/var/run/postgresql&port=5433",
			pg.Conn{Host: "/var/run/postgresql", Port: 5433, Database: "postgres"}, "", false},
		{"url password in query", "postgres://u@h/db?password=pw",
			pg.Conn{Host: "h", User: "u", Database: "db"}, "pw", false},
		{"member conn_url", "postgres://127.0.0.1:5432/postgres",
			pg.Conn{Host: "127.0.0.1", Port: 5432, Database: "postgres"}, "", false},
		{"keywords", "host=10.0.0.1 port=5432 user=replicator password=secret dbname=postgres",
			pg.Conn{Host: "10.0.0.1", Port: 5432, User: "replicator", Database: "postgres"}, "secret", false},
		{"keywords quoted", `host = h  user='o\'brien' password='a b\\c' application_name='x y'`,
			pg.Conn{Host: "h", User: "o'brien", Params: map[string]string{"application_name": "x y"}}, `a b\c`, false},
		{"empty", "", pg.Conn{}, "", false},
		{"bad port", "host=h port=nope", pg.Conn{}, "", true},
		{"url bad port", "postgres://h:99999/db", pg.Conn{}, "", true},
		{"several hosts", "postgres://a:1,b:2/db", pg.Conn{}, "", true},
		{"unterminated quote", "host=h password='secret", pg.Conn{}, "", true},
		{"no equals", "host=h password secret", pg.Conn{}, "", true},
		{"sslmode", "host=10.0.0.1 sslmode=verify-full", pg.Conn{Host: "10.0.0.1", Params: map[string]string{"sslmode": "verify-full"}}, "", false},
		{"ssl=true alias", "postgres://h/db?ssl=true", pg.Conn{Host: "h", Database: "db", Params: map[string]string{"sslmode": "require"}}, "", false},
		{"sslmode allow", "host=h sslmode=allow connect_timeout=7", pg.Conn{Host: "h", Params: map[string]string{"sslmode": "allow", "connect_timeout": "7"}}, "", false},
		{"a TLS file that does not exist", "host=h sslrootcert=/nonexistent/ca.crt", pg.Conn{}, "", true},
		{"the passphrase of a client key", "host=h sslpassword=secret", pg.Conn{}, "", true},
		{"bad URL", "postgres://u:sec ret@h:x/db", pg.Conn{}, "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, password, err := pg.ParseConnURL(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if err != nil {
				if !errors.Is(err, pg.ErrConnString) {
					t.Errorf("err = %v, want ErrConnString", err)
				}
				if strings.Contains(err.Error(), "secret") {
					t.Errorf("error shows the password: %v", err)
				}
				return
			}
			if !reflect.DeepEqual(got, tc.want) || password != tc.password {
				t.Errorf("ParseConnURL = %#v, %q; want %#v, %q", got, password, tc.want, tc.password)
			}
			if strings.Contains(got.DSN(), "password") {
				t.Errorf("DSN carries a password: %s", got.DSN())
			}
		})
	}
}

// TestParseConnURLKeepsOnlyWhatIsWritten sets every libpq default pgx reads from the
// environment, and a pgpass file that matches: none of it may appear in the parsed Conn.
func TestParseConnURLKeepsOnlyWhatIsWritten(t *testing.T) {
	pgpass := filepath.Join(t.TempDir(), "pgpass")
	mustWrite(t, pgpass, "*:*:*:*:from-pgpass\n")
	if err := os.Chmod(pgpass, 0o600); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{
		"PGHOST": "env-host", "PGPORT": "6543", "PGUSER": "env-user", "PGDATABASE": "env-db",
		"PGPASSWORD": "from-env", "PGPASSFILE": pgpass, "PGAPPNAME": "env-app", "PGSSLMODE": "disable",
		"PGCONNECT_TIMEOUT": "9",
	} {
		t.Setenv(k, v)
	}
	cases := []struct {
		in   string
		want pg.Conn
	}{
		{"host=10.0.0.1", pg.Conn{Host: "10.0.0.1"}},
		{"postgres://10.0.0.1/app", pg.Conn{Host: "10.0.0.1", Database: "app"}},
		{"user=replicator", pg.Conn{User: "replicator"}},
	}
	for _, tc := range cases {
		got, password, err := pg.ParseConnURL(tc.in)
		if err != nil {
			t.Fatalf("%s: %v", tc.in, err)
		}
		if !reflect.DeepEqual(got, tc.want) || password != "" {
			t.Errorf("%s: got %#v, password %q; want %#v and no password", tc.in, got, password, tc.want)
		}
	}
}

func TestParseConnURLErrorsHideThePassword(t *testing.T) {
	for _, s := range []string{
		"postgres://u:Sec-ret@h:99999/db", "postgres://u:Sec-ret@h:x/db", "host=h password=Sec-ret port=nope",
		"host=h password='Sec-ret", "postgres://u:Sec-ret@a:1,b:2/db",
	} {
		_, _, err := pg.ParseConnURL(s)
		if err == nil {
			t.Errorf("%s: no error", s)
			continue
		}
		if !errors.Is(err, pg.ErrConnString) || strings.Contains(err.Error(), "Sec-ret") {
			t.Errorf("error %q: want ErrConnString without the password", err)
		}
	}
}

// TestParseConnURLPassesOnCRL: sslcrl, which pgx does not know and would send to the server as a
// run-time parameter, is a TLS file like sslrootcert: passed on from a URL or keywords as an
// absolute path, and never a run-time parameter of pgimaged's own connections.
func TestParseConnURLPassesOnCRL(t *testing.T) {
	crl := filepath.Join(t.TempDir(), "root.crl")
	got, _, err := pg.ParseConnURL("postgres://db1/postgres?sslmode=require&sslcrl=" + crl)
	if err != nil || got.Params["sslcrl"] != crl {
		t.Errorf("URL with sslcrl: %#v, %v; want Params[sslcrl] = %q", got, err, crl)
	}
	if cfg, err := got.Config(); err != nil || cfg.RuntimeParams["sslcrl"] != "" {
		t.Errorf("Config of %q: run-time parameters %v, %v; want no sslcrl", got.DSN(), cfg, err)
	}
	if _, _, err := pg.ParseConnURL("postgres://db1/postgres?sslcrl=root.crl"); err == nil || !strings.Contains(err.Error(), "absolute") {
		t.Errorf("a relative sslcrl: err = %v, want a refusal that asks for an absolute path", err)
	}
	got, _, err = pg.ParseConnURL("host=db1 sslmode=require sslcrl=" + crl)
	if err != nil || got.Params["sslcrl"] != crl {
		t.Errorf("keyword/value sslcrl: %#v, %v; want Params[sslcrl] = %q", got, err, crl)
	}
	if _, _, err := pg.ParseConnURL("host=db1 sslcrl=root.crl"); err == nil || !strings.Contains(err.Error(), "absolute") {
		t.Errorf("a relative keyword/value sslcrl: err = %v, want a refusal that asks for an absolute path", err)
	}
}

// TestParseConnURLPassesOnTLSFiles: a URL's sslrootcert, sslcert and sslkey reach the Conn as
// written, so that pg_basebackup and primary_conninfo verify the server as the operator asked.
// pgx reads the files while parsing, so they must exist. The keyword/value form passes them on
// alike.
func TestParseConnURLPassesOnTLSFiles(t *testing.T) {
	dir := t.TempDir()
	ca, _ := testenv.WriteCertificate(t, dir, "ca")
	cert, key := testenv.WriteCertificate(t, dir, "client")
	url := "postgres://replicator@db1:5433/postgres?sslmode=verify-full&sslrootcert=" + ca + "&sslcert=" + cert + "&sslkey=" + key
	got, _, err := pg.ParseConnURL(url)
	if err != nil {
		t.Fatalf("ParseConnURL(%q): %v", url, err)
	}
	want := pg.Conn{Host: "db1", Port: 5433, User: "replicator", Database: "postgres",
		Params: map[string]string{"sslmode": "verify-full", "sslrootcert": ca, "sslcert": cert, "sslkey": key}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseConnURL = %#v, want %#v", got, want)
	}
	if _, err := pgconn.ParseConfig(got.DSN()); err != nil {
		t.Errorf("the DSN %q, as pg_basebackup and pgimaged's connections get it, does not parse: %v", got.DSN(), err)
	}
	if again, _, err := pg.ParseConnURL(strings.Replace(url, "sslrootcert="+ca, "sslrootcert="+filepath.Join(dir, "missing.pem"), 1)); err == nil {
		t.Errorf("a missing CA file is accepted: %#v", again)
	}

	// A relative path would be read from pgimaged's working directory here and from the
	// plugin's by pg_basebackup: refused.
	t.Chdir(dir)
	if _, _, err := pg.ParseConnURL("postgres://db1/postgres?sslmode=verify-full&sslrootcert=ca.crt"); err == nil || !strings.Contains(err.Error(), "absolute") {
		t.Errorf("a relative sslrootcert: err = %v, want a refusal that asks for an absolute path", err)
	}

	// The keyword/value form says the same, quoted or not, a key written twice keeping its last
	// value as libpq does.
	spaced := filepath.Join(dir, "with space")
	if err := os.Mkdir(spaced, 0o700); err != nil {
		t.Fatal(err)
	}
	quotedCA, _ := testenv.WriteCertificate(t, spaced, "it's")
	for in, wantCA := range map[string]string{
		"host=db1 port=5433 user=replicator dbname=postgres sslmode=verify-full sslrootcert=" + ca + " sslcert=" + cert + " sslkey=" + key:                                          ca,
		"host=db1 port=5433 user=replicator dbname=postgres sslmode=verify-full sslrootcert = '" + strings.ReplaceAll(quotedCA, "'", `\'`) + "' sslcert=" + cert + " sslkey=" + key: quotedCA,
		"host=db1 port=5433 user=replicator dbname=postgres sslrootcert=/nonexistent sslmode=verify-full sslrootcert=" + ca + " sslcert=" + cert + " sslkey=" + key:                 ca,
	} {
		got, _, err := pg.ParseConnURL(in)
		want.Params["sslrootcert"] = wantCA
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("ParseConnURL(%q) = %#v, %v; want %#v", in, got, err, want)
		}
	}
	if _, _, err := pg.ParseConnURL("host=db1 sslmode=verify-full sslrootcert=ca.crt"); err == nil || !strings.Contains(err.Error(), "absolute") {
		t.Errorf("a relative keyword/value sslrootcert: err = %v, want a refusal that asks for an absolute path", err)
	}
	// libpq's environment variable reaches pgx too: a CA file that is missing fails the parse,
	// and an existing one is used without appearing in the Conn.
	t.Setenv("PGSSLROOTCERT", filepath.Join(dir, "missing.pem"))
	if _, _, err := pg.ParseConnURL("host=db1 sslmode=verify-full"); err == nil {
		t.Error("pgx ignores PGSSLROOTCERT")
	}
	t.Setenv("PGSSLROOTCERT", ca)
	conn, _, err := pg.ParseConnURL("host=db1 sslmode=verify-full")
	if err != nil || conn.Params["sslrootcert"] != "" {
		t.Errorf("with PGSSLROOTCERT set: %#v, %v", conn, err)
	}
}
