// Package plugintest is the conformance kit for pgimaged method plugins. A vendor calls it from
// `go test` to run their plugin through real gRPC, in one process, and to check that it keeps the
// contract of package sdk.
//
//	func TestConformance(t *testing.T) {
//		plugintest.Conformance(t, myplugin.New(), plugintest.Suite{
//			Clone: func(t *testing.T) sdk.CloneRequest { ... a request that must succeed ... },
//			CheckDataDir: func(t *testing.T, dir string) { ... what a good clone leaves ... },
//		})
//	}
package plugintest

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/pgimaged/pgimaged/sdk"
	"github.com/pgimaged/pgimaged/sdk/pluginpb"
)

// DebugEnv is the variable that, set to any value, lets the plugin's own log lines (those it writes with hclog, not
// those it reports) through to the test's output; by default only warnings and errors are shown,
// so that `go test -v` stays readable.
const DebugEnv = "PLUGINTEST_DEBUG"

// Client is pgimaged's view of a plugin connected with [Connect] or [NewClient]: every call goes
// through gRPC, and a call the plugin does not implement fails with sdk.ErrNotSupported.
type Client interface {
	sdk.Plugin
	sdk.Validator
	sdk.Bootstrapper
	sdk.Cloner
	sdk.BootstrapPlanner
	sdk.ClonePlanner
	// Info is Describe plus the capabilities the plugin serves.
	Info(ctx context.Context) (sdk.Info, error)
}

// Connect serves p over real gRPC, on a Unix socket inside the test process, and returns
// pgimaged's client for it. Everything is closed when the test ends.
func Connect(t testing.TB, p sdk.Plugin) Client {
	t.Helper()
	dir, err := os.MkdirTemp("", "plugintest-")
	if err != nil {
		t.Fatalf("plugintest: making the socket's directory: %v", err)
	}
	sock := filepath.Join(dir, "plugin.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatalf("plugintest: listening on %s: %v", sock, err)
	}
	server := grpc.NewServer()
	pluginpb.RegisterMethodServer(server, sdk.NewServer(p))
	go func() { _ = server.Serve(ln) }()
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		server.Stop()
		t.Fatalf("plugintest: connecting to the plugin: %v", err)
	}
	t.Cleanup(func() {
		_ = conn.Close()
		server.Stop()
		_ = os.RemoveAll(dir)
	})
	return NewClient(conn)
}

// LogLine is one log event a plugin reported.
type LogLine struct {
	Level   sdk.Level
	Message string
	Fields  map[string]string
}

// Recorder is an [sdk.Reporter] that keeps every event, for assertions.
type Recorder struct {
	mu       sync.Mutex
	logs     []LogLine
	progress []sdk.Progress
}

var _ sdk.Reporter = (*Recorder)(nil)

// Log records a log line.
func (r *Recorder) Log(level sdk.Level, msg string, kv ...any) {
	f := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		k, _ := kv[i].(string)
		v, _ := kv[i+1].(string)
		f[k] = v
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.logs = append(r.logs, LogLine{Level: level, Message: msg, Fields: f})
}

// Progress records a progress event.
func (r *Recorder) Progress(p sdk.Progress) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.progress = append(r.progress, p)
}

// Logs returns the log lines recorded so far.
func (r *Recorder) Logs() []LogLine {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]LogLine(nil), r.logs...)
}

// ProgressEvents returns the progress events recorded so far.
func (r *Recorder) ProgressEvents() []sdk.Progress {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]sdk.Progress(nil), r.progress...)
}

// Suite says how to exercise a plugin. Every field is optional; what is set is checked.
type Suite struct {
	// Clone returns a request that must succeed. Its data directory must exist and be empty.
	Clone func(t *testing.T) sdk.CloneRequest
	// Bootstrap returns a request that must succeed. Its data directory must exist and be empty.
	Bootstrap func(t *testing.T) sdk.BootstrapRequest
	// CheckDataDir checks what a successful call left in the data directory.
	CheckDataDir func(t *testing.T, dataDir string)
	// InvalidOptions are option sets Validate must reject with at least one error.
	InvalidOptions []InvalidCase
	// ValidOptions are option sets Validate must accept without errors.
	ValidOptions []ValidCase
}

// InvalidCase is a configuration the plugin must refuse.
type InvalidCase struct {
	Name    string
	Request sdk.ValidateRequest
	// Option, if set, must be named by one of the error diagnostics.
	Option string
}

// ValidCase is a configuration the plugin must accept.
type ValidCase struct {
	Name    string
	Request sdk.ValidateRequest
}

// Conformance checks that p keeps the sdk contract through real gRPC. Each check is a subtest;
// a failure is reported at the line that called Conformance. What it checks:
//
//   - describe: a name, a version, at least one capability, and a sane schema (see [CheckSchema]).
//   - validate-accepts/NAME: each ValidOptions case passes the schema and Validate without errors.
//   - validate-refuses/NAME: each InvalidOptions case gets an error, from the schema (as pgimaged
//     checks it) or from Validate, about the case's Option when it names one.
//   - clone-cancelled, bootstrap-cancelled: called with a context already cancelled, the plugin
//     returns an error wrapping context.Canceled; with the Suite's request and a context cancelled
//     at the call's first event, it does not succeed (for each capability the plugin has).
//   - clone-without-source: a plugin that does not work without a source returns sdk.ErrNoSource
//     for an empty connection string.
//   - clone-unsupported, bootstrap-unsupported: a call the plugin does not implement returns
//     sdk.ErrNotSupported.
//   - clone, bootstrap: the Suite's request succeeds, its events are sane (see [AssertClone]),
//     and CheckDataDir accepts what it left.
func Conformance(t *testing.T, p sdk.Plugin, s Suite) {
	t.Helper()
	c := Connect(t, p)
	ctx := context.Background()
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatalf("Describe: %v", err)
	}
	t.Run("describe", func(t *testing.T) {
		t.Helper()
		if info.Name == "" || info.Version == "" {
			t.Errorf("Describe must give a name and a version, got %+v", info.DescribeResponse)
		}
		if len(info.Capabilities) == 0 {
			t.Errorf("a plugin must implement sdk.Cloner or sdk.Bootstrapper")
		}
		for _, err := range CheckSchema(info.Schema) {
			t.Errorf("schema: %v", err)
		}
	})
	validate := func(t *testing.T, req sdk.ValidateRequest) []sdk.Diagnostic {
		t.Helper()
		_, diags := info.Schema.Decode(req.Options)
		resp, err := c.Validate(ctx, req)
		if err != nil {
			t.Fatalf("Validate: %v", err)
		}
		return append(diags, resp.Diagnostics...)
	}
	for _, tc := range s.ValidOptions {
		t.Run("validate-accepts/"+tc.Name, func(t *testing.T) {
			t.Helper()
			if err := sdk.CheckDiagnostics(validate(t, tc.Request)); err != nil {
				t.Errorf("a valid configuration was refused: %v", err)
			}
		})
	}
	for _, tc := range s.InvalidOptions {
		t.Run("validate-refuses/"+tc.Name, func(t *testing.T) {
			t.Helper()
			var errs []sdk.Diagnostic
			for _, d := range validate(t, tc.Request) {
				if d.Severity == sdk.SeverityError {
					errs = append(errs, d)
				}
			}
			if len(errs) == 0 {
				t.Fatalf("options that must be refused were accepted: %+v", tc.Request.Options)
			}
			if tc.Option == "" {
				return
			}
			for _, d := range errs {
				if d.Option == tc.Option {
					return
				}
			}
			t.Errorf("no error diagnostic names option %q: %+v", tc.Option, errs)
		})
	}
	if info.Can(sdk.CapClone) {
		t.Run("clone-cancelled", func(t *testing.T) {
			t.Helper()
			req := sdk.CloneRequest{Method: "conformance", Cluster: sdk.Cluster{Scope: "conformance", DataDir: t.TempDir()}}
			if s.Clone != nil {
				req = s.Clone(t)
			}
			req.Values, _ = info.Schema.Decode(req.Options)
			cloner := p.(sdk.Cloner)
			checkCancelled(t, "Clone", func(ctx context.Context, rep sdk.Reporter) error {
				_, err := cloner.Clone(ctx, req, rep)
				return err
			}, s.Clone != nil)
		})
		if !info.WorksWithoutSource {
			t.Run("clone-without-source", func(t *testing.T) {
				t.Helper()
				dir := t.TempDir()
				_, err := c.Clone(ctx, sdk.CloneRequest{Method: "conformance", Cluster: sdk.Cluster{Scope: "conformance", DataDir: dir}}, nil)
				if !errors.Is(err, sdk.ErrNoSource) {
					t.Errorf("Clone without a source returned %v, want sdk.ErrNoSource (the plugin says it needs a source)", err)
				}
			})
		}
	} else {
		t.Run("clone-unsupported", func(t *testing.T) {
			t.Helper()
			_, err := c.Clone(ctx, sdk.CloneRequest{Cluster: sdk.Cluster{DataDir: t.TempDir()}}, nil)
			if !errors.Is(err, sdk.ErrNotSupported) {
				t.Errorf("Clone on a plugin without sdk.Cloner returned %v, want sdk.ErrNotSupported", err)
			}
		})
	}
	if info.Can(sdk.CapBootstrap) {
		t.Run("bootstrap-cancelled", func(t *testing.T) {
			t.Helper()
			req := sdk.BootstrapRequest{Method: "conformance", Cluster: sdk.Cluster{Scope: "conformance", DataDir: t.TempDir()}}
			if s.Bootstrap != nil {
				req = s.Bootstrap(t)
			}
			req.Values, _ = info.Schema.Decode(req.Options)
			bootstrapper := p.(sdk.Bootstrapper)
			checkCancelled(t, "Bootstrap", func(ctx context.Context, rep sdk.Reporter) error {
				_, err := bootstrapper.Bootstrap(ctx, req, rep)
				return err
			}, s.Bootstrap != nil)
		})
	} else {
		t.Run("bootstrap-unsupported", func(t *testing.T) {
			t.Helper()
			_, err := c.Bootstrap(ctx, sdk.BootstrapRequest{Cluster: sdk.Cluster{DataDir: t.TempDir()}}, nil)
			if !errors.Is(err, sdk.ErrNotSupported) {
				t.Errorf("Bootstrap on a plugin without sdk.Bootstrapper returned %v, want sdk.ErrNotSupported", err)
			}
		})
	}
	if s.Clone != nil {
		t.Run("clone", func(t *testing.T) {
			t.Helper()
			req := s.Clone(t)
			AssertClone(t, c, req)
			if s.CheckDataDir != nil {
				s.CheckDataDir(t, req.Cluster.DataDir)
			}
		})
	}
	if s.Bootstrap != nil {
		t.Run("bootstrap", func(t *testing.T) {
			t.Helper()
			req := s.Bootstrap(t)
			AssertBootstrap(t, c, req)
			if s.CheckDataDir != nil {
				s.CheckDataDir(t, req.Cluster.DataDir)
			}
		})
	}
}

// checkCancelled checks that a call honours its context: called with a context already
// cancelled, it must fail with context.Canceled; and, when midway is set (the request is one that
// succeeds), called with a context cancelled at its first progress or log event, it must not
// succeed. The plugin is called directly, as Serve calls it: through gRPC a cancelled call never
// reaches it.
func checkCancelled(t *testing.T, call string, run func(context.Context, sdk.Reporter) error, midway bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := run(ctx, &Recorder{}); !errors.Is(err, context.Canceled) {
		t.Errorf("%s with a cancelled context returned %v, want an error wrapping context.Canceled", call, err)
	}
	if !midway {
		return
	}
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	rec := &cancelling{cancel: cancel}
	err := run(ctx, rec)
	if rec.fired() && err == nil {
		t.Errorf("%s went on to succeed after its context was cancelled at its first event", call)
	}
	if rec.fired() && err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("%s cancelled at its first event returned %v, want an error wrapping context.Canceled", call, err)
	}
}

// cancelling is a Recorder that cancels the call at its first event.
type cancelling struct {
	Recorder
	cancel context.CancelFunc
	once   sync.Once
	did    bool
}

func (c *cancelling) fire() {
	c.once.Do(func() {
		c.mu.Lock()
		c.did = true
		c.mu.Unlock()
		c.cancel()
	})
}

func (c *cancelling) fired() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.did
}

func (c *cancelling) Log(level sdk.Level, msg string, kv ...any) {
	c.Recorder.Log(level, msg, kv...)
	c.fire()
}

func (c *cancelling) Progress(p sdk.Progress) {
	c.Recorder.Progress(p)
	c.fire()
}

// CheckSchema lists what is wrong with a plugin's option schema (see sdk.Schema.Check).
func CheckSchema(s sdk.Schema) []error { return s.Check() }

// AssertClone runs a clone that must succeed and checks its events: progress is never negative
// nor beyond its total, its unit is known (percent counts to 100), and no log line holds a
// password from the request's PGPASSFILE. It returns the result and what was reported.
func AssertClone(t *testing.T, c Client, req sdk.CloneRequest) (sdk.Result, *Recorder) {
	t.Helper()
	rec := &Recorder{}
	res, err := c.Clone(context.Background(), req, rec)
	if err != nil {
		t.Fatalf("Clone: %v", err)
	}
	checkEvents(t, rec, req.Env)
	return res, rec
}

// AssertBootstrap runs a bootstrap that must succeed and checks its events as AssertClone does,
// and that no log line holds the superuser's password.
func AssertBootstrap(t *testing.T, c Client, req sdk.BootstrapRequest) (sdk.Result, *Recorder) {
	t.Helper()
	rec := &Recorder{}
	res, err := c.Bootstrap(context.Background(), req, rec)
	if err != nil {
		t.Fatalf("Bootstrap: %v", err)
	}
	checkEvents(t, rec, req.Env)
	if req.Superuser.Password != "" {
		AssertNoSecret(t, rec, req.Superuser.Password)
	}
	return res, rec
}

// AssertNoSecret fails if secret appears in any recorded log line.
func AssertNoSecret(t testing.TB, rec *Recorder, secret string) {
	t.Helper()
	for _, l := range rec.Logs() {
		if containsSecret(l.Message, secret) {
			t.Errorf("a log line reveals a secret: %q", l.Message)
		}
		for k, v := range l.Fields {
			if containsSecret(v, secret) {
				t.Errorf("log field %s reveals a secret", k)
			}
		}
	}
}

func containsSecret(s, secret string) bool {
	return secret != "" && strings.Contains(s, secret)
}

func checkEvents(t *testing.T, rec *Recorder, env map[string]string) {
	t.Helper()
	for _, p := range rec.ProgressEvents() {
		if p.Unit < sdk.UnitBytes || p.Unit > sdk.UnitPercent {
			t.Errorf("progress in an unknown unit: %+v", p)
		}
		if p.Unit == sdk.UnitPercent && (p.Total != 100 || p.Done > 100) {
			t.Errorf("progress in percent must count Done of Total 100: %+v", p)
		}
		if p.Done < 0 || p.Total < 0 {
			t.Errorf("progress with negative numbers: %+v", p)
		}
		if p.Total > 0 && p.Done > p.Total {
			t.Errorf("progress beyond its total: %+v", p)
		}
	}
	if pf := env["PGPASSFILE"]; pf != "" {
		if b, err := os.ReadFile(pf); err == nil {
			for _, line := range strings.Split(string(b), "\n") {
				if f := lastField(line); f != "" {
					AssertNoSecret(t, rec, f)
				}
			}
		}
	}
}

// lastField returns the password field of a pgpass line (escapes are rare enough to ignore here).
func lastField(line string) string {
	n := 0
	for i := 0; i < len(line); i++ {
		if line[i] == '\\' {
			i++
			continue
		}
		if line[i] == ':' {
			n++
			if n == 4 {
				return line[i+1:]
			}
		}
	}
	return ""
}
