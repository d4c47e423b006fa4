package cli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pgimaged/pgimaged/core/config"
	"github.com/pgimaged/pgimaged/internal/termtest"
	"github.com/pgimaged/pgimaged/sdk"
)

// With log_format = "json" and log_file, log lines are JSON objects appended to the file;
// after logrotate moved the file away, SIGHUP has them go to a new file at the same path.
func TestJSONLogFileReopenedOnSIGHUP(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "pgimaged.log")
	var errb bytes.Buffer
	e := &env{stdout: &bytes.Buffer{}, stderr: &errb}
	logger := newLogger(e, &config.Config{LogFormat: "json", LogFile: path}, "info")
	defer e.sink.Close()
	logger.Error("while cloning: the source is gone", "method", "basebackup")

	lines := readJSONLines(t, path)
	if len(lines) != 1 || lines[0]["@level"] != "error" || lines[0]["@message"] != "while cloning: the source is gone" || lines[0]["method"] != "basebackup" {
		t.Fatalf("log file holds %v", lines)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("log file mode %v (%v), want 0640", fi.Mode().Perm(), err)
	}
	if errb.Len() > 0 {
		t.Errorf("stderr got %q", errb.String())
	}

	rotated := path + ".1"
	if err := os.Rename(path, rotated); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(path); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("SIGHUP did not reopen the log file")
		}
		time.Sleep(10 * time.Millisecond)
	}
	logger.Info("after rotation")
	if l := readJSONLines(t, path); len(l) != 1 || l[0]["@message"] != "after rotation" || l[0]["@level"] != "info" {
		t.Errorf("new log file holds %v", l)
	}
	if l := readJSONLines(t, rotated); len(l) != 1 {
		t.Errorf("rotated log file holds %v", l)
	}
}

func readJSONLines(t *testing.T, path string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("%s: line %q is not JSON: %v", path, sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

// screen replays what was written to a terminal: \r goes to the line's start, ESC[K erases to
// its end, \n starts a new line. It returns the lines as they end up shown.
func screen(out string) []string {
	var lines []string
	var cur []rune
	col := 0
	for i := 0; i < len(out); {
		switch {
		case strings.HasPrefix(out[i:], "\x1b[K"):
			cur = cur[:col]
			i += 3
			continue
		case out[i] == '\r':
			col = 0
		case out[i] == '\n':
			lines = append(lines, string(cur))
			cur, col = nil, 0
		default:
			r := []rune(out[i:])[0]
			if col < len(cur) {
				cur[col] = r
			} else {
				cur = append(cur, r)
			}
			col++
			i += len(string(r))
			continue
		}
		i++
	}
	return append(lines, string(cur))
}

// Log lines written while a bar is drawn get lines of their own, and the bar's text agrees
// with its percentage on every redraw.
func TestProgressBarAndLogLinesDoNotShareALine(t *testing.T) {
	var term bytes.Buffer
	d := newProgressDisplay(&term)
	const total = 471 << 20
	for i := int64(0); i <= 10; i++ {
		d.mu.Lock()
		d.last = time.Time{} // draw every event
		d.mu.Unlock()
		d.Update("basebackup", sdk.Progress{Done: total * i / 10, Total: total, Unit: sdk.UnitBytes})
		if _, err := d.Write([]byte("2026-01-01T00:00:00Z [INFO]  pgimaged: a log line\n")); err != nil {
			t.Fatal(err)
		}
		for _, l := range screen(term.String()) {
			if strings.Contains(l, "a log line") && strings.Contains(l, "basebackup") {
				t.Fatalf("a log line shares a line with the bar: %q", l)
			}
		}
		lines := screen(term.String())
		bar := lines[len(lines)-1]
		if i == 10 {
			bar = lines[len(lines)-3] // the finished bar stays above the last log line
		}
		want := humanBytes(total*i/10) + " of " + humanBytes(total)
		if !strings.Contains(bar, want) {
			t.Errorf("bar %q: want %q", bar, want)
		}
		if err := termtest.BarAgrees(bar); err != nil {
			t.Error(err)
		}
	}
	d.Close()
}

func TestProgressUnits(t *testing.T) {
	for _, c := range []struct {
		p          sdk.Progress
		want, bans string
	}{
		{sdk.Progress{Done: 40, Total: 100, Unit: sdk.UnitPercent}, "40%", " B"},
		{sdk.Progress{Done: 3, Total: 12, Unit: sdk.UnitFiles}, "3 of 12 files", " B"},
		{sdk.Progress{Done: 3 << 20, Total: 12 << 20, Unit: sdk.UnitBytes}, "3.0 MiB of 12.0 MiB", "files"},
	} {
		var term bytes.Buffer
		d := newProgressDisplay(&term)
		d.Update("m", c.p)
		d.Close()
		got := strings.Join(screen(term.String()), "\n")
		if !strings.Contains(got, c.want) || strings.Contains(got, c.bans) {
			t.Errorf("%+v drawn as %q: want %q, never %q", c.p, got, c.want, c.bans)
		}
	}
}

// A reload that changes log_file, or level, has the next lines go to the new file at the new
// level; one that removes it has them go to stderr; the old file is left as it was.
func TestLogRetargetedByReload(t *testing.T) {
	dir := t.TempDir()
	first, second := filepath.Join(dir, "first.log"), filepath.Join(dir, "second.log")
	var errb bytes.Buffer
	e := &env{stdout: &bytes.Buffer{}, stderr: &errb}
	logger := newLogger(e, &config.Config{LogFile: first}, "")
	defer e.sink.Close()
	apply := reloaded(e, logger, nil, "")
	logger.Info("one")
	logger.Debug("hidden")
	apply(&config.Config{LogFile: second, LogLevel: "debug"})
	logger.Debug("two")
	apply(&config.Config{})
	logger.Info("three")
	a, _ := os.ReadFile(first)
	b, _ := os.ReadFile(second)
	if !strings.Contains(string(a), "one") || strings.Contains(string(a), "two") || strings.Contains(string(a), "hidden") {
		t.Errorf("first log file holds %q", a)
	}
	if !strings.Contains(string(b), "two") || strings.Contains(string(b), "three") {
		t.Errorf("second log file holds %q (the debug line after the reload raised the level belongs there)", b)
	}
	if !strings.Contains(errb.String(), "three") {
		t.Errorf("stderr holds %q, want the line after log_file was removed", errb.String())
	}
}
