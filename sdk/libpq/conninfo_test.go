package libpq_test

import (
	"errors"
	"maps"
	"strings"
	"testing"

	"github.com/pgimaged/pgimaged/sdk/libpq"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name, conn string
		want       map[string]string
		password   string
	}{
		{"keywords", `host=h port=5432 user=u password='kw \'pw' dbname=db`,
			map[string]string{"host": "h", "port": "5432", "user": "u", "dbname": "db"}, "kw 'pw"},
		{"spaces around =, escapes, last wins", "host = a  application_name='x y' host=b sslkey=/k\\ey",
			map[string]string{"host": "b", "application_name": "x y", "sslkey": "/key"}, ""},
		{"url", "postgres://u:url%20pw@h:5433/db?sslmode=require&application_name=a",
			map[string]string{"host": "h", "port": "5433", "user": "u", "dbname": "db", "sslmode": "require", "application_name": "a"}, "url pw"},
		{"url of several hosts", "postgresql://a:1,[::1]:2,c/db",
			map[string]string{"host": "a,::1,c", "port": "1,2,", "dbname": "db"}, ""},
		{"url of a socket directory", "postgres://%2Fvar%2Frun%2Fpostgresql/db",
			map[string]string{"host": "/var/run/postgresql", "dbname": "db"}, ""},
		{"password in a url's query", "postgres://h/?password=q",
			map[string]string{"host": "h"}, "q"},
		{"empty", "", map[string]string{}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, pw, err := libpq.Parse(tc.conn)
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(got, tc.want) || pw != tc.password {
				t.Errorf("Parse(%q) = %q, %q; want %q, %q", tc.conn, got, pw, tc.want, tc.password)
			}
		})
	}
}

// What cannot be read is an error that never repeats the string, which may hold a password.
func TestParseRefusesWithoutTheString(t *testing.T) {
	for _, conn := range []string{"host=h password='secret", "host=h secret", "postgres://u:secret@[::1/db", "postgres://h/?password=%zzsecret"} {
		_, _, err := libpq.Parse(conn)
		if !errors.Is(err, libpq.ErrConnString) {
			t.Errorf("Parse(%q) = %v, want ErrConnString", conn, err)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("the error repeats the string: %v", err)
		}
	}
}

func TestQuote(t *testing.T) {
	for v, want := range map[string]string{"plain": "plain", "": "''", "a b": "'a b'", `it's\here`: `'it\'s\\here'`} {
		if got := libpq.Quote(v); got != want {
			t.Errorf("Quote(%q) = %s, want %s", v, got, want)
		}
		settings, _, err := libpq.Parse("k=" + libpq.Quote(v))
		if err != nil || settings["k"] != v {
			t.Errorf("Quote(%q) does not read back: %q, %v", v, settings["k"], err)
		}
	}
}

func TestWithPassfile(t *testing.T) {
	tests := []struct{ conn, passfile, want string }{
		{"host=10.0.0.1 user=replicator", "/tmp/pgpass", "host=10.0.0.1 user=replicator passfile=/tmp/pgpass password=''"},
		{"host=10.0.0.1", `/tmp/it's\here`, `host=10.0.0.1 passfile='/tmp/it\'s\\here' password=''`},
		{"host=10.0.0.1 password=s3cret", "/tmp/pgpass", "host=10.0.0.1 password=s3cret passfile=/tmp/pgpass"},
		{"postgres://u:s3cret@h/db", "/tmp/pgpass", "postgres://u:s3cret@h/db?passfile=%2Ftmp%2Fpgpass"},
		{"host=x passfile=/other", "/tmp/pgpass", "host=x passfile=/other"},
		{"host=x passfile = '/other'", "/tmp/pgpass", "host=x passfile = '/other'"},
		{"postgres://u@10.0.0.1:5432/postgres", "/tmp/pgpass", "postgres://u@10.0.0.1:5432/postgres?passfile=%2Ftmp%2Fpgpass&password="},
		{"postgres://u@10.0.0.1/postgres?sslmode=disable", "/tmp/pgpass", "postgres://u@10.0.0.1/postgres?sslmode=disable&passfile=%2Ftmp%2Fpgpass&password="},
		{"postgres://u@h/db?passfile=%2Fother", "/tmp/pgpass", "postgres://u@h/db?passfile=%2Fother"},
		{"host=x", "", "host=x"},
	}
	for _, tc := range tests {
		got := libpq.WithPassfile(tc.conn, tc.passfile)
		if got != tc.want {
			t.Errorf("WithPassfile(%q, %q) = %q, want %q", tc.conn, tc.passfile, got, tc.want)
		}
		if settings, _, err := libpq.Parse(got); tc.passfile != "" && (err != nil || settings["passfile"] == "") {
			t.Errorf("WithPassfile(%q, %q) = %q, which names no passfile (%v)", tc.conn, tc.passfile, got, err)
		}
	}
}

// With sets a keyword in either form so that libpq reads the new value: the one written last.
func TestWith(t *testing.T) {
	for _, tc := range []struct{ conn, key, value, want string }{
		{"host=h options='-c a=1'", "options", "-c jit=off -c a=1", `host=h options='-c a=1' options='-c jit=off -c a=1'`},
		{"  host=h  ", "password", "", "host=h password=''"},
		{"postgres://h/db", "options", "-c jit=off", "postgres://h/db?options=-c+jit%3Doff"},
		{"postgresql://h/db?sslmode=require", "passfile", "/p", "postgresql://h/db?sslmode=require&passfile=%2Fp"},
	} {
		got := libpq.With(tc.conn, tc.key, tc.value)
		if got != tc.want {
			t.Errorf("With(%q, %q, %q) = %q, want %q", tc.conn, tc.key, tc.value, got, tc.want)
		}
		if settings, _, err := libpq.Parse(got); err != nil || settings[tc.key] != tc.value && tc.key != "password" {
			t.Errorf("Parse(%q) = %v, %v: %s is not %q", got, settings, err, tc.key, tc.value)
		}
	}
}
