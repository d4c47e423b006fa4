package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/pgimaged/pgimaged/core/plugin"
)

// copyPlugin copies the built plugin name into dir as file.
func copyPlugin(t *testing.T, name, dir, file string) string {
	t.Helper()
	b, err := os.ReadFile(builtPlugin(t, name))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, file)
	if err := os.WriteFile(p, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// A listing that holds a plugin pgimaged refuses to start exits 4, as help says, with the
// reason; the column saying what a plugin's sha256 is checked against is named and defined.
func TestPluginsExitsFourWhenItListsARefusedPlugin(t *testing.T) {
	s := newSetup(t, `plugin "initdb" { sha256 = "`+strings.Repeat("ab", 32)+`" }`+"\n")
	install(t, s, "basebackup")
	copyPlugin(t, "initdb", s.pluginDir, plugin.Prefix+"initdb") // pinned to another sum, not locked

	code, out, errs := run(t, "plugins", "-config", s.config)
	if code != 4 || !regexp.MustCompile(`(?m)^initdb\s+\(refused, see below\)`).MatchString(out) || !strings.Contains(errs, "pgimaged: plugin initdb:") {
		t.Errorf("plugins with a refused plugin: exit %d, want 4\n%s%s", code, out, errs)
	}
	if !regexp.MustCompile(`(?m)^NAME\s+VERSION\s+CAPABILITIES\s+CHECKED\s`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^basebackup\s+\S+\s+clone\s+lock\s`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^initdb\s+\(refused, see below\)\s+pin\s`).MatchString(out) {
		t.Errorf("the CHECKED column does not say what each plugin is checked against:\n%s", out)
	}
	code, out, _ = run(t, "plugins", "-config", s.config, "-json")
	var rows []struct {
		Name    string `json:"name"`
		Checked string `json:"checked"`
		Error   string `json:"error"`
	}
	if err := json.Unmarshal([]byte(out), &rows); err != nil || code != 4 || len(rows) != 2 || rows[0].Checked != "lock" || rows[1].Checked != "pin" || rows[1].Error == "" {
		t.Errorf("plugins -json: exit %d, %v, %+v\n%s", code, err, rows, out)
	}

	// Without a configuration nothing is checked, and the column says so.
	dir := t.TempDir()
	_ = os.Chmod(dir, 0o755)
	copyPlugin(t, "initdb", dir, plugin.Prefix+"initdb")
	code, out, errs = run(t, "plugins", "-plugin-dir", dir)
	if code != 0 || !regexp.MustCompile(`(?m)^initdb\s+\S+\s+bootstrap\s+none\s`).MatchString(out) {
		t.Errorf("plugins without a configuration: exit %d\n%s%s", code, out, errs)
	}

	_, help, _ := run(t, "help", "plugins")
	for _, want := range []string{"CHECKED", "pin", "lock", "none", "4 "} {
		if !strings.Contains(help, want) {
			t.Errorf("help plugins does not explain %q:\n%s", want, help)
		}
	}
}

// A file named pgimaged-plugin-<name>-<version>, as a release is often named, installs as
// pgimaged-plugin-<name> when the version is the one the plugin describes; another suffix is
// refused with exit 4, which help lists, and the reason.
func TestInstallTakesAVersionSuffix(t *testing.T) {
	s := newSetup(t, "")
	src := t.TempDir()
	for _, file := range []string{plugin.Prefix + "testplugin-0.0.1", plugin.Prefix + "testplugin-v0.0.1"} {
		p := copyPlugin(t, "testplugin", src, file)
		code, out, errs := run(t, "plugins", "install", p, "-config", s.config)
		if code != 0 || !strings.Contains(out, filepath.Join(s.pluginDir, plugin.Prefix+"testplugin")) {
			t.Errorf("install %s: exit %d\n%s%s", file, code, out, errs)
		}
	}
	if des, _ := os.ReadDir(s.pluginDir); len(des) != 1 || des[0].Name() != plugin.Prefix+"testplugin" {
		t.Errorf("plugin directory after install: %v", des)
	}
	p := copyPlugin(t, "testplugin", src, plugin.Prefix+"testplugin-0.1.1")
	code, _, errs := run(t, "plugins", "install", p, "-config", s.config)
	if code != 4 || !strings.Contains(errs, `version "0.0.1"`) {
		t.Errorf("install of a file whose version suffix is not the plugin's: exit %d, want 4\n%s", code, errs)
	}
	if _, help, _ := run(t, "help", "plugins", "install"); !regexp.MustCompile(`(?m)^\s+4 `).MatchString(help) {
		t.Errorf("help plugins install does not list exit 4:\n%s", help)
	}
}

// checkRow finds a check's line in `plugins check`'s table: its result and detail.
func checkRow(out, name string) (result, detail string) {
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `\s+(ok|FAIL|skipped)\s+(.*)$`).FindStringSubmatch(out)
	if m == nil {
		return "", ""
	}
	return m[1], m[2]
}

// A plugin with a required option: without it, the cancellation check cannot run and says
// skipped with why; given the option (-option, or -config with -method) it really cancels a
// running call. A closed schema refusing unknown options is said to, not "it passes options on".
func TestCheckCarriesMethodOptions(t *testing.T) {
	bin := builtPlugin(t, "testplugin")
	t.Setenv("TESTPLUGIN_MODE", "cancel") // runs a child through sdk.Run until cancelled
	t.Setenv("TESTPLUGIN_REQUIRED", "marker")

	code, out, errs := run(t, "plugins", "check", bin)
	res, detail := checkRow(out, "cancelled clone leaves no process")
	if code != 0 || res != "skipped" || !strings.Contains(detail, "marker") || !strings.Contains(detail, "-option") {
		t.Errorf("check without the required option: exit %d, cancellation check %q %q\n%s%s", code, res, detail, out, errs)
	}
	if res, detail := checkRow(out, "validate bad options (clone)"); res != "ok" || strings.Contains(detail, "passes options on") || !strings.Contains(detail, "schema refuses") {
		t.Errorf("the bad-options check on a closed schema: %q %q", res, detail)
	}
	_, out, _ = run(t, "plugins", "check", bin, "-json")
	var v struct {
		Checks []plugin.CheckResult
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("check -json: %v\n%s", err, out)
	}
	skipped := map[string]string{}
	for _, c := range v.Checks {
		if c.Skipped != "" {
			skipped[c.Name] = c.Skipped
		}
	}
	if !strings.Contains(skipped["cancelled clone leaves no process"], "marker") {
		t.Errorf("check -json does not say the cancellation check was skipped: %+v", v.Checks)
	}

	code, out, errs = run(t, "plugins", "check", bin, "-option", "marker=vendor")
	if res, detail := checkRow(out, "cancelled clone leaves no process"); code != 0 || res != "ok" || !strings.Contains(detail, "cancelled while it ran") {
		t.Errorf("check -option: exit %d, cancellation check %q %q\n%s%s", code, res, detail, out, errs)
	}
	if res, _ := checkRow(out, "validate the given options (clone)"); res != "ok" {
		t.Errorf("check -option: the given options are not checked:\n%s", out)
	}

	s := newSetup(t, `method "tarball" {
  plugin = "testplugin"
  marker = "vendor"
}
method "broken" {
  plugin = "testplugin"
  marker = "vendor"
  mystery = "1"
}
`)
	code, out, errs = run(t, "plugins", "check", bin, "-config", s.config, "-method", "tarball")
	if res, detail := checkRow(out, "cancelled clone leaves no process"); code != 0 || res != "ok" || !strings.Contains(detail, "cancelled while it ran") {
		t.Errorf("check -config -method: exit %d, cancellation check %q %q\n%s%s", code, res, detail, out, errs)
	}
	code, out, _ = run(t, "plugins", "check", bin, "-config", s.config, "-method", "broken")
	if res, detail := checkRow(out, "validate the given options (clone)"); code == 0 || res != "FAIL" || !strings.Contains(detail, "mystery") {
		t.Errorf("check of a method block with an unknown option: exit %d, %q %q\n%s", code, res, detail, out)
	}
	if code, _, errs := run(t, "plugins", "check", bin, "-method", "tarball"); code != 2 || !strings.Contains(errs, "-config") {
		t.Errorf("-method without -config: exit %d\n%s", code, errs)
	}
}
