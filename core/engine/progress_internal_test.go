package engine

import (
	"testing"
	"time"

	"github.com/pgimaged/pgimaged/core/dcs"
)

// The rate is measured from the first event of a method's phase; a new phase starts again.
func TestRateMeter(t *testing.T) {
	var m rateMeter
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ev := func(phase string, done int64, after time.Duration) *dcs.CloneProgress {
		return m.measure(&dcs.CloneProgress{Method: "basebackup", Phase: phase, Done: done, Total: 10 << 20, Unit: "bytes"}, at.Add(after))
	}
	if p := ev("copy", 1<<20, 0); p.Rate != 0 || p.ETA != 0 {
		t.Errorf("first event: rate %v, eta %v; want none yet", p.Rate, p.ETA)
	}
	if p := ev("copy", 5<<20, 2*time.Second); p.Rate != 2<<20 || p.ETA != 2.5 {
		t.Errorf("4 MiB in 2s: rate %v, eta %v; want 2 MiB/s and 2.5s", p.Rate, p.ETA)
	}
	if p := ev("wal", 1<<20, 3*time.Second); p.Rate != 0 {
		t.Errorf("a new phase: rate %v, want none yet", p.Rate)
	}
}
