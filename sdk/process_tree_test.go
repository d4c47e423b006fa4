package sdk_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/pgimaged/pgimaged/sdk"
	"github.com/pgimaged/pgimaged/sdk/plugintest"
)

// running reports whether pid runs (a zombie does not).
func running(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(f) > 0 && f[0] != "Z" && f[0] != "X"
}

// A child that succeeds after leaving a process in a session of its own (a double fork that
// ignores SIGTERM): Run returns with that process gone. The test process plays the plugin, which
// Serve makes a child subreaper.
func TestRunEndsWhatTheChildLeft(t *testing.T) {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Fatal(err)
	}
	pidfile := filepath.Join(t.TempDir(), "pid")
	script := `(setsid sh -c 'trap "" TERM; echo $$ >"$PIDFILE"; while :; do sleep 1; done' >/dev/null 2>&1 &)
while [ ! -s "$PIDFILE" ]; do sleep 0.05; done`
	err := sdk.Run(context.Background(), sdk.Process{Argv: []string{"sh", "-c", script}, Env: map[string]string{"PIDFILE": pidfile}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(pidfile)
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if pid == 0 {
		t.Fatal("the left process did not write its pid")
	}
	t.Cleanup(func() { _ = unix.Kill(pid, unix.SIGKILL) })
	if running(pid) {
		t.Errorf("pid %d, left by the child in a session of its own, still runs after Run returned", pid)
	}
}

type noisyPlugin struct{}

func (noisyPlugin) Describe(context.Context, sdk.DescribeRequest) (sdk.DescribeResponse, error) {
	return sdk.DescribeResponse{Name: "noisy"}, nil
}

func (noisyPlugin) Clone(ctx context.Context, _ sdk.CloneRequest, rep sdk.Reporter) (sdk.Result, error) {
	rep.Log(sdk.LevelInfo, "latin-1 \xe9t\xe9", "file", "caf\xe9")
	rep.Progress(sdk.Progress{Phase: "\xff", Done: 1, Total: 1})
	if err := sdk.Run(ctx, sdk.Process{Argv: []string{"printf", `copied \351t\351\n`}}, rep); err != nil {
		return sdk.Result{}, err
	}
	return sdk.Result{Summary: "done \xff", RecoverySettings: map[string]string{"restore_command": "cp \xff %p"}}, nil
}

// A method's output is data: bytes that are not UTF-8 in logs, progress, a child's lines or the
// result do not fail a good copy; they arrive escaped.
func TestOutputThatIsNotUTF8Travels(t *testing.T) {
	c := plugintest.Connect(t, noisyPlugin{})
	rec := &plugintest.Recorder{}
	res, err := c.Clone(context.Background(), sdk.CloneRequest{Method: "noisy"}, rec)
	if err != nil {
		t.Fatalf("Clone: %v", err)
	}
	var all bytes.Buffer
	for _, l := range rec.Logs() {
		fmt.Fprintln(&all, l.Message, l.Fields)
	}
	for _, want := range []string{`latin-1 \xe9t\xe9`, `caf\xe9`, `copied \xe9t\xe9`} {
		if !strings.Contains(all.String(), want) {
			t.Errorf("logs lack %q:\n%s", want, all.String())
		}
	}
	if res.Summary != `done \xff` || res.RecoverySettings["restore_command"] != `cp \xff %p` {
		t.Errorf("result %+v", res)
	}
}
