// Package testenv finds the real components that integration tests need (PostgreSQL, pgBackRest,
// etcd, the built binaries) and runs processes as the unprivileged PostgreSQL OS user.
//
// A component that is missing skips the test on a developer's machine; with CI=true set it fails
// the test, so a CI run can never pass by skipping.
package testenv

import (
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"testing"
)

// InCI reports whether the tests run under CI (CI=true), where missing components are failures.
func InCI() bool {
	v := os.Getenv("CI")
	return v == "true" || v == "1"
}

// Missing reports a missing real component: a failure under CI, a skip elsewhere.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if InCI() {
		t.Fatalf("required component missing under CI=true: "+format, args...)
	}
	t.Skipf("component missing (set CI=true to make this a failure): "+format, args...)
}

// LookPath finds an executable in PATH or in the extra directories, or reports it missing.
func LookPath(t testing.TB, name string, extra ...string) string {
	t.Helper()
	for _, d := range extra {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(t, "%s not found in PATH", name)
	}
	return p
}

// PGBinDir returns the directory holding initdb, pg_ctl, postgres and pg_basebackup. PGBINDIR
// overrides the search; otherwise the newest /usr/lib/postgresql/<v>/bin, then pg_config.
func PGBinDir(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("PGBINDIR"); d != "" {
		return d
	}
	if d := findPGBinDir(); d != "" {
		return d
	}
	Missing(t, "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found; set PGBINDIR")
	return ""
}

func findPGBinDir() string {
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
	best, bestV := "", -1
	for _, m := range matches {
		v, err := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(m))))
		if err == nil && v > bestV {
			best, bestV = filepath.Dir(m), v
		}
	}
	if best != "" {
		return best
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		d := string(out)
		for len(d) > 0 && (d[len(d)-1] == '\n' || d[len(d)-1] == '\r') {
			d = d[:len(d)-1]
		}
		if _, err := os.Stat(filepath.Join(d, "postgres")); err == nil {
			return d
		}
	}
	return ""
}

// RepoRoot returns the root of this repository (where go.mod is).
func RepoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the repository root")
	}
	return filepath.Dir(filepath.Dir(filepath.Dir(file)))
}

// PGUser is the unprivileged OS account PostgreSQL runs as when the tests run as root.
type PGUser struct {
	Name     string
	UID, GID uint32
	Home     string
	Root     bool // the test process runs as root and switches to this user
}

var (
	pgUserOnce sync.Once
	pgUser     PGUser
	pgUserErr  string
)

// PostgresUser returns the account to run PostgreSQL as: the current user when it is not root,
// else PGIMAGED_TEST_USER or "postgres".
func PostgresUser(t testing.TB) PGUser {
	t.Helper()
	pgUserOnce.Do(func() {
		if os.Geteuid() != 0 {
			u, _ := user.Current()
			pgUser = PGUser{UID: uint32(os.Geteuid()), GID: uint32(os.Getegid())}
			if u != nil {
				pgUser.Name, pgUser.Home = u.Username, u.HomeDir
			}
			return
		}
		name := os.Getenv("PGIMAGED_TEST_USER")
		if name == "" {
			name = "postgres"
		}
		u, err := user.Lookup(name)
		if err != nil {
			pgUserErr = "OS user " + name + " does not exist (PostgreSQL refuses to run as root): " + err.Error()
			return
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		pgUser = PGUser{Name: name, UID: uint32(uid), GID: uint32(gid), Home: u.HomeDir, Root: true}
	})
	if pgUserErr != "" {
		Missing(t, "%s", pgUserErr)
	}
	return pgUser
}

// AsUser makes cmd run as u (a no-op when the tests do not run as root). The child also gets
// its own process group and is killed if the test process dies.
func (u PGUser) AsUser(cmd *exec.Cmd) *exec.Cmd {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	if u.Root {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: u.UID, Gid: u.GID}
	}
	return cmd
}

// Chown gives path (and, when it is a directory, everything below it) to u. No-op unless root.
func (u PGUser) Chown(t testing.TB, path string) {
	t.Helper()
	if !u.Root {
		return
	}
	err := filepath.Walk(path, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, int(u.UID), int(u.GID))
	})
	if err != nil {
		t.Fatalf("chown %s to %s: %v", path, u.Name, err)
	}
}

// TempDir returns a fresh directory owned by u, mode 0700, removed when the test ends. It lives
// under a world-traversable parent so u can reach it even when the test runs as root.
func (u PGUser) TempDir(t testing.TB) string {
	t.Helper()
	parent := os.Getenv("PGIMAGED_TEST_TMP")
	if parent == "" {
		parent = os.TempDir()
	}
	d, err := os.MkdirTemp(parent, "pgimaged-test-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(d, 0o755); err != nil {
		t.Fatal(err)
	}
	u.Chown(t, d)
	t.Cleanup(func() { _ = os.RemoveAll(d) })
	return d
}
