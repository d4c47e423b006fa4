package engine

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/pgimaged/pgimaged/core/pg"
)

// A standby whose WAL receiver stopped (its primary lost) reports pg_control's timeline, which
// lags behind a switch until the next restartpoint: the timeline it replays on is the newest one
// whose history file it holds and that began at or before the WAL it holds, so that two standbys
// at the same place publish the same timeline and a failover compares them rightly.
func TestReplayTimeline(t *testing.T) {
	dir := t.TempDir()
	wal := filepath.Join(dir, "pg_wal")
	if err := os.Mkdir(wal, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{
		"00000003.history":         "1\t0/2000000\tno recovery target specified\n2\t0/3000000\tno recovery target specified\n",
		"00000004.history":         "1\t0/2000000\tno recovery target specified\n2\t0/3000000\tno recovery target specified\n3\t0/4000000\tno recovery target specified\n",
		"000000030000000000000003": "",
		"000000040000000000000004": "",
		// Timeline 5's history was fetched, but the standby could not follow it: no segment.
		"00000005.history": "1\t0/2000000\tno recovery target specified\n2\t0/3000000\tno recovery target specified\n3\t0/4000000\tno recovery target specified\n4\t0/4400000\tno recovery target specified\n",
	} {
		if err := os.WriteFile(filepath.Join(wal, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		control int
		end     pg.LSN
		want    int
	}{
		{2, 0x4500000, 4},
		{3, 0x4500000, 4},
		{2, 0x3500000, 3},
		{2, 0x2800000, 2},
		{6, 0x4500000, 6}, // pg_control's, when it is the newest
	} {
		if got := replayTimeline(dir, tc.control, tc.end); got != tc.want {
			t.Errorf("replayTimeline(pg_control's %d, WAL to %s) = %d, want %d", tc.control, tc.end, got, tc.want)
		}
	}
	if got := replayTimeline(filepath.Join(dir, "absent"), 2, 0x4500000); got != 2 {
		t.Errorf("without pg_wal: %d, want pg_control's 2", got)
	}
}
