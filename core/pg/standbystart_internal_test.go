package pg

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A standby.signal older than the postmaster (here: this test's own process, named in a
// postmaster.pid) says the server started as a standby; one written after it started, or none,
// does not.
func TestStartedAsStandby(t *testing.T) {
	dir := t.TempDir()
	started, ok := processStart(os.Getpid())
	if !ok {
		t.Fatal("no start time for this process in /proc")
	}
	if d := time.Since(started); d < 0 || d > time.Hour {
		t.Fatalf("this process started %s ago, by /proc", d)
	}
	pid := fmt.Sprintf("%d\n%s\n%d\n5432\n%s\n127.0.0.1\n  5432001  1\nready\n", os.Getpid(), dir, started.Unix(), dir)
	if err := os.WriteFile(filepath.Join(dir, "postmaster.pid"), []byte(pid), 0o600); err != nil {
		t.Fatal(err)
	}
	if StartedAsStandby(dir) {
		t.Error("without standby.signal: a standby")
	}
	signal := filepath.Join(dir, "standby.signal")
	if err := os.WriteFile(signal, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if StartedAsStandby(dir) {
		t.Error("standby.signal written after the postmaster started: a standby")
	}
	before := started.Add(-time.Minute)
	if err := os.Chtimes(signal, before, before); err != nil {
		t.Fatal(err)
	}
	if !StartedAsStandby(dir) {
		t.Error("standby.signal older than the postmaster: not a standby")
	}
}
