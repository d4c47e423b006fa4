package pg_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgimaged/pgimaged/core/pg"
)

func TestSplitListen(t *testing.T) {
	cases := []struct {
		in      string
		addrs   string
		port    int
		wantErr bool
	}{
		{"127.0.0.1:5432", "127.0.0.1", 5432, false},
		{"*:5433", "*", 5433, false},
		{"0.0.0.0:5432", "0.0.0.0", 5432, false},
		{"[::1]:5432", "::1", 5432, false},
		{"10.0.0.1,127.0.0.1:5432", "10.0.0.1,127.0.0.1", 5432, false},
		{"10.0.0.1, [::1]:6543", "10.0.0.1,::1", 6543, false},
		{"localhost", "localhost", 0, false},
		{"::1", "::1", 0, false},
		{"[::1]", "::1", 0, false},
		{"db.example.com:5432", "db.example.com", 5432, false},
		{"", "", 0, true},
		{":5432", "", 0, true},
		{"127.0.0.1:http", "", 0, true},
		{"127.0.0.1:70000", "", 0, true},
		{"a,,b:5432", "", 0, true},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			addrs, port, err := pg.SplitListen(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if addrs != tc.addrs || port != tc.port {
				t.Errorf("SplitListen = %q, %d; want %q, %d", addrs, port, tc.addrs, tc.port)
			}
		})
	}
}

func TestQuoteConfValue(t *testing.T) {
	cases := []struct{ in, want string }{
		{"plain", `'plain'`},
		{"", `''`},
		{"it's", `'it''s'`},
		{`C:\wal`, `'C:\\wal'`},
		{"two\nlines", `'two\nlines'`},
		{`cp "%p" /archive/%f`, `'cp "%p" /archive/%f'`},
	}
	for _, tc := range cases {
		if got := pg.QuoteConfValue(tc.in); got != tc.want {
			t.Errorf("QuoteConfValue(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

// settingsFixture copies testdata/settings/in (an initdb-like postgresql.conf, pg_hba.conf and
// pg_ident.conf) into a temporary data directory.
func settingsFixture(t *testing.T) string {
	dir := t.TempDir()
	copyDir(t, "testdata/settings/in", dir)
	return dir
}

var fixtureSettings = pg.Settings{
	Listen: "127.0.0.1:5433",
	Parameters: map[string]string{
		"max_connections":  "50",
		"cluster_name":     "batman's",
		"archive_command":  `cp %p "/archive dir/%f"`,
		"port":             "9999", // Listen wins
		"Work_Mem":         "8MB",
		"listen_addresses": "*", // Listen wins
	},
	HBA: []string{
		"host replication replicator 127.0.0.1/32 scram-sha-256",
		"host all all 0.0.0.0/0 scram-sha-256",
	},
	SocketDir: "/run/pgimaged",
	Superuser: "dba",
	OSUser:    "postgres",
}

func TestWriteSettings(t *testing.T) {
	dir := settingsFixture(t)
	for round := 1; round <= 2; round++ { // the second round must change nothing
		if err := pg.WriteSettings(dir, fixtureSettings); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{"postgresql.conf", pg.SettingsFile, "pg_hba.conf", "pg_ident.conf"} {
			golden(t, filepath.Join("settings", "want", f), readFile(t, filepath.Join(dir, f)))
		}
	}
}

func TestWriteSettingsNilHBAKeepsExistingLines(t *testing.T) {
	dir := settingsFixture(t)
	before := readFile(t, filepath.Join(dir, "pg_hba.conf"))
	s := fixtureSettings
	s.HBA = nil
	for round := 1; round <= 2; round++ {
		if err := pg.WriteSettings(dir, s); err != nil {
			t.Fatal(err)
		}
	}
	got := readFile(t, filepath.Join(dir, "pg_hba.conf"))
	if !strings.HasSuffix(got, before) {
		t.Errorf("pg_hba.conf lost its lines:\n%s\nwant it to end with\n%s", got, before)
	}
	if n := strings.Count(got, "# BEGIN pgimaged"); n != 1 {
		t.Errorf("pg_hba.conf holds %d pgimaged blocks, want 1:\n%s", n, got)
	}
	if !strings.HasPrefix(got, "# BEGIN pgimaged") {
		t.Errorf("pgimaged's block is not first in pg_hba.conf:\n%s", got)
	}
}

func TestWriteSettingsDefaults(t *testing.T) {
	dir := t.TempDir() // no postgresql.conf, pg_hba.conf or pg_ident.conf yet
	if err := pg.WriteSettings(dir, pg.Settings{OSUser: "postgres"}); err != nil {
		t.Fatal(err)
	}
	conf := readFile(t, filepath.Join(dir, pg.SettingsFile))
	if want := "unix_socket_directories = " + pg.QuoteConfValue(pg.SocketDirFor(dir)) + "\n"; !strings.Contains(conf, want) {
		t.Errorf("%s lacks %q (the socket defaults to a directory beside the data directory):\n%s", pg.SettingsFile, want, conf)
	}
	if fi, err := os.Stat(pg.SocketDirFor(dir)); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
		t.Errorf("the socket directory beside the data directory: %v, %v; want a directory of mode 0700", fi, err)
	}
	if strings.Contains(conf, "listen_addresses") || strings.Contains(conf, "port =") {
		t.Errorf("no Listen, yet %s sets it:\n%s", pg.SettingsFile, conf)
	}
	if got := readFile(t, filepath.Join(dir, "postgresql.conf")); !strings.Contains(got, "include_if_exists = '"+pg.SettingsFile+"'") {
		t.Errorf("postgresql.conf was not created with the include:\n%s", got)
	}
	if got := readFile(t, filepath.Join(dir, "pg_hba.conf")); !strings.Contains(got, "local\tall\t\"postgres\"\tpeer map=pgimaged") {
		t.Errorf("the superuser defaults to the OS user; pg_hba.conf:\n%s", got)
	}
}

func TestWriteSettingsRefuses(t *testing.T) {
	cases := []struct {
		name string
		s    pg.Settings
	}{
		{"bad parameter name", pg.Settings{OSUser: "postgres", Parameters: map[string]string{"x = 1\nevil": "1"}}},
		{"bad listen", pg.Settings{OSUser: "postgres", Listen: "127.0.0.1:nope"}},
		{"quote in superuser", pg.Settings{OSUser: "postgres", Superuser: `a"b`}},
		{"socket path too long", pg.Settings{OSUser: "postgres"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.name == "socket path too long" {
				dir = filepath.Join(dir, strings.Repeat("d", 100))
				mustMkdir(t, dir)
			}
			if err := pg.WriteSettings(dir, tc.s); err == nil {
				t.Error("WriteSettings = nil, want an error")
			}
		})
	}
}
