package engine

import "testing"

// Whom a standby follows is read from primary_conninfo as pgimaged writes it, with a passfile.
func TestHostPortWithPassfile(t *testing.T) {
	for in, want := range map[string]string{
		"host=127.0.0.1 port=34947 user=replicator application_name=b1 passfile=/data/b1.pgpass": "127.0.0.1:34947",
		"host=10.1.0.5 passfile='/data/with space/b1.pgpass' port=5433 user=replicator":          "10.1.0.5:5433",
		"passfile='/data/it\\'s.pgpass' host=db1 port=5432":                                      "db1:5432",
		"postgres://127.0.0.1:5432/postgres":                                                     "127.0.0.1:5432",
	} {
		if got := followedHostPort(in); got != want {
			t.Errorf("followedHostPort(%q) = %q, want %q", in, got, want)
		}
	}
}
