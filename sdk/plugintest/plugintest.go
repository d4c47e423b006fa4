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
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/pgimaged/pgimaged/sdk"
	"github.com/pgimaged/pgimaged/sdk/host"
)

// Connect serves p over real gRPC inside the test process and returns the host's client for it.
// The connection is closed when the test ends.
func Connect(t testing.TB, p sdk.Plugin) *host.Client {
	t.Helper()
	client, server := plugin.TestPluginGRPCConn(t, false, map[string]plugin.Plugin{
		host.PluginName: &host.GRPCPlugin{Impl: p, Logger: hclog.NewNullLogger()},
	})
	t.Cleanup(func() {
		// Stop the server first: closing the client would also ask it to stop, and two stops
		// at once race inside go-plugin.
		server.Stop()
		_ = client.Close()
	})
	raw, err := client.Dispense(host.PluginName)
	if err != nil {
		t.Fatalf("dispensing the plugin: %v", err)
	}
	c, ok := raw.(*host.Client)
	if !ok {
		t.Fatalf("dispensed %T, want *host.Client", raw)
	}
	return c
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

// Conformance checks that p keeps the sdk contract through real gRPC.
func Conformance(t *testing.T, p sdk.Plugin, s Suite) {
	t.Helper()
	c := Connect(t, p)
	ctx := context.Background()
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatalf("Describe: %v", err)
	}
	t.Run("describe", func(t *testing.T) {
		if info.Name == "" || info.Version == "" {
			t.Errorf("Describe must give a name and a version, got %+v", info.DescribeResponse)
		}
		if len(info.Capabilities) == 0 {
			t.Errorf("a plugin must implement sdk.Cloner or sdk.Bootstrapper")
		}
	})
	for _, tc := range s.ValidOptions {
		t.Run("validate-accepts/"+tc.Name, func(t *testing.T) {
			resp, err := c.Validate(ctx, tc.Request)
			if err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if err := sdk.CheckDiagnostics(resp.Diagnostics); err != nil {
				t.Errorf("Validate refused a valid configuration: %v", err)
			}
		})
	}
	for _, tc := range s.InvalidOptions {
		t.Run("validate-refuses/"+tc.Name, func(t *testing.T) {
			resp, err := c.Validate(ctx, tc.Request)
			if err != nil {
				t.Fatalf("Validate: %v", err)
			}
			var errs []sdk.Diagnostic
			for _, d := range resp.Diagnostics {
				if d.Severity == sdk.SeverityError {
					errs = append(errs, d)
				}
			}
			if len(errs) == 0 {
				t.Fatalf("Validate accepted options it must refuse: %+v", tc.Request.Options)
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
			cctx, cancel := context.WithCancel(ctx)
			cancel()
			dir := t.TempDir()
			_, err := c.Clone(cctx, sdk.CloneRequest{Method: "conformance", Cluster: sdk.Cluster{Scope: "conformance", DataDir: dir}}, nil)
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Clone with a cancelled context returned %v, want context.Canceled", err)
			}
		})
		if !info.WorksWithoutSource {
			t.Run("clone-without-source", func(t *testing.T) {
				dir := t.TempDir()
				_, err := c.Clone(ctx, sdk.CloneRequest{Method: "conformance", Cluster: sdk.Cluster{Scope: "conformance", DataDir: dir}}, nil)
				if !errors.Is(err, sdk.ErrNoSource) {
					t.Errorf("Clone without a source returned %v, want sdk.ErrNoSource (the plugin says it needs a source)", err)
				}
			})
		}
	} else {
		t.Run("clone-unsupported", func(t *testing.T) {
			_, err := c.Clone(ctx, sdk.CloneRequest{Cluster: sdk.Cluster{DataDir: t.TempDir()}}, nil)
			if !errors.Is(err, sdk.ErrNotSupported) {
				t.Errorf("Clone on a plugin without sdk.Cloner returned %v, want sdk.ErrNotSupported", err)
			}
		})
	}
	if !info.Can(sdk.CapBootstrap) {
		t.Run("bootstrap-unsupported", func(t *testing.T) {
			_, err := c.Bootstrap(ctx, sdk.BootstrapRequest{Cluster: sdk.Cluster{DataDir: t.TempDir()}}, nil)
			if !errors.Is(err, sdk.ErrNotSupported) {
				t.Errorf("Bootstrap on a plugin without sdk.Bootstrapper returned %v, want sdk.ErrNotSupported", err)
			}
		})
	}
	if s.Clone != nil {
		t.Run("clone", func(t *testing.T) {
			req := s.Clone(t)
			AssertClone(t, c, req)
			if s.CheckDataDir != nil {
				s.CheckDataDir(t, req.Cluster.DataDir)
			}
		})
	}
	if s.Bootstrap != nil {
		t.Run("bootstrap", func(t *testing.T) {
			req := s.Bootstrap(t)
			AssertBootstrap(t, c, req)
			if s.CheckDataDir != nil {
				s.CheckDataDir(t, req.Cluster.DataDir)
			}
		})
	}
}

// AssertClone runs a clone that must succeed and checks its events; it returns the result and
// what was reported.
func AssertClone(t *testing.T, c *host.Client, req sdk.CloneRequest) (sdk.Result, *Recorder) {
	t.Helper()
	rec := &Recorder{}
	res, err := c.Clone(context.Background(), req, rec)
	if err != nil {
		t.Fatalf("Clone: %v", err)
	}
	checkEvents(t, rec, req.Env)
	return res, rec
}

// AssertBootstrap runs a bootstrap that must succeed and checks its events.
func AssertBootstrap(t *testing.T, c *host.Client, req sdk.BootstrapRequest) (sdk.Result, *Recorder) {
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
		if p.Done < 0 || p.Total < 0 {
			t.Errorf("progress with negative numbers: %+v", p)
		}
		if p.Total > 0 && p.Done > p.Total {
			t.Errorf("progress beyond its total: %+v", p)
		}
	}
	if pf := env["PGPASSFILE"]; pf != "" {
		if b, err := os.ReadFile(pf); err == nil {
			for _, line := range splitLines(string(b)) {
				if f := lastField(line); f != "" {
					AssertNoSecret(t, rec, f)
				}
			}
		}
	}
}

func splitLines(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
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
