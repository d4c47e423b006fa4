package cli_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/pgimaged/pgimaged/core/cli"
	"github.com/pgimaged/pgimaged/core/plugin"
	"github.com/pgimaged/pgimaged/internal/pgtest"
)

// builtins are the plugins of the repository, by name, with the package that builds each.
var builtins = map[string]string{
	"basebackup": "../../plugins/basebackup",
	"initdb":     "../../plugins/initdb",
	"pgbackrest": "../../plugins/pgbackrest",
	"rewind":     "../../plugins/rewind",
	"script":     "../../plugins/script",
	"wale":       "../../plugins/wale",
	"testplugin": "../plugin/testdata/testplugin",
}

var (
	buildMu  sync.Mutex
	buildDir string
	built    = map[string]string{}
)

// builtPlugin builds the plugin called name once and returns its executable,
// pgimaged-plugin-<name> in a directory shared by the package's tests.
func builtPlugin(t *testing.T, name string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if p, ok := built[name]; ok {
		return p
	}
	if buildDir == "" {
		d, err := os.MkdirTemp("", "pgimaged-cli-plugins-")
		if err != nil {
			t.Fatal(err)
		}
		buildDir = d
	}
	out := filepath.Join(buildDir, plugin.Prefix+name)
	if b, err := exec.Command("go", "build", "-o", out, builtins[name]).CombinedOutput(); err != nil {
		t.Fatalf("building plugin %s: %v\n%s", name, err, b)
	}
	built[name] = out
	return out
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// run runs pgimaged with args and returns its exit code, stdout and stderr.
func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := cli.Main(args, &out, &errb)
	return code, out.String(), errb.String()
}

// setup is a configuration directory (a relative plugin_dir, a non-default listen port) with
// its configuration file; extra is appended to the file.
type setup struct {
	dir, config, pluginDir, lock string
}

func newSetup(t *testing.T, extra string) setup {
	t.Helper()
	dir := t.TempDir()
	_ = os.Chmod(dir, 0o755)
	s := setup{dir: dir, config: filepath.Join(dir, "etc", "pgimaged.hcl"), pluginDir: filepath.Join(dir, "etc", "plugins.d"),
		lock: filepath.Join(dir, "etc", plugin.LockFileName)}
	if err := os.MkdirAll(filepath.Dir(s.config), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`scope      = "vendor"
name       = "node-a"
data_dir   = %q
plugin_dir = "plugins.d"

postgresql {
  listen = "127.0.0.1:6543"
}
%s`, filepath.Join(dir, "data"), extra)
	if err := os.WriteFile(s.config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return s
}

func sum(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func install(t *testing.T, s setup, names ...string) {
	t.Helper()
	for _, n := range names {
		if code, out, errs := run(t, "plugins", "install", builtPlugin(t, n), "-config", s.config); code != 0 {
			t.Fatalf("plugins install %s: exit %d\n%s%s", n, code, out, errs)
		}
	}
}

// lineCol finds the line and column of the first occurrence of needle in the file.
func lineCol(t *testing.T, file, needle string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range strings.Split(string(b), "\n") {
		if c := strings.Index(l, needle); c >= 0 {
			return fmt.Sprintf("%s:%d:%d", file, i+1, c+1)
		}
	}
	t.Fatalf("%q not in %s", needle, file)
	return ""
}

func TestInstallRecordsThePluginInTheLockFile(t *testing.T) {
	s := newSetup(t, "")
	src := builtPlugin(t, "basebackup")
	code, out, errs := run(t, "plugins", "install", src, "-config", s.config)
	if code != 0 {
		t.Fatalf("install: exit %d\n%s%s", code, out, errs)
	}
	dst := filepath.Join(s.pluginDir, plugin.Prefix+"basebackup")
	fi, err := os.Stat(dst)
	if err != nil {
		t.Fatalf("the plugin is not installed: %v", err)
	}
	if fi.Mode().Perm() != 0o755 {
		t.Errorf("installed with mode %04o, want 0755", fi.Mode().Perm())
	}
	lock, err := plugin.ReadLock(s.lock)
	if err != nil || lock == nil {
		t.Fatalf("reading the lock file %s: %v (lock %v)", s.lock, err, lock)
	}
	e, ok := lock.Entries["basebackup"]
	if !ok || e.SHA256 != sum(t, src) || e.SHA256 != sum(t, dst) || e.Version == "" {
		t.Fatalf("lock entry %+v; want version set and sha256 %s", e, sum(t, src))
	}
	text, _ := os.ReadFile(s.lock)
	if !strings.HasPrefix(string(text), "# ") || !strings.Contains(string(text), `plugin "basebackup" {`) {
		t.Errorf("lock file lacks its header or block:\n%s", text)
	}
	// A second plugin keeps the first, sorted; no temporary file is left behind.
	install(t, s, "initdb")
	text, _ = os.ReadFile(s.lock)
	if i, j := strings.Index(string(text), `"basebackup"`), strings.Index(string(text), `"initdb"`); i < 0 || j < i {
		t.Errorf("lock file entries not both there, sorted:\n%s", text)
	}
	des, _ := os.ReadDir(s.pluginDir)
	for _, de := range des {
		if !strings.HasPrefix(de.Name(), plugin.Prefix) {
			t.Errorf("left in the plugin directory: %s", de.Name())
		}
	}
	if code, out, errs := run(t, "plugins", "verify", "-config", s.config); code != 0 {
		t.Errorf("verify of a fresh install: exit %d\n%s%s", code, out, errs)
	}
	// The configuration validates with the lock in force.
	if code, out, errs := run(t, "validate", "-config", s.config); code != 0 {
		t.Errorf("validate: exit %d\n%s%s", code, out, errs)
	}
}

func TestLockIsEnforcedAtLaunchAndByVerify(t *testing.T) {
	s := newSetup(t, "")
	install(t, s, "basebackup", "initdb")
	cat := &plugin.Catalog{Dir: s.pluginDir, LockFile: s.lock}
	inst, err := cat.Launch(context.Background(), "basebackup")
	if err != nil {
		t.Fatalf("launching an installed plugin: %v", err)
	}
	inst.Kill()

	// Tamper with the installed binary: launch and verify refuse it, naming both sums and the lock.
	dst := filepath.Join(s.pluginDir, plugin.Prefix+"basebackup")
	locked := sum(t, dst)
	f, err := os.OpenFile(dst, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = f.Write([]byte("tampered"))
	f.Close()
	now := sum(t, dst)
	_, err = cat.Launch(context.Background(), "basebackup")
	if !errors.Is(err, plugin.ErrChecksumMismatch) {
		t.Fatalf("a tampered plugin was not refused: %v", err)
	}
	for _, want := range []string{locked, now, s.lock} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal %q does not name %s", err, want)
		}
	}
	code, out, errs := run(t, "plugins", "verify", "-config", s.config)
	if code == 0 || !regexp.MustCompile(`basebackup\s+mismatch`).MatchString(out) {
		t.Errorf("verify of a tampered plugin: exit %d\n%s%s", code, out, errs)
	}
	// validate points at the lock file's record of the sum.
	code, _, errs = run(t, "validate", "-config", s.config)
	if at := lineCol(t, s.lock, `"`+locked); code == 0 || !strings.Contains(errs, at+": Error: Plugin cannot be started") || !strings.Contains(errs, `sha256  = "`+locked) {
		t.Errorf("validate with a tampered plugin: exit %d, want a diagnostic at %s with its line\n%s", code, at, errs)
	}

	// A plugin in the directory but not in the lock is refused with what to do; verify sees it;
	// a locked plugin that is gone is missing.
	if b, err := os.ReadFile(builtPlugin(t, "testplugin")); err != nil {
		t.Fatal(err)
	} else if err := os.WriteFile(filepath.Join(s.pluginDir, plugin.Prefix+"testplugin"), b, 0o755); err != nil {
		t.Fatal(err)
	}
	_, err = cat.Launch(context.Background(), "testplugin")
	if !errors.Is(err, plugin.ErrNotLocked) || !strings.Contains(err.Error(), "pgimaged plugins install") {
		t.Errorf("a plugin absent from the lock was not refused with what to do: %v", err)
	}
	if err := os.Remove(filepath.Join(s.pluginDir, plugin.Prefix+"initdb")); err != nil {
		t.Fatal(err)
	}
	code, out, _ = run(t, "plugins", "verify", "-config", s.config, "-json")
	var v struct {
		OK          bool
		Differences []plugin.Difference
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("verify -json: %v\n%s", err, out)
	}
	kinds := map[string]string{}
	for _, d := range v.Differences {
		kinds[d.Name] = d.Kind
	}
	if code == 0 || v.OK || kinds["basebackup"] != "mismatch" || kinds["testplugin"] != "extra" || kinds["initdb"] != "missing" {
		t.Errorf("verify: exit %d, differences %+v", code, v.Differences)
	}

	// Without a lock file, launching works as before.
	if err := os.Remove(s.lock); err != nil {
		t.Fatal(err)
	}
	inst, err = cat.Launch(context.Background(), "testplugin")
	if err != nil {
		t.Fatalf("without a lock file: %v", err)
	}
	inst.Kill()
	if code, _, errs := run(t, "plugins", "verify", "-config", s.config); code == 0 || !strings.Contains(errs, "no plugin lock file") {
		t.Errorf("verify without a lock file: exit %d\n%s", code, errs)
	}
}

func TestPinsAreCheckedAtTheirSHA256Line(t *testing.T) {
	other := strings.Repeat("ab", 32)
	s := newSetup(t, fmt.Sprintf(`
plugin "basebackup" {
  sha256 = %q
}
`, other))
	// No lock: a pin the binary does not match is reported at the pin's sha256.
	if err := os.MkdirAll(s.pluginDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"basebackup", "initdb"} {
		b, _ := os.ReadFile(builtPlugin(t, n))
		if err := os.WriteFile(filepath.Join(s.pluginDir, plugin.Prefix+n), b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	at := lineCol(t, s.config, `"`+other)
	code, _, errs := run(t, "validate", "-config", s.config)
	if code == 0 || !strings.Contains(errs, at+": Error: Plugin cannot be started") || !strings.Contains(errs, "checksum mismatch") {
		t.Errorf("a wrong pin: exit %d, want the mismatch at %s\n%s", code, at, errs)
	}
	// With a lock that records another sum, the disagreement is a diagnostic at the pin.
	install(t, s, "basebackup", "initdb")
	code, _, errs = run(t, "validate", "-config", s.config)
	if code == 0 || !strings.Contains(errs, at+": Error: Pin disagrees with the lock file") || !strings.Contains(errs, s.lock) {
		t.Errorf("a pin disagreeing with the lock: exit %d, want a diagnostic at %s\n%s", code, at, errs)
	}
	// A pin that agrees with the lock validates.
	good := newSetup(t, fmt.Sprintf("\nplugin \"basebackup\" {\n  sha256 = %q\n}\n", sum(t, builtPlugin(t, "basebackup"))))
	install(t, good, "basebackup", "initdb")
	if code, out, errs := run(t, "validate", "-config", good.config); code != 0 {
		t.Errorf("a pin agreeing with the lock: exit %d\n%s%s", code, out, errs)
	}
}

func TestRenamedPluginIsRefusedByInstallAndWarnedAbout(t *testing.T) {
	s := newSetup(t, "")
	srcDir := t.TempDir()
	renamed := filepath.Join(srcDir, plugin.Prefix+"tarball2")
	b, err := os.ReadFile(builtPlugin(t, "basebackup"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(renamed, b, 0o755); err != nil {
		t.Fatal(err)
	}
	code, _, errs := run(t, "plugins", "install", renamed, "-config", s.config)
	if code == 0 || !strings.Contains(errs, `named "tarball2" but describes itself as "basebackup"`) {
		t.Errorf("install of a renamed plugin: exit %d\n%s", code, errs)
	}
	if des, _ := os.ReadDir(s.pluginDir); len(des) != 0 {
		t.Errorf("install refused but left %d file(s) in the plugin directory", len(des))
	}
	if _, err := os.Stat(s.lock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("install refused but wrote the lock file: %v", err)
	}
	// The conformance check fails it too.
	code, out, errs := run(t, "plugins", "check", renamed)
	if code == 0 || !regexp.MustCompile(`(?m)^describe\s+FAIL\s.*describes itself as "basebackup"`).MatchString(out) {
		t.Errorf("check of a renamed plugin: exit %d\n%s%s", code, out, errs)
	}

	// Copied into a plugin directory without a lock, `plugins` lists it under its file name
	// with a warning, and shows descriptions.
	dir := t.TempDir()
	_ = os.Chmod(dir, 0o755)
	if err := os.WriteFile(filepath.Join(dir, plugin.Prefix+"tarball2"), b, 0o755); err != nil {
		t.Fatal(err)
	}
	code, out, errs = run(t, "plugins", "-plugin-dir", dir)
	if code != 0 || !regexp.MustCompile(`(?m)^tarball2\s+\S+\s+clone\b.*pg_basebackup`).MatchString(out) ||
		!strings.Contains(errs, `tarball2`) || !strings.Contains(errs, `describes itself as "basebackup"`) {
		t.Errorf("plugins: exit %d\n%s%s", code, out, errs)
	}
	_, out, _ = run(t, "plugins", "-plugin-dir", dir, "-json")
	var rows []struct{ Name, Description, Warning string }
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("plugins -json: %v\n%s", err, out)
	}
	if len(rows) != 1 || rows[0].Name != "tarball2" || rows[0].Description == "" || !strings.Contains(rows[0].Warning, "basebackup") {
		t.Errorf("plugins -json: %+v", rows)
	}
}

func TestCheckPassesEveryBuiltinPlugin(t *testing.T) {
	// The options that let a cancelled call really run something; the others fail before it can
	// be cancelled (no backup, no wal-e, a root user), which the check says.
	given := map[string][]string{"script": {"-option", "command=sh -c 'sleep 600'"}}
	cancelled := map[string]string{"basebackup": "ok", "script": "ok"}
	for _, name := range []string{"basebackup", "initdb", "pgbackrest", "rewind", "script", "wale"} {
		t.Run(name, func(t *testing.T) {
			code, out, errs := run(t, append([]string{"plugins", "check", builtPlugin(t, name)}, given[name]...)...)
			if code != 0 || strings.Contains(out, "FAIL") {
				t.Fatalf("check: exit %d\n%s%s", code, out, errs)
			}
			for _, check := range []string{"launch and handshake", "mutual TLS", "describe", "validate bad options"} {
				if !regexp.MustCompile(`(?m)^.*` + regexp.QuoteMeta(check) + `.*[ \t]ok[ \t]`).MatchString(out) {
					t.Errorf("no passed %q check:\n%s", check, out)
				}
			}
			want := orDefault(cancelled[name], "(ok|skipped)")
			if !regexp.MustCompile(`(?m)^cancelled \w+ leaves no process\s+` + want + `\s`).MatchString(out) {
				t.Errorf("the cancellation check is not %s:\n%s", want, out)
			}
		})
	}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func TestCheckFailsABadPlugin(t *testing.T) {
	bin := builtPlugin(t, "testplugin")
	t.Run("leaves a process when cancelled", func(t *testing.T) {
		t.Setenv("TESTPLUGIN_MODE", "hang")
		code, out, errs := run(t, "plugins", "check", bin)
		m := regexp.MustCompile(`(?m)^cancelled clone leaves no process\s+FAIL\s.*sleep \(pid (\d+)\)`).FindStringSubmatch(out)
		if code == 0 || m == nil {
			t.Fatalf("check: exit %d\n%s%s", code, out, errs)
		}
		// What the check found is gone once it has ended.
		if _, err := os.Stat("/proc/" + m[1]); err == nil {
			if st, _ := os.ReadFile("/proc/" + m[1] + "/stat"); !strings.Contains(string(st), ") Z ") {
				t.Errorf("the plugin's child (pid %s) is still there after the check", m[1])
			}
		}
	})
	t.Run("crashes in Validate", func(t *testing.T) {
		t.Setenv("TESTPLUGIN_MODE", "validatepanic")
		code, out, errs := run(t, "plugins", "check", bin, "-json")
		var v struct {
			OK     bool
			Checks []plugin.CheckResult
		}
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			t.Fatalf("check -json: %v\n%s%s", err, out, errs)
		}
		failed := map[string]string{}
		for _, c := range v.Checks {
			if !c.OK {
				failed[c.Name] = c.Detail
			}
		}
		if code == 0 || v.OK || !strings.Contains(failed["validate bad options (clone)"], "deliberate panic in Validate") {
			t.Errorf("check: exit %d, failed %v", code, failed)
		}
	})
	t.Run("not a plugin", func(t *testing.T) {
		script := filepath.Join(t.TempDir(), plugin.Prefix+"notaplugin")
		if err := os.WriteFile(script, []byte("#!/bin/sh\necho hello\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		code, out, errs := run(t, "plugins", "check", script)
		if code == 0 || !regexp.MustCompile(`(?m)^launch and handshake\s+FAIL`).MatchString(out) {
			t.Errorf("check: exit %d\n%s%s", code, out, errs)
		}
	})
}

func TestCheckClonesFromASource(t *testing.T) {
	p := pgtest.StartPrimary(t, pgtest.Options{ReplUser: "vendor_repl"})
	tmp := t.TempDir()
	source := (&url.URL{Scheme: "postgres", User: url.UserPassword(p.ReplUser, p.ReplPass),
		Host: "127.0.0.1:" + strconv.Itoa(p.Port), Path: "/postgres"}).String()
	code, out, errs := run(t, "plugins", "check", builtPlugin(t, "basebackup"), "-source", source, "-temp-dir", tmp, "-bin-dir", p.BinDir)
	if code != 0 || !regexp.MustCompile(`(?m)^clone from source\s+ok\s+cloned`).MatchString(out) {
		t.Fatalf("check -source: exit %d\n%s%s", code, out, errs)
	}
	if strings.Contains(out+errs, p.ReplPass) {
		t.Errorf("the password appears in the output")
	}
	// The options given reach the clone: one the plugin refuses fails it.
	code, out, errs = run(t, "plugins", "check", builtPlugin(t, "basebackup"), "-source", source, "-temp-dir", tmp, "-bin-dir", p.BinDir, "-option", "format=tar")
	if code == 0 || !regexp.MustCompile(`(?m)^clone from source\s+FAIL\s.*format`).MatchString(out) {
		t.Errorf("check -source -option format=tar: exit %d\n%s%s", code, out, errs)
	}
	if des, _ := os.ReadDir(tmp); len(des) != 0 {
		t.Errorf("the check left %d entries in its temporary directory", len(des))
	}
}

// -plugin-dir names the plugin directory over the configuration's plugin_dir, as its help says,
// for `plugins` as for its subcommands.
func TestPluginsListsThePluginDirFlag(t *testing.T) {
	s := newSetup(t, "")
	install(t, s, "basebackup")
	other := t.TempDir()
	_ = os.Chmod(other, 0o755)
	b, err := os.ReadFile(builtPlugin(t, "initdb"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(other, plugin.Prefix+"initdb"), b, 0o755); err != nil {
		t.Fatal(err)
	}
	_, out, errs := run(t, "plugins", "-config", s.config, "-plugin-dir", other, "-json")
	var rows []struct{ Name, Path string }
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("plugins -json: %v\n%s%s", err, out, errs)
	}
	if len(rows) != 1 || rows[0].Name != "initdb" || filepath.Dir(rows[0].Path) != other {
		t.Errorf("plugins -config %s -plugin-dir %s lists %+v, want initdb from %s", s.config, other, rows, other)
	}
}
