package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgimaged/pgimaged/internal/testenv"
)

// standInDirEnv names the directory holding the WAL-E/WAL-G stand-in (testdata/fakewal) built by
// TestMain, as wal-e and wal-g.
const standInDirEnv = "PGIMAGED_TEST_FAKEWAL_DIR"

// TestMain builds the stand-in (before switching users, with the invoking user's Go cache), then
// runs the tests as the PostgreSQL OS user. Run as `<test binary> envdir DIR PROG...` it is the
// envdir a restore_command calls, as the plugin's own executable is in production.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == EnvdirCommand {
		os.Exit(EnvdirMain(os.Args[2:], os.Stderr))
	}
	var built string
	if os.Getenv(testenv.ReexecEnv) != "1" && os.Getenv(standInDirEnv) == "" {
		dir, err := buildStandIn()
		if err != nil {
			fmt.Fprintf(os.Stderr, "the WAL-E/WAL-G stand-in could not be built: %v\n", err)
		} else {
			built = dir
			os.Setenv(standInDirEnv, dir)
		}
	}
	code := testenv.RunAsPostgres(m)
	if built != "" {
		os.RemoveAll(built)
	}
	os.Exit(code)
}

func buildStandIn() (string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		if goBin = "/usr/local/go/bin/go"; !fileExists(goBin) {
			return "", fmt.Errorf("no go command: %w", err)
		}
	}
	dir, err := os.MkdirTemp("", "pgimaged-fakewal-")
	if err != nil {
		return "", err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bin := filepath.Join(dir, "wal-e")
	out, err := exec.CommandContext(ctx, goBin, "build", "-o", bin, "./testdata/fakewal").CombinedOutput()
	if err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("go build ./testdata/fakewal: %w\n%s", err, out)
	}
	if err := os.Symlink("wal-e", filepath.Join(dir, "wal-g")); err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	return dir, nil
}

// standIn returns the paths of the stand-in's wal-e and wal-g.
func standIn(t *testing.T) (walE, walG string) {
	t.Helper()
	dir := os.Getenv(standInDirEnv)
	if dir == "" {
		testenv.Missing(t, "the WAL-E/WAL-G stand-in (testdata/fakewal) was not built; see the test binary's output")
	}
	return filepath.Join(dir, "wal-e"), filepath.Join(dir, "wal-g")
}

// standInLog reads the stand-in's call log: one entry per call, "tool<TAB>globals<TAB>args<TAB>storage".
func standInLog(t *testing.T, path string) [][]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var calls [][]string
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if line != "" {
			calls = append(calls, strings.Split(line, "\t"))
		}
	}
	return calls
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
