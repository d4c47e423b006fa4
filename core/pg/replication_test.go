package pg_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgimaged/pgimaged/core/pg"
)

func TestSynchronousStandbyNames(t *testing.T) {
	for want, members := range map[string][]string{
		`"node2"`:                       {"node2"},
		`FIRST 2 ("n2", "Odd""Name")`:   {"n2", `Odd"Name`},
		`FIRST 3 ("a-1", "b.2", "c d")`: {"a-1", "b.2", "c d"},
	} {
		if got := pg.SynchronousStandbyNames(members); got != want {
			t.Errorf("SynchronousStandbyNames(%q) = %s, want %s", members, got, want)
		}
	}
}

// TestWriteSynchronousStandbyNames: the setting lives in its own file, included once from
// postgresql.conf after what was there; rewriting the same value changes nothing, and removing
// it removes the file.
func TestWriteSynchronousStandbyNames(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "postgresql.conf"), []byte("synchronous_standby_names = 'user'\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for i, step := range []struct {
		value   string
		set     bool
		changed bool
	}{{`"node2"`, true, true}, {`"node2"`, true, false}, {"*", true, true}, {"", false, true}, {"", false, false}} {
		changed, err := pg.WriteSynchronousStandbyNames(dir, step.value, step.set)
		if err != nil || changed != step.changed {
			t.Fatalf("step %d: changed %v, %v; want changed %v", i, changed, err, step.changed)
		}
		b, err := os.ReadFile(filepath.Join(dir, pg.SyncFile))
		switch {
		case step.set && (err != nil || !strings.Contains(string(b), "synchronous_standby_names = "+pg.QuoteConfValue(step.value))):
			t.Fatalf("step %d: %s holds %q (%v)", i, pg.SyncFile, b, err)
		case !step.set && !os.IsNotExist(err):
			t.Fatalf("step %d: %s is still there (%v)", i, pg.SyncFile, err)
		}
	}
	conf, _ := os.ReadFile(filepath.Join(dir, "postgresql.conf"))
	if n := strings.Count(string(conf), "include_if_exists = '"+pg.SyncFile+"'"); n != 1 || !strings.HasPrefix(string(conf), "synchronous_standby_names = 'user'\n") {
		t.Errorf("postgresql.conf includes the file %d times, after what was there:\n%s", n, conf)
	}
}
