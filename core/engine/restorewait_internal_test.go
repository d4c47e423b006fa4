package engine

import (
	"errors"
	"strings"
	"testing"
)

// A standby fed by an archive alone whose recovery waits again and again for WAL at one
// position has a failing restore_command: the error names the position and the command's last
// output; recovery that moves on, or has not waited often enough, is no failure.
func TestRestoreStalled(t *testing.T) {
	wait := func(lsn string) string {
		return "2026-12-07 03:20:34.475 UTC [29164] LOG:  waiting for WAL to become available at " + lsn
	}
	pgbackrest := []string{
		"WARN: repo1: [FileMissingError] unable to load info file '/repo/archive/nowhere/archive.info':",
		"      FileMissingError: unable to open missing file '/repo/archive/nowhere/archive.info' for read",
		"      HINT: has a stanza-create been performed?",
		"ERROR: [103]: unable to find a valid repository",
	}
	var failing []string
	failing = append(failing, "2026-12-07 03:20:29.001 UTC [29164] LOG:  entering standby mode")
	for range 3 {
		failing = append(failing, pgbackrest...)
		failing = append(failing, wait("0/2000078"))
	}
	err := restoreStalled(failing)
	if !errors.Is(err, ErrRestoreFails) {
		t.Fatalf("three waits at 0/2000078 with the command failing between them: got %v, want ErrRestoreFails", err)
	}
	msg := err.Error()
	for _, want := range []string{"0/2000078", "tried 3 times", "nowhere/archive.info", "ERROR: [103]: unable to find a valid repository"} {
		if !strings.Contains(msg, want) {
			t.Errorf("the error does not say %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "stanza-create") {
		t.Errorf("the error carries the output's continuation lines:\n%s", msg)
	}
	if first, _, _ := strings.Cut(msg, "\n"); strings.Contains(first, "ERROR:") {
		t.Errorf("the command's output is on the error's first line, where status reads its root cause: %s", first)
	}

	silent := []string{wait("0/3000000"), wait("0/3000000"), wait("0/3000000")}
	if err := restoreStalled(silent); err == nil || !strings.Contains(err.Error(), "it writes nothing") {
		t.Errorf("a command that writes nothing (false): got %v", err)
	}
	moving := []string{wait("0/3000000"), wait("0/3000000"), wait("0/4000000"), wait("0/4000000")}
	if err := restoreStalled(moving); err != nil {
		t.Errorf("recovery moved on from 0/3000000 to 0/4000000: got %v", err)
	}
	if err := restoreStalled(failing[:len(failing)-1]); err != nil {
		t.Errorf("two waits only: got %v", err)
	}
}
