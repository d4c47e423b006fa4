package pg_test

import (
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/pgimaged/pgimaged/core/pg"
)

// The account PostgreSQL runs as: this process's; for root, a data directory's owner when it
// exists and is not root, else postgres.
func TestAccount(t *testing.T) {
	dir := t.TempDir()
	if os.Geteuid() != 0 {
		u, err := pg.Account(dir)
		if err != nil || u.Uid != strconv.Itoa(os.Geteuid()) {
			t.Fatalf("Account = %+v, %v; want this process's account", u, err)
		}
		return
	}
	pgUser, err := user.Lookup("postgres")
	if err != nil {
		t.Fatalf("no postgres OS user: %v", err)
	}
	owned := func(name string, uid int) string {
		d := filepath.Join(dir, name)
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(d, uid, -1); err != nil {
			t.Fatal(err)
		}
		return d
	}
	pgUID, _ := strconv.Atoi(pgUser.Uid)
	for _, tc := range []struct {
		name, dataDir, want string
	}{
		{"missing", filepath.Join(dir, "missing"), "postgres"},
		{"owned by postgres", owned("pg", pgUID), "postgres"},
		{"owned by root", owned("root", 0), "postgres"},
		{"owned by a uid without an account", owned("nobody-known", 54321), "uid 54321"},
	} {
		u, err := pg.Account(tc.dataDir)
		if err != nil || u.Username != tc.want {
			t.Errorf("%s: Account = %+v, %v; want %s", tc.name, u, err, tc.want)
		}
	}
}
