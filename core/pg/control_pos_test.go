package pg_test

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/pgimaged/pgimaged/core/pg"
	"github.com/pgimaged/pgimaged/internal/testenv"
)

// TestControlDataPositionMatchesPgControldata reads the state and WAL positions of the fixture's
// pg_control and compares them with what pg_controldata prints for it.
func TestControlDataPositionMatchesPgControldata(t *testing.T) {
	dir := t.TempDir()
	copyDir(t, "testdata/pg15-cluster", dir)
	cd, err := pg.ReadControlData(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !cd.HasPosition {
		t.Fatalf("no position read from a PostgreSQL 15 pg_control: %+v", cd)
	}
	out, err := exec.Command(filepath.Join(testenv.PGBinDir(t), "pg_controldata"), dir).CombinedOutput()
	if err != nil {
		t.Fatalf("pg_controldata: %v: %s", err, out)
	}
	field := func(name string) string {
		m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `:\s+(.*)$`).FindStringSubmatch(string(out))
		if m == nil {
			t.Fatalf("pg_controldata printed no %q:\n%s", name, out)
		}
		return strings.TrimSpace(m[1])
	}
	for _, c := range []struct{ name, got string }{
		{"Database cluster state", cd.State.String()},
		{"Latest checkpoint location", cd.Checkpoint.String()},
		{"Latest checkpoint's REDO location", cd.Redo.String()},
		{"Latest checkpoint's TimeLineID", itoa(cd.Timeline)},
		{"Minimum recovery ending location", cd.MinRecoveryPoint.String()},
		{"Min recovery ending loc's timeline", itoa(cd.MinRecoveryPointTLI)},
	} {
		if want := field(c.name); c.got != want {
			t.Errorf("%s: read %q, pg_controldata says %q", c.name, c.got, want)
		}
	}
}

func itoa(v uint32) string { return strconv.FormatUint(uint64(v), 10) }
