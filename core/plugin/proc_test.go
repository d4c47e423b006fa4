package plugin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/pgimaged/pgimaged/core/plugin"
	"github.com/pgimaged/pgimaged/sdk"
	"github.com/pgimaged/pgimaged/sdk/plugintest"
)

// markerProcs lists the running processes whose environment carries PGIMAGED_TEST_MARKER=marker.
func markerProcs(marker string) []string {
	want := []byte("PGIMAGED_TEST_MARKER=" + marker + "\x00")
	var out []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil || !bytes.Contains(env, want) || !alive(pid) {
			continue
		}
		comm, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		out = append(out, e.Name()+" "+strings.ReplaceAll(strings.TrimRight(string(comm), "\x00"), "\x00", " "))
	}
	return out
}

// newMarker is a marker no other test or run uses.
func newMarker(t *testing.T) string {
	return fmt.Sprintf("%s-%d-%d", t.Name(), os.Getpid(), time.Now().UnixNano())
}

// killMarked kills what a failed test left, so that a failure does not leave processes behind.
func killMarked(marker string) {
	for _, l := range markerProcs(marker) {
		pid, _ := strconv.Atoi(strings.Fields(l)[0])
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// readPids returns the pids the tree script wrote so far.
func readPids(path string) []int {
	b, _ := os.ReadFile(path)
	var out []int
	for _, f := range strings.Fields(string(b)) {
		if n, err := strconv.Atoi(f); err == nil {
			out = append(out, n)
		}
	}
	return out
}

// waitFor polls cond until it holds; it fails the test when it never does.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func treeScript(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("testdata", "tree.sh"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// treeCall launches the test plugin and makes a request for method that runs treeScript under a
// fresh marker (its processes are killed when the test ends) and records their pids in pids.
func treeCall(t *testing.T, method string) (inst *plugin.Instance, req sdk.CloneRequest, marker, pids string) {
	t.Helper()
	marker = newMarker(t)
	t.Cleanup(func() { killMarked(marker) })
	pids = filepath.Join(t.TempDir(), "pids")
	req = sdk.CloneRequest{Method: method, Options: sdk.Options{
		{Name: "script", Value: treeScript(t)}, {Name: "marker", Value: marker}, {Name: "pidfile", Value: pids},
	}}
	return launch(t, &plugin.Catalog{Dir: testPluginDir(t)}), req, marker, pids
}

// A method whose processes ignore SIGTERM, one of them in a session of its own: when the call
// is cancelled or times out, the host returns only once none of them runs.
func TestEndedCallLeavesNoProcess(t *testing.T) {
	old := plugin.KillGrace
	plugin.KillGrace = 500 * time.Millisecond
	t.Cleanup(func() { plugin.KillGrace = old })
	cases := []struct {
		name, method string
		timeout      bool // the method's timeout ends the call; else the caller's context
		pluginGone   bool // the plugin itself must be gone too
	}{
		{"sdk.Run child tree, cancelled", "tree", false, true},
		{"sdk.Run child tree, timed out", "tree", true, true},
		{"plugin ignores cancellation, tree started without sdk.Run", "treehang", false, true},
		{"plugin ignores the timeout, tree started without sdk.Run", "treehang", true, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			inst, req, marker, pids := treeCall(t, tc.method)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			timeout := time.Duration(0)
			if tc.timeout {
				timeout = 3 * time.Second
			} else {
				go func() {
					for len(readPids(pids)) < 3 {
						time.Sleep(20 * time.Millisecond)
					}
					cancel()
				}()
			}
			_, err := inst.Clone(ctx, req, nil, timeout)
			if err == nil {
				t.Fatal("the call succeeded")
			}
			if tc.timeout && !errors.Is(err, plugin.ErrTimeout) {
				t.Errorf("error %v, want ErrTimeout", err)
			}
			if n := len(readPids(pids)); n != 3 {
				t.Fatalf("the tree had not started (%d of 3 pids) when the call ended: %v", n, err)
			}
			if left := markerProcs(marker); len(left) > 0 {
				t.Errorf("processes of the method still run after the call returned: %v", left)
			}
			if tc.pluginGone && !inst.Exited() {
				t.Errorf("the plugin still runs after a cancelled call")
			}
		})
	}
}

// A method that succeeds and leaves processes behind (one in its own session): the call
// returns with them gone, and the plugin can serve another call.
func TestSucceededCallLeavesNoProcess(t *testing.T) {
	inst, req, marker, pids := treeCall(t, "treeleave")
	if _, err := inst.Clone(context.Background(), req, nil, 0); err != nil {
		t.Fatalf("Clone: %v", err)
	}
	if n := len(readPids(pids)); n != 3 {
		t.Fatalf("the tree wrote %d of 3 pids", n)
	}
	if left := markerProcs(marker); len(left) > 0 {
		t.Errorf("processes the method left still run after the call returned: %v", left)
	}
	if _, err := inst.Clone(context.Background(), sdk.CloneRequest{Method: "ok"}, nil, 0); err != nil {
		t.Errorf("the plugin does not serve a second call: %v", err)
	}
}

// The script plugin, as users run it: a command whose tree ignores SIGTERM and a timeout.
func TestScriptPluginTimeoutLeavesNoProcess(t *testing.T) {
	old := plugin.KillGrace
	plugin.KillGrace = 500 * time.Millisecond
	t.Cleanup(func() { plugin.KillGrace = old })
	marker := newMarker(t)
	t.Cleanup(func() { killMarked(marker) })
	pids := filepath.Join(t.TempDir(), "pids")
	inst, err := (&plugin.Catalog{Dir: scriptPluginDir(t)}).Launch(context.Background(), "script")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(inst.Kill)
	req := sdk.CloneRequest{
		Method: "restore", Command: "sh " + treeScript(t), NoParams: true,
		Cluster: sdk.Cluster{Scope: "batman", DataDir: t.TempDir()},
		Env:     map[string]string{"PGIMAGED_TEST_MARKER": marker, "TREE_PIDS": pids},
	}
	_, err = inst.Clone(context.Background(), req, nil, 3*time.Second)
	if !errors.Is(err, plugin.ErrTimeout) {
		t.Fatalf("error %v, want ErrTimeout", err)
	}
	if n := len(readPids(pids)); n != 3 {
		t.Fatalf("the tree had not started (%d of 3 pids) when the call ended", n)
	}
	if left := markerProcs(marker); len(left) > 0 {
		t.Errorf("processes of the script still run after the call returned: %v", left)
	}
}

// hostMain is the test binary run as a pgimaged that runs a method and is then killed with
// SIGKILL by the test.
func hostMain() {
	cat := &plugin.Catalog{Dir: os.Getenv("HOST_PLUGIN_DIR"), ProcessRecord: os.Getenv("HOST_RECORD")}
	inst, err := cat.Launch(context.Background(), "testplugin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	_, err = inst.Clone(context.Background(), sdk.CloneRequest{Method: "treehang", Options: sdk.Options{
		{Name: "script", Value: os.Getenv("HOST_SCRIPT")}, {Name: "marker", Value: os.Getenv("HOST_MARKER")},
		{Name: "pidfile", Value: os.Getenv("HOST_PIDS")},
	}}, nil, 0)
	fmt.Fprintln(os.Stderr, "the call returned:", err)
	os.Exit(1)
}

// recordedPids reads the pids listed in a process record.
func recordedPids(path string) map[int]bool {
	var r struct {
		Processes []struct {
			PID int `json:"pid"`
		} `json:"processes"`
	}
	b, _ := os.ReadFile(path)
	_ = json.Unmarshal(b, &r)
	out := map[int]bool{}
	for _, p := range r.Processes {
		out[p.PID] = true
	}
	return out
}

// A pgimaged killed with SIGKILL in the middle of a method leaves its process record; the next
// one ends what is listed there, and only that.
func TestEndRecordedAfterHostKilled(t *testing.T) {
	marker := newMarker(t)
	t.Cleanup(func() { killMarked(marker) })
	dir := t.TempDir()
	record := filepath.Join(dir, ".data.pgimaged-procs")
	pids := filepath.Join(dir, "pids")
	host := exec.Command(os.Args[0], "-test.run=^$")
	host.Env = append(os.Environ(), "PGIMAGED_TEST_HOST=1", "HOST_PLUGIN_DIR="+testPluginDir(t), "HOST_RECORD="+record,
		"HOST_SCRIPT="+treeScript(t), "HOST_MARKER="+marker, "HOST_PIDS="+pids)
	var hostErr bytes.Buffer
	host.Stderr = &hostErr
	if err := host.Start(); err != nil {
		t.Fatal(err)
	}
	hostDone := make(chan struct{})
	go func() { _ = host.Wait(); close(hostDone) }()
	t.Cleanup(func() { _ = host.Process.Kill(); <-hostDone })
	waitFor(t, "the method's tree to start and be recorded", func() bool {
		select {
		case <-hostDone:
			t.Fatalf("the host ended early: %s", hostErr.String())
		default:
		}
		ps := readPids(pids)
		rec := recordedPids(record)
		if len(ps) < 3 {
			return false
		}
		for _, p := range ps {
			if !rec[p] {
				return false
			}
		}
		return true
	})
	_ = host.Process.Signal(syscall.SIGKILL)
	<-hostDone
	if left := markerProcs(marker); len(left) < 3 {
		t.Fatalf("the tree did not outlive its host (nothing to test): %v", left)
	}

	// An unrelated process whose pid is in the record with another start time: a pid reused
	// since the record was written.
	other := exec.Command("sleep", "600")
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = other.Process.Kill(); _ = other.Wait() })
	var r map[string]any
	b, err := os.ReadFile(record)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	r["processes"] = append(r["processes"].([]any), map[string]any{"pid": other.Process.Pid, "start": 1, "comm": "sleep"})
	b, _ = json.Marshal(r)
	if err := os.WriteFile(record, b, 0o600); err != nil {
		t.Fatal(err)
	}

	var logs syncBuf
	killed, err := plugin.EndRecorded(record, hclog.New(&hclog.LoggerOptions{Output: &logs}))
	if err != nil {
		t.Fatalf("EndRecorded: %v", err)
	}
	if killed < 3 {
		t.Errorf("EndRecorded killed %d processes, want at least the 3 of the tree", killed)
	}
	if left := markerProcs(marker); len(left) > 0 {
		t.Errorf("recorded processes still run after EndRecorded: %v", left)
	}
	if !alive(other.Process.Pid) {
		t.Errorf("EndRecorded killed pid %d, whose start time differs from the record's", other.Process.Pid)
	}
	if _, err := os.Stat(record); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the record is still there: %v", err)
	}
	if !strings.Contains(logs.String(), "killed processes") {
		t.Errorf("EndRecorded did not log what it killed: %s", logs.String())
	}
	if n, err := plugin.EndRecorded(record, nil); n != 0 || err != nil {
		t.Errorf("EndRecorded without a record: %d, %v", n, err)
	}
}

// The socket directory of a pgimaged that no longer runs is removed by the next launch.
func TestStaleSocketDirRemoved(t *testing.T) {
	parent := filepath.Join(os.TempDir(), "pgimaged-sockets-"+strconv.Itoa(os.Getuid()))
	if err := os.MkdirAll(parent, 0o700); err != nil {
		t.Fatal(err)
	}
	// a pid that ran and ended: our own child's, once reaped
	c := exec.Command("true")
	if err := c.Run(); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(parent, fmt.Sprintf("%d.1-123", c.Process.Pid))
	if err := os.MkdirAll(stale, 0o700); err != nil {
		t.Fatal(err)
	}
	launch(t, &plugin.Catalog{Dir: testPluginDir(t)})
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the stale socket directory %s is still there: %v", stale, err)
	}
}

// Bytes that are not UTF-8 in a method's output and messages are data, not a failure.
func TestOutputThatIsNotUTF8(t *testing.T) {
	inst := launch(t, &plugin.Catalog{Dir: testPluginDir(t)})
	rec := &plugintest.Recorder{}
	res, err := inst.Clone(context.Background(), sdk.CloneRequest{Method: "badutf8"}, rec, 0)
	if err != nil {
		t.Fatalf("Clone: %v", err)
	}
	if !strings.Contains(res.Summary, "copied") {
		t.Errorf("summary %q", res.Summary)
	}
	var sawChild bool
	for _, l := range rec.Logs() {
		if strings.HasPrefix(l.Message, "a") && strings.HasSuffix(l.Message, "b") {
			sawChild = true
		}
	}
	if !sawChild {
		t.Errorf("the child's line is missing: %+v", rec.Logs())
	}
	_, err = inst.Clone(context.Background(), sdk.CloneRequest{Method: "badutf8fail"}, rec, 0)
	if err == nil || !strings.Contains(err.Error(), "failed with") {
		t.Errorf("the plugin's error is lost: %v", err)
	}
}

// Ending an instance in the middle of a call (pgimaged shutting down) ends the plugin and every
// process it started before End returns.
func TestEndDuringCall(t *testing.T) {
	inst, req, marker, pids := treeCall(t, "treehang")
	done := make(chan error, 1)
	go func() {
		_, err := inst.Clone(context.Background(), req, nil, 0)
		done <- err
	}()
	waitFor(t, "the tree to start", func() bool { return len(readPids(pids)) >= 3 })
	if err := inst.End(); err != nil {
		t.Fatalf("End: %v", err)
	}
	if left := markerProcs(marker); len(left) > 0 {
		t.Errorf("processes of the method still run after End returned: %v", left)
	}
	if !inst.Exited() {
		t.Error("the plugin still runs after End returned")
	}
	if err := <-done; err == nil {
		t.Error("the call interrupted by End succeeded")
	}
}
