package plugin_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/pgimaged/pgimaged/core/plugin"
	hostproc "github.com/pgimaged/pgimaged/core/plugin/host/proc"
	"github.com/pgimaged/pgimaged/internal/testenv"
	"github.com/pgimaged/pgimaged/sdk"
	"github.com/pgimaged/pgimaged/sdk/plugintest"
)

// builtPlugin is a plugin the tests build once, on first use, into a plugin directory of its own.
type builtPlugin struct {
	name, pkg string
	once      sync.Once
	dir       string
	err       error
}

var (
	testPlugin   = &builtPlugin{name: "testplugin", pkg: "./testdata/testplugin"}
	scriptPlugin = &builtPlugin{name: "script", pkg: "../../plugins/script"}
)

// pluginDir builds the plugin once and returns its plugin directory.
func (b *builtPlugin) pluginDir(t testing.TB) string {
	t.Helper()
	b.once.Do(func() {
		if b.dir, b.err = testenv.NewBinDir("pgimaged-plugins-"); b.err == nil {
			b.err = testenv.GoBuild(".", filepath.Join(b.dir, plugin.Prefix+b.name), b.pkg)
		}
	})
	if b.err != nil {
		t.Fatalf("building the %s plugin: %v", b.name, b.err)
	}
	return b.dir
}

// scriptPluginDir builds the script plugin (plugins/script) once into a plugin directory of its own.
func scriptPluginDir(t testing.TB) string { return scriptPlugin.pluginDir(t) }

// testPluginDir builds testdata/testplugin once into a private plugin directory.
func testPluginDir(t testing.TB) string { return testPlugin.pluginDir(t) }

func TestMain(m *testing.M) {
	if os.Getenv("PGIMAGED_TEST_HOST") != "" {
		hostMain()
	}
	code := m.Run()
	for _, b := range []*builtPlugin{testPlugin, scriptPlugin} {
		if b.dir != "" {
			_ = os.RemoveAll(b.dir)
		}
	}
	os.Exit(code)
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func launch(t *testing.T, cat *plugin.Catalog) *plugin.Instance {
	t.Helper()
	inst, err := cat.Launch(context.Background(), "testplugin")
	if err != nil {
		t.Fatalf("Launch: %v", err)
	}
	t.Cleanup(inst.Kill)
	return inst
}

func TestLaunchDescribesAndForwardsLogs(t *testing.T) {
	var logs syncBuf
	logger := hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Trace})
	cat := &plugin.Catalog{Dir: testPluginDir(t), Logger: logger}
	inst := launch(t, cat)
	if inst.Info.Name != "testplugin" || !inst.Info.Can(sdk.CapClone) || inst.Info.Can(sdk.CapBootstrap) {
		t.Fatalf("unexpected info %+v", inst.Info)
	}
	if spec, _, ok := inst.Info.Schema.Lookup("pidfile"); !ok || spec.Type != sdk.TypeString || spec.Description == "" {
		t.Errorf("the schema did not come through Describe: %+v", inst.Info.Schema)
	}
	rec := &plugintest.Recorder{}
	res, err := inst.Clone(context.Background(), sdk.CloneRequest{Method: "ok", Cluster: sdk.Cluster{DataDir: "/nonexistent"}}, rec, 0)
	if err != nil {
		t.Fatalf("Clone: %v", err)
	}
	if res.Summary != "done" {
		t.Errorf("result summary %q", res.Summary)
	}
	logsSeen := rec.Logs()
	if len(logsSeen) != 1 || logsSeen[0].Message != "hello from testplugin" || logsSeen[0].Level != sdk.LevelWarn || logsSeen[0].Fields["datadir"] != "/nonexistent" {
		t.Errorf("log events: %+v", logsSeen)
	}
	if p := rec.ProgressEvents(); len(p) != 2 || p[1].Done != 10 || p[1].Total != 10 || p[1].Unit != sdk.UnitFiles {
		t.Errorf("progress events: %+v", p)
	}
	// go-plugin forwards the plugin's own hclog lines (stderr) into the host log, named after it.
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), "plugin.testplugin") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(logs.String(), "plugin.testplugin") {
		t.Errorf("host log has no line tagged with the plugin:\n%s", logs.String())
	}
}

func TestStderrLinesReachHostLog(t *testing.T) {
	t.Setenv("TESTPLUGIN_STDERR", "1")
	var logs syncBuf
	cat := &plugin.Catalog{Dir: testPluginDir(t), Logger: hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Trace})}
	launch(t, cat)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), "plain stderr line from testplugin") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(logs.String(), "plugin.testplugin") || !strings.Contains(logs.String(), "plain stderr line from testplugin") {
		t.Errorf("the plugin's stderr line is not in the host log tagged with the plugin:\n%s", logs.String())
	}
}

func TestPanicMidStreamIsAMethodFailure(t *testing.T) {
	cat := &plugin.Catalog{Dir: testPluginDir(t)}
	inst := launch(t, cat)
	_, err := inst.Clone(context.Background(), sdk.CloneRequest{Method: "panic"}, &plugintest.Recorder{}, 0)
	if err == nil {
		t.Fatal("a panicking plugin reported success")
	}
	if !errors.Is(err, sdk.ErrPluginShutdown) {
		t.Fatalf("error %v is not ErrPluginShutdown", err)
	}
	var crash *plugin.CrashError
	if !errors.As(err, &crash) {
		t.Fatalf("error %T is not a *plugin.CrashError", err)
	}
	if !strings.Contains(err.Error(), "deliberate panic") {
		t.Errorf("crash error does not carry the plugin's last stderr lines: %v", err)
	}
	// The host is still fine: a fresh instance works.
	inst2 := launch(t, cat)
	if _, err := inst2.Clone(context.Background(), sdk.CloneRequest{Method: "ok"}, nil, 0); err != nil {
		t.Fatalf("a new instance after a crash: %v", err)
	}
}

// alive reports whether pid runs; a zombie (nobody reaped it yet) runs nothing.
func alive(pid int) bool {
	p, ok := hostproc.Read(pid)
	return ok && p.Running()
}

// liveInGroup lists the live (non-zombie) processes of group pgid.
func liveInGroup(pgid int) []hostproc.Process {
	var out []hostproc.Process
	for _, p := range hostproc.Scan() {
		if p.Running() && p.PGID == pgid {
			out = append(out, p)
		}
	}
	return out
}

func TestHangingPluginIsKilledAfterTimeout(t *testing.T) {
	old := plugin.KillGrace
	plugin.KillGrace = 500 * time.Millisecond
	t.Cleanup(func() { plugin.KillGrace = old })
	cat := &plugin.Catalog{Dir: testPluginDir(t)}
	inst := launch(t, cat)
	pidfile := filepath.Join(t.TempDir(), "pids")
	_, err := inst.Clone(context.Background(), sdk.CloneRequest{Method: "hang", Options: sdk.Options{{Name: "pidfile", Value: pidfile}}}, nil, 300*time.Millisecond)
	if !errors.Is(err, plugin.ErrTimeout) {
		t.Fatalf("error %v, want ErrTimeout", err)
	}
	b, rerr := os.ReadFile(pidfile)
	if rerr != nil {
		t.Fatalf("the plugin did not record its pids: %v", rerr)
	}
	fields := strings.Fields(string(b))
	pluginPid, _ := strconv.Atoi(fields[0])
	childPid, _ := strconv.Atoi(fields[1])
	deadline := time.Now().Add(10 * time.Second)
	for (alive(pluginPid) || alive(childPid)) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if live := liveInGroup(pluginPid); len(live) > 0 {
		t.Errorf("process group %d still has live members after the timeout: %v", pluginPid, live)
	}
}

func TestCancelledCallStopsChildGroup(t *testing.T) {
	marker := newMarker(t)
	t.Cleanup(func() { killMarked(marker) })
	cat := &plugin.Catalog{Dir: testPluginDir(t)}
	inst := launch(t, cat)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for len(markerProcs(marker)) == 0 {
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
	}()
	_, err := inst.Clone(ctx, sdk.CloneRequest{Method: "cancel", Options: sdk.Options{{Name: "marker", Value: marker}}}, nil, 0)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want the context's cancellation", err)
	}
	if left := markerProcs(marker); len(left) > 0 {
		t.Errorf("the method's child still runs after the cancelled call returned: %v", left)
	}
}

func TestChecksumPin(t *testing.T) {
	dir := testPluginDir(t)
	entries, err := (&plugin.Catalog{Dir: dir}).List()
	if err != nil || len(entries) != 1 {
		t.Fatalf("List: %v %+v", err, entries)
	}
	good := entries[0].SHA256
	cases := []struct {
		name    string
		sum     string
		wantErr error
	}{
		{"matching pin starts", good, nil},
		{"upper-case pin starts", strings.ToUpper(good), nil},
		{"mismatch refused before exec", strings.Repeat("0", 64), plugin.ErrChecksumMismatch},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cat := &plugin.Catalog{Dir: dir, Pins: map[string]plugin.Pin{"testplugin": {SHA256: tc.sum}}}
			inst, err := cat.Launch(context.Background(), "testplugin")
			if inst != nil {
				inst.Kill()
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Launch: %v, want %v", err, tc.wantErr)
			}
			if tc.wantErr != nil && !strings.Contains(err.Error(), good) {
				t.Errorf("mismatch error does not name the actual checksum: %v", err)
			}
		})
	}
}

func TestWrongProtocolVersionRefused(t *testing.T) {
	for _, other := range []int{sdk.ProtocolVersion - 1, sdk.ProtocolVersion + 1} {
		t.Setenv("TESTPLUGIN_PROTOCOL", strconv.Itoa(other))
		cat := &plugin.Catalog{Dir: testPluginDir(t), StartTimeout: 10 * time.Second}
		inst, err := cat.Launch(context.Background(), "testplugin")
		if inst != nil {
			inst.Kill()
		}
		if err == nil {
			t.Fatalf("a plugin speaking protocol %d was accepted", other)
		}
		msg := err.Error()
		if !strings.Contains(msg, strconv.Itoa(other)) || !strings.Contains(msg, strconv.Itoa(sdk.ProtocolVersion)) {
			t.Errorf("error does not name both versions: %v", err)
		}
	}
}

func TestUnsafePluginDirRefused(t *testing.T) {
	src := testPluginDir(t)
	dir := t.TempDir()
	b, err := os.ReadFile(filepath.Join(src, plugin.Prefix+"testplugin"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, plugin.Prefix+"testplugin"), b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	cat := &plugin.Catalog{Dir: dir}
	if _, err := cat.List(); !errors.Is(err, plugin.ErrUnsafeDir) {
		t.Errorf("List on a world-writable dir: %v", err)
	}
	if _, err := cat.Launch(context.Background(), "testplugin"); !errors.Is(err, plugin.ErrUnsafeDir) {
		t.Errorf("Launch from a world-writable dir: %v", err)
	}
}

func TestNotFound(t *testing.T) {
	cat := &plugin.Catalog{Dir: testPluginDir(t)}
	if cat.Has("nosuch") {
		t.Fatal("Has reports a missing plugin")
	}
	if _, err := cat.Launch(context.Background(), "nosuch"); !errors.Is(err, plugin.ErrNotFound) {
		t.Errorf("Launch of a missing plugin: %v", err)
	}
}

func TestPluginKeyNotInheritedByChildren(t *testing.T) {
	inst := launch(t, &plugin.Catalog{Dir: testPluginDir(t)})
	rec := &plugintest.Recorder{}
	if _, err := inst.Clone(context.Background(), sdk.CloneRequest{Method: "childenv"}, rec, 0); err != nil {
		t.Fatal(err)
	}
	var saw bool
	for _, l := range rec.Logs() {
		if strings.HasPrefix(l.Message, "key=") {
			saw = true
			if l.Message != "key=unset" {
				t.Errorf("a child of the plugin sees the plugin's TLS key: %.40q", l.Message)
			}
		}
	}
	if !saw {
		t.Fatalf("the child's output is missing: %+v", rec.Logs())
	}
}

// A plugin that answers with go-plugin's own automatic mTLS (as one written in another language
// would) is accepted too: its certificate from the handshake replaces the one pgimaged handed out.
func TestPluginWithGoPluginAutoMTLS(t *testing.T) {
	t.Setenv("TESTPLUGIN_PROTOCOL", strconv.Itoa(sdk.ProtocolVersion))
	inst := launch(t, &plugin.Catalog{Dir: testPluginDir(t)})
	if _, err := inst.Clone(context.Background(), sdk.CloneRequest{Method: "ok"}, nil, 0); err != nil {
		t.Fatal(err)
	}
}
