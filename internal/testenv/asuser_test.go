package testenv_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/pgimaged/pgimaged/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.RunAsPostgres(m)) }

func TestRunAsPostgres(t *testing.T) {
	testenv.RequirePostgresUser(t)
	tests := []struct {
		name  string
		check func(t *testing.T)
	}{
		{"not root", func(t *testing.T) {
			if os.Geteuid() == 0 {
				t.Fatal("the tests still run as root")
			}
		}},
		{"testdata resolves from the package directory", func(t *testing.T) {
			b, err := os.ReadFile("testdata/reachable.txt")
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.TrimSpace(string(b)); got != "testdata is reachable" {
				t.Errorf("testdata/reachable.txt = %q", got)
			}
		}},
		{"PostgresUser is the current user", func(t *testing.T) {
			u := testenv.PostgresUser(t)
			if u.Root || u.UID != uint32(os.Geteuid()) {
				t.Errorf("PostgresUser = %+v, want the current unprivileged user", u)
			}
		}},
		{"re-executed copy is marked and has no GOCOVERDIR", func(t *testing.T) {
			if os.Getenv(testenv.ReexecEnv) != "1" {
				t.Log("the tests were started unprivileged: nothing was re-executed")
				return
			}
			if v, ok := os.LookupEnv("GOCOVERDIR"); ok {
				t.Errorf("GOCOVERDIR=%q reached the re-executed tests", v)
			}
			u := testenv.PostgresUser(t)
			if u.Home != "" && os.Getenv("HOME") != u.Home {
				t.Errorf("HOME = %q, want %q", os.Getenv("HOME"), u.Home)
			}
		}},
		{"temporary directories are writable", func(t *testing.T) {
			d := testenv.PostgresUser(t).TempDir(t)
			if err := os.WriteFile(d+"/probe", []byte("x"), 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"PostgreSQL accepts the account", func(t *testing.T) {
			bin := testenv.PGBinDir(t)
			d := testenv.PostgresUser(t).TempDir(t)
			out, err := exec.Command(bin+"/initdb", "--pgdata="+d+"/data", "--no-sync", "--auth=trust").CombinedOutput()
			if err != nil {
				t.Fatalf("initdb: %v\n%s", err, out)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, tc.check)
	}
}
