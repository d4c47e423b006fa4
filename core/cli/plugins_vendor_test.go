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
