package pg

import (
	"slices"
	"testing"
)

// connKeys lists the keys a connection string writes, in pgx's spelling, in both of libpq's
// forms; pgx accepts the string with exactly those keys allowed.
func TestConnKeysBothForms(t *testing.T) {
	for in, want := range map[string][]string{
		"host=10.0.0.1 port=5433 user=u dbname=d":                                      {"database", "host", "port", "user"},
		"host = h  password='a b=c' application_name='x\\'y'":                          {"application_name", "host", "password"},
		"  sslmode=require   sslrootcert=/ca.crt  ":                                    {"sslmode", "sslrootcert"},
		"postgres://u:secret@10.0.0.1:5433/app?application_name=x&sslmode=verify-full": {"application_name", "database", "host", "password", "port", "sslmode", "user"},
		"postgresql://10.0.0.1/app":                                                    {"database", "host"},
		"postgres://u@[::1]:6432":                                                      {"host", "port", "user"},
		"postgres://:@h/":                                                              {"host"},
		"postgres:///?host=/run/postgresql&dbname=d":                                   {"database", "host"},
		"postgres://h1:5432,h2:5433/d":                                                 {"database", "host", "port"},
		"postgres://h/d?ssl=true":                                                      {"database", "host", "ssl"},
	} {
		got, err := connKeys(in)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("connKeys(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"host", "host=h port", "postgres://h/d?%zz=1", "host='unterminated"} {
		if _, err := connKeys(in); err == nil {
			t.Errorf("connKeys(%q) accepted a malformed string", in)
		}
	}
}
