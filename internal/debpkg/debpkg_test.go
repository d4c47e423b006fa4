//go:build debpkg

// The test installs pgimaged system-wide, with a lock file in /etc/pgimaged that every pgimaged
// run without a configuration enforces: it runs alone, after the other tests (make test-package).

package debpkg_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pgimaged/pgimaged/core/plugin"
	"github.com/pgimaged/pgimaged/internal/testenv"
)

const (
	binary    = "/usr/bin/pgimaged"
	pluginDir = "/usr/lib/pgimaged/plugins"
	confDir   = "/etc/pgimaged"
	conffile  = "/etc/pgimaged/pgimaged.hcl"
	lockFile  = "/etc/pgimaged/plugins.lock.hcl"
	unitDir   = "/lib/systemd/system"
)

// TestDebianPackage builds two packages with different versions, installs the first with dpkg -i,
// upgrades to the second, removes and purges it, checking what each step leaves on the machine.
func TestDebianPackage(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Missing(t, "root, to install a package with dpkg")
	}
	for _, tool := range []string{"dpkg", "dpkg-deb", "dpkg-query", "systemd-analyze", "make"} {
		testenv.LookPath(t, tool)
	}
	if state := packageState(t); state != "" {
		t.Fatalf("pgimaged is already known to dpkg here (%s): this test installs and purges it, remove it first", state)
	}
	if _, err := os.Stat(confDir); err == nil {
		t.Fatalf("%s exists although pgimaged is not installed: this test would purge it, move it away first", confDir)
	}
	root := testenv.RepoRoot(t)
	plugins := repoPlugins(t, root)
	tmp := t.TempDir()
	first := buildPackage(t, root, "1.0.0~test1", filepath.Join(tmp, "first.deb"))
	second := buildPackage(t, root, "1.0.0~test2", filepath.Join(tmp, "second.deb"))

	// Whatever happens below, the machine is left as it was.
	t.Cleanup(func() {
		if packageState(t) != "" {
			if out, err := exec.Command("dpkg", "-P", "pgimaged").CombinedOutput(); err != nil {
				t.Errorf("cleanup: dpkg -P pgimaged: %v\n%s", err, out)
			}
		}
	})

	run(t, "dpkg", "-i", first)
	checkInstalled(t, "1.0.0~test1", plugins)
	firstLock := readLock(t)

	// The upgrade replaces every plugin with other bytes: without the postinst refreshing the
	// lock file, pgimaged would refuse them all.
	// An entry the administrator added (a plugin of their own) survives the upgrade.
	firstLock.Entries["extra"] = plugin.LockEntry{Name: "extra", Version: "1.0", SHA256: strings.Repeat("ab", 32)}
	if err := firstLock.Write(); err != nil {
		t.Fatal(err)
	}
	delete(firstLock.Entries, "extra")
	run(t, "dpkg", "-i", second)
	if lock := readLock(t); lock.Entries["extra"].SHA256 != strings.Repeat("ab", 32) {
		t.Errorf("the upgrade lost the lock entry of a plugin the package does not ship: %+v", lock.Entries)
	} else {
		// Its file is not there: take it out again before plugins verify.
		delete(lock.Entries, "extra")
		if err := lock.Write(); err != nil {
			t.Fatal(err)
		}
	}
	checkInstalled(t, "1.0.0~test2", plugins)
	secondLock := readLock(t)
	for _, p := range plugins {
		if firstLock.Entries[p].SHA256 == secondLock.Entries[p].SHA256 {
			t.Errorf("plugin %s: same sha256 in both versions' lock entries; the upgrade test proves nothing", p)
		}
	}

	files := packageFiles(t, second)
	run(t, "dpkg", "-r", "pgimaged")
	for _, f := range files {
		_, err := os.Lstat(f)
		switch {
		case f == conffile && err != nil:
			t.Errorf("after dpkg -r: the conffile %s is gone: %v", f, err)
		case f != conffile && err == nil:
			t.Errorf("after dpkg -r: %s is still there", f)
		}
	}
	// Left after removal: the conffile, and the lock file the postinst generated (purge removes it).
	if got := dirNames(t, confDir); !slices.Equal(got, []string{"pgimaged.hcl", "plugins.lock.hcl"}) {
		t.Errorf("after dpkg -r, %s holds %v, want the conffile and the lock file", confDir, got)
	}
	for _, d := range []string{pluginDir, filepath.Dir(pluginDir)} {
		if _, err := os.Stat(d); err == nil {
			t.Errorf("after dpkg -r: %s is still there", d)
		}
	}

	run(t, "dpkg", "-P", "pgimaged")
	if _, err := os.Stat(confDir); err == nil {
		t.Errorf("after dpkg -P: %s is still there, holding %v", confDir, dirNames(t, confDir))
	}
	if state := packageState(t); state != "" {
		t.Errorf("after dpkg -P: dpkg still knows pgimaged (%s)", state)
	}
}

// checkInstalled checks the installed package of the given version.
func checkInstalled(t *testing.T, version string, plugins []string) {
	t.Helper()
	if out := run(t, binary, "version"); !strings.Contains(out, version) {
		t.Errorf("pgimaged version says %q, want version %s", out, version)
	}
	checkMode(t, binary, 0o755, "root")
	checkMode(t, pluginDir, os.ModeDir|0o755, "root")
	for _, p := range plugins {
		checkMode(t, filepath.Join(pluginDir, plugin.Prefix+p), 0o755, "root")
	}
	checkMode(t, conffile, 0o640, "postgres")
	if out := run(t, "dpkg-query", "-W", "-f=${Conffiles}", "pgimaged"); !strings.Contains(out, conffile+" ") {
		t.Errorf("%s is not a conffile; conffiles: %q", conffile, out)
	} else if strings.Contains(out, lockFile) {
		t.Errorf("the generated %s is a conffile; conffiles: %q", lockFile, out)
	}
	if out := run(t, "dpkg-query", "-W", "-f=${Depends}", "pgimaged"); !strings.Contains(out, "postgresql-common") || !strings.Contains(out, "postgresql") {
		t.Errorf("Depends: %q, want postgresql-common and a PostgreSQL server", out)
	}

	// Both without a configuration (the packaged default directory) and with the packaged one,
	// which also enforces the lock file beside it.
	for _, args := range [][]string{{"plugins", "-json"}, {"plugins", "-json", "-config", conffile}} {
		var rows []struct {
			Name, Path, Version, Error string
		}
		if err := json.Unmarshal([]byte(run(t, binary, args...)), &rows); err != nil {
			t.Fatalf("pgimaged %s: %v", strings.Join(args, " "), err)
		}
		var names []string
		for _, r := range rows {
			names = append(names, r.Name)
			if r.Error != "" || r.Version == "" {
				t.Errorf("pgimaged %s: plugin %s refused: %s", strings.Join(args, " "), r.Name, r.Error)
			}
			if filepath.Dir(r.Path) != pluginDir {
				t.Errorf("pgimaged %s: plugin %s at %s, want it in %s", strings.Join(args, " "), r.Name, r.Path, pluginDir)
			}
		}
		if !slices.Equal(names, plugins) {
			t.Errorf("pgimaged %s lists %v, want %v", strings.Join(args, " "), names, plugins)
		}
	}
	run(t, binary, "plugins", "verify", "-config", conffile)
	lock := readLock(t)
	for _, p := range plugins {
		e, ok := lock.Entries[p]
		if !ok {
			t.Errorf("%s has no entry for plugin %s", lockFile, p)
			continue
		}
		if sum := fileSHA256(t, filepath.Join(pluginDir, plugin.Prefix+p)); e.SHA256 != sum {
			t.Errorf("%s records sha256 %s for plugin %s, its file has %s", lockFile, e.SHA256, p, sum)
		}
	}

	// The configuration validates as the units run pgimaged: as postgres.
	u := testenv.PostgresUser(t)
	cmd := u.AsUser(exec.Command(binary, "validate", "-config", conffile))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("pgimaged validate -config %s as %s: %v\n%s", conffile, u.Name, err, out)
	}

	for _, unit := range []string{"pgimaged.service", "pgimaged@node1.service"} {
		out, err := exec.Command("systemd-analyze", "verify", "--man=no", filepath.Join(unitDir, unit)).CombinedOutput()
		if err != nil || len(bytes.TrimSpace(out)) > 0 {
			t.Errorf("systemd-analyze verify %s: %v\n%s", unit, err, out)
		}
	}
	for _, unit := range []string{"pgimaged.service", "pgimaged@.service"} {
		checkUnit(t, filepath.Join(unitDir, unit))
	}
}

// checkUnit checks what systemd-analyze verify does not: how the unit runs and stops pgimaged.
func checkUnit(t *testing.T, path string) {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	settings := map[string]string{}
	for _, line := range strings.Split(string(src), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			settings[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	want := map[string]string{"User": "postgres", "Restart": "on-failure"}
	for k, v := range want {
		if settings[k] != v {
			t.Errorf("%s: %s=%q, want %q", path, k, settings[k], v)
		}
	}
	if m := settings["KillMode"]; m != "mixed" && m != "process" {
		t.Errorf("%s: KillMode=%q: the SIGTERM must reach pgimaged only, which stops PostgreSQL itself", path, m)
	}
	// pg_ctl's fast stop is bounded by pg_ctl_timeout, 60s by default.
	if d, err := time.ParseDuration(settings["TimeoutStopSec"]); err != nil || d <= 60*time.Second {
		t.Errorf("%s: TimeoutStopSec=%q, want more than pg_ctl_timeout's default 60s", path, settings["TimeoutStopSec"])
	}
	if !strings.Contains(settings["ExecStart"], "-config /etc/pgimaged/") {
		t.Errorf("%s: ExecStart=%q does not name a configuration in /etc/pgimaged", path, settings["ExecStart"])
	}
}

// repoPlugins are the plugins of this repository, which the package ships, sorted.
func repoPlugins(t *testing.T, root string) []string {
	t.Helper()
	dirs, err := filepath.Glob(filepath.Join(root, "plugins", "*", "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range dirs {
		if n := filepath.Base(filepath.Dir(d)); !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	if len(names) == 0 {
		t.Fatalf("no plugins found in %s/plugins", root)
	}
	return names
}

func buildPackage(t *testing.T, root, version, out string) string {
	t.Helper()
	cmd := exec.Command("make", "-C", root, "package", "PKGVERSION="+version, "PKGOUT="+out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make package PKGVERSION=%s: %v\n%s", version, err, b)
	}
	return out
}

// packageState is dpkg's status of pgimaged, "" when dpkg does not know it.
func packageState(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("dpkg-query", "-W", "-f=${db:Status-Abbrev}", "pgimaged").Output()
	if err != nil {
		return ""
	}
	s := strings.TrimSpace(string(out))
	if s == "" || s == "un" {
		return ""
	}
	return s
}

// packageFiles are the files (not directories) a .deb holds, as absolute paths.
func packageFiles(t *testing.T, deb string) []string {
	t.Helper()
	var files []string
	out := run(t, "dpkg-deb", "-c", deb)
	re := regexp.MustCompile(`^[-l]\S+\s+\S+\s+\d+\s+\S+\s+\S+\s+\.(/\S+)`)
	for _, line := range strings.Split(out, "\n") {
		if m := re.FindStringSubmatch(line); m != nil {
			files = append(files, m[1])
		}
	}
	if !slices.Contains(files, binary) || !slices.Contains(files, conffile) {
		t.Fatalf("could not read the files of %s from dpkg-deb -c:\n%s", deb, out)
	}
	return files
}

func readLock(t *testing.T) *plugin.Lock {
	t.Helper()
	lock, err := plugin.ReadLock(lockFile)
	if err != nil {
		t.Fatal(err)
	}
	if lock == nil {
		t.Fatalf("no lock file at %s", lockFile)
	}
	return lock
}

func checkMode(t *testing.T, path string, mode os.FileMode, group string) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Errorf("%v", err)
		return
	}
	if fi.Mode() != mode {
		t.Errorf("%s has mode %v, want %v", path, fi.Mode(), mode)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if st.Uid != 0 {
		t.Errorf("%s is owned by uid %d, want root", path, st.Uid)
	}
	out, err := exec.Command("stat", "-c", "%G", path).Output()
	if err != nil || strings.TrimSpace(string(out)) != group {
		t.Errorf("%s has group %q (%v), want %s", path, strings.TrimSpace(string(out)), err, group)
	}
}

func fileSHA256(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Errorf("%v", err)
		return nil
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// run runs a command that must succeed and returns its standard output.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}
