package cli

import (
	"bytes"
	"strings"
	"testing"

	"github.com/pgimaged/pgimaged/sdk"
)

// A method counting in percent shows its percentage once on each frame: the bar draws it, the
// text beside it does not repeat it.
func TestPercentProgressShowsThePercentageOnce(t *testing.T) {
	var out bytes.Buffer
	d := newProgressDisplay(&out)
	for _, done := range []int64{0, 100} {
		d.Update("pgbackrest", sdk.Progress{Phase: "restore", Done: done, Total: 100, Unit: sdk.UnitPercent})
	}
	d.Close()
	frames := strings.Split(strings.ReplaceAll(out.String(), clearLine, "\n"), "\n")
	var last string
	for _, f := range frames {
		if strings.TrimSpace(f) != "" {
			last = strings.TrimLeft(f, "\r")
		}
	}
	if n := strings.Count(last, "100%"); n != 1 || !strings.HasPrefix(last, "pgbackrest (restore)") {
		t.Errorf("the last frame shows 100%% %d times, want once: %q", n, last)
	}
}
