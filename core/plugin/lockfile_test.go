package plugin_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgimaged/pgimaged/core/plugin"
)

func TestLockFileRoundTripIsSortedAndPointsAtSums(t *testing.T) {
	path := filepath.Join(t.TempDir(), plugin.LockFileName)
	if l, err := plugin.ReadLock(path); l != nil || err != nil {
		t.Fatalf("no lock file: got %v, %v; want nil, nil", l, err)
	}
	a, b := strings.Repeat("a", 64), strings.Repeat("b", 64)
	l := &plugin.Lock{Path: path, Entries: map[string]plugin.LockEntry{
		"zeta": {Name: "zeta", Version: "2.0", SHA256: b}, "alpha": {Name: "alpha", Version: "1.0", SHA256: a}}}
	if err := l.Write(); err != nil {
		t.Fatal(err)
	}
	got, err := plugin.ReadLock(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Entries["alpha"].SHA256 != a || got.Entries["zeta"].Version != "2.0" || len(got.Entries) != 2 {
		t.Fatalf("read back %+v", got.Entries)
	}
	text, _ := os.ReadFile(path)
	lines := strings.Split(string(text), "\n")
	r := got.Entries["zeta"].Range
	if r.Start.Line < 1 || !strings.Contains(lines[r.Start.Line-1], b) || strings.Index(string(text), `"alpha"`) > strings.Index(string(text), `"zeta"`) {
		t.Errorf("entries not sorted, or the range %v does not point at zeta's sum:\n%s", r, text)
	}
}

func TestMalformedLockFileRefusesLaunch(t *testing.T) {
	dir := testPluginDir(t)
	lock := filepath.Join(t.TempDir(), plugin.LockFileName)
	for _, content := range []string{
		"plugin \"testplugin\" {\n  version = \"1\"\n}\n",                          // no sha256
		"plugin \"testplugin\" {\n  sha256 = \"xyz\"\n}\n",                         // not a sum
		"plugin \"testplugin\" {\n  sha256 = " + strings.Repeat("1", 64) + "\n}\n", // not a string
		"plugin \"testplugin\" {\n",                                                // not HCL
	} {
		if err := os.WriteFile(lock, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		cat := &plugin.Catalog{Dir: dir, LockFile: lock}
		inst, err := cat.Launch(context.Background(), "testplugin")
		if err == nil {
			inst.Kill()
			t.Errorf("launched with lock file %q", content)
		} else if !strings.Contains(err.Error(), "lock file") {
			t.Errorf("refusal does not name the lock file: %v", err)
		}
	}
}
