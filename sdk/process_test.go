package sdk_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pgimaged/pgimaged/sdk"
	"github.com/pgimaged/pgimaged/sdk/plugintest"
)

func TestRunStreamsOutputAndMasksSecrets(t *testing.T) {
	rec := &plugintest.Recorder{}
	err := sdk.Run(context.Background(), sdk.Process{
		Argv:    []string{"sh", "-c", `echo "connecting with password hunter2"; printf 'progress 1\rprogress 2\r' >&2; echo "$EXTRA"`},
		Env:     map[string]string{"EXTRA": "from the env"},
		Secrets: []string{"hunter2"},
	}, rec)
	if err != nil {
		t.Fatal(err)
	}
	var msgs []string
	for _, l := range rec.Logs() {
		msgs = append(msgs, l.Message)
	}
	all := strings.Join(msgs, "\n")
	if strings.Contains(all, "hunter2") {
		t.Errorf("a secret reached the log:\n%s", all)
	}
	for _, want := range []string{"connecting with password " + sdk.Mask, "progress 1", "progress 2", "from the env"} {
		if !strings.Contains(all, want) {
			t.Errorf("log lacks %q:\n%s", want, all)
		}
	}
}

func TestRunFailureKeepsTail(t *testing.T) {
	err := sdk.Run(context.Background(), sdk.Process{Argv: []string{"sh", "-c", "for i in 1 2 3 4 5; do echo line $i; done; exit 7"}, TailLines: 2}, nil)
	var ee *sdk.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("error %T %v, want *sdk.ExitError", err, err)
	}
	if ee.Code != 7 || strings.Join(ee.Tail, "|") != "line 4|line 5" {
		t.Errorf("exit error %+v", ee)
	}
	if !errors.Is(err, sdk.ErrMethodFailed) || !strings.Contains(err.Error(), "line 5") {
		t.Errorf("error %v is not a method failure naming the last line", err)
	}
}

func TestRunCancelKillsWholeGroup(t *testing.T) {
	dir := t.TempDir()
	pidfile := filepath.Join(dir, "pids")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		// The script ignores SIGTERM and has a background child: both must go.
		done <- sdk.Run(ctx, sdk.Process{
			Argv:      []string{"sh", "-c", `trap '' TERM; sleep 600 & echo $$ $! > ` + pidfile + `; wait`},
			KillGrace: 200 * time.Millisecond,
		}, nil)
	}()
	var pgid int
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(pidfile); err == nil && len(strings.Fields(string(b))) == 2 {
			pgid, _ = strconv.Atoi(strings.Fields(string(b))[0])
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if pgid == 0 {
		t.Fatal("the script never started")
	}
	cancel()
	err := <-done
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	var ee *sdk.ExitError
	if !errors.As(err, &ee) || !ee.Canceled {
		t.Errorf("error %v does not say the process was stopped", err)
	}
	if live := liveInGroup(pgid); len(live) > 0 {
		t.Errorf("process group %d still has live members: %v", pgid, live)
	}
}

// liveInGroup lists the processes of group pgid that are alive. Zombies do not count: on some
// machines nobody reaps orphans, but a zombie runs nothing.
func liveInGroup(pgid int) []string {
	var out []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 3 || f[0] == "Z" || f[0] == "X" {
			continue
		}
		if g, _ := strconv.Atoi(f[2]); g == pgid {
			out = append(out, e.Name())
		}
	}
	return out
}

func TestRunLeavesNoBackgroundChildren(t *testing.T) {
	dir := t.TempDir()
	pidfile := filepath.Join(dir, "pid")
	err := sdk.Run(context.Background(), sdk.Process{Argv: []string{"sh", "-c", `sleep 600 & echo $! > ` + pidfile}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(pidfile)
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if pid == 0 {
		t.Fatal("no pid recorded")
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) || isZombie(pid) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Errorf("the background child %d outlived its method", pid)
}

func isZombie(pid int) bool {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && strings.HasPrefix(strings.TrimSpace(s[i+1:]), "Z")
}

func TestRunLogsErrorLinesAtTheirLevel(t *testing.T) {
	rec := &plugintest.Recorder{}
	_ = sdk.Run(context.Background(), sdk.Process{
		Argv: []string{"sh", "-c", `echo "ERROR: on stdout stays info"
echo "copying base" >&2
echo "ERROR:  relation does not exist" >&2
echo "FATAL:  password authentication failed" >&2
echo "pgbackrest: WARNING: archive is old" >&2
echo "P00   WARN: no prior backup" >&2
echo "error: bad thing" >&2
echo "an error: in the middle is not a level" >&2`},
	}, rec)
	want := map[string]sdk.Level{
		"ERROR: on stdout stays info":            sdk.LevelInfo,
		"copying base":                           sdk.LevelInfo,
		"ERROR:  relation does not exist":        sdk.LevelError,
		"FATAL:  password authentication failed": sdk.LevelError,
		"pgbackrest: WARNING: archive is old":    sdk.LevelWarn,
		"P00   WARN: no prior backup":            sdk.LevelWarn,
		"error: bad thing":                       sdk.LevelError,
		"an error: in the middle is not a level": sdk.LevelInfo,
	}
	seen := map[string]bool{}
	for _, l := range rec.Logs() {
		if w, ok := want[l.Message]; ok {
			seen[l.Message] = true
			if l.Level != w {
				t.Errorf("%q logged at %s, want %s", l.Message, l.Level, w)
			}
		}
	}
	for m := range want {
		if !seen[m] {
			t.Errorf("%q not logged", m)
		}
	}
}

// A real pg_basebackup that cannot reach its server says "pg_basebackup: error: ..." on
// stderr: that line is an error, not information.
func TestRunLogsPgBasebackupErrorAtError(t *testing.T) {
	bin := pgBasebackup(t)
	rec := &plugintest.Recorder{}
	err := sdk.Run(context.Background(), sdk.Process{
		Argv: []string{bin, "-h", t.TempDir(), "-p", "1", "-D", filepath.Join(t.TempDir(), "data"), "-w"},
	}, rec)
	if err == nil {
		t.Fatal("pg_basebackup without a server succeeded")
	}
	var found bool
	for _, l := range rec.Logs() {
		if strings.HasPrefix(l.Message, "pg_basebackup: error:") {
			found = true
			if l.Level != sdk.LevelError {
				t.Errorf("%q logged at %s, want error", l.Message, l.Level)
			}
		}
	}
	if !found {
		t.Fatalf("no pg_basebackup error line in %+v", rec.Logs())
	}
}

func pgBasebackup(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("pg_basebackup"); err == nil {
		return p
	}
	if m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_basebackup"); len(m) > 0 {
		return m[len(m)-1]
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("pg_basebackup is not installed")
	}
	t.Skip("pg_basebackup is not installed")
	return ""
}
