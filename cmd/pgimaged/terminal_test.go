package main_test

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pgimaged/pgimaged/internal/pgtest"
	"github.com/pgimaged/pgimaged/internal/termtest"
	"github.com/pgimaged/pgimaged/internal/testenv"
)

// inTmux runs a shell command line in a 120x30 tmux terminal, as a person would see it, and
// returns the screen with its scrollback once the command ended.
func inTmux(t *testing.T, dir, line string) string {
	t.Helper()
	tmux := testenv.LookPath(t, "tmux")
	sock := filepath.Join(dir, "tmux.sock")
	tm := func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, tmux, append([]string{"-S", sock}, args...)...).CombinedOutput()
		return string(out), err
	}
	const done = "__COMMAND_ENDED__"
	if out, err := tm("new-session", "-d", "-x", "120", "-y", "30", line+"; echo "+done+"; sleep 600"); err != nil {
		t.Fatalf("tmux new-session: %v\n%s", err, out)
	}
	t.Cleanup(func() { _, _ = tm("kill-server") })
	var screen string
	eventually(t, 5*time.Minute, "the command in tmux ends", func() bool {
		out, err := tm("capture-pane", "-p", "-J", "-S", "-")
		screen = out
		return err == nil && strings.Contains(out, done)
	})
	return screen
}

var (
	logLine = regexp.MustCompile(`\[(TRACE|DEBUG|INFO|WARN|ERROR)\]`)
	barLine = regexp.MustCompile(`\|[^|]*\|`)
)

// A clone on a terminal draws its progress bar on lines of its own, between the log lines,
// and the bar's "X of Y" agrees with its percentage.
func TestCloneProgressOnATerminal(t *testing.T) {
	p := pgtest.StartPrimary(t, pgtest.Options{})
	p.Exec(t, "CREATE TABLE filler AS SELECT g, repeat('x', 200) AS pad FROM generate_series(1, 100000) g")
	// A slow copy with pg_basebackup's verbose output: many redraws, log lines among them.
	n := replicaOf(t, p, "replica1", `method "basebackup" {
  checkpoint = "fast"
  max-rate   = "8192"
  verbose    = true
}`)
	line := fmt.Sprintf("env %s %s clone -config %s -log-level debug --stop --connstring '%s'",
		strings.Join(n.env, " "), pgimagedBin(t), n.config, p.ConnURL())
	screen := inTmux(t, n.dir, line)
	for _, s := range n.secrets() {
		if strings.Contains(screen, s) {
			t.Fatal("a password appears on the terminal")
		}
	}
	var bars, logs int
	for _, l := range strings.Split(screen, "\n") {
		isLog, isBar := logLine.MatchString(l), barLine.MatchString(l) && strings.Contains(l, "%")
		if isLog {
			logs++
		}
		if !isBar {
			continue
		}
		bars++
		if isLog {
			t.Errorf("a log line and the progress bar share a line: %q", l)
		}
		if err := termtest.BarAgrees(l); err != nil {
			t.Error(err)
		}
	}
	if bars == 0 || logs == 0 {
		t.Errorf("the screen shows %d bar and %d log lines, want both:\n%s", bars, logs, screen)
	}
	if !strings.Contains(screen, "PostgreSQL stopped") {
		t.Errorf("the clone did not end:\n%s", screen)
	}
}
