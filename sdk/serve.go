package sdk

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/pgimaged/pgimaged/sdk/pluginpb"
)

// ProtocolVersion is the version of the plugin protocol this SDK speaks
// (proto/pgimaged/plugin/v2/plugin.proto). pgimaged refuses a plugin that speaks another, and
// says which versions both speak.
const ProtocolVersion = 2

// errorCodes is what a plugin's error becomes on the wire: the code of the first whose error it
// matches, codes.Internal when none does (see pluginpb.CodeNoSource and the others).
var errorCodes = []struct {
	err  error
	code codes.Code
}{
	{context.Canceled, codes.Canceled},
	{context.DeadlineExceeded, codes.DeadlineExceeded},
	{ErrNoSource, pluginpb.CodeNoSource},
	{ErrInvalidOptions, pluginpb.CodeInvalidOptions},
	{ErrNotSupported, pluginpb.CodeNotSupported},
	{ErrMethodFailed, pluginpb.CodeMethodFailed},
}

// NewServer returns the Method service of package pluginpb implemented by p, as [Serve] serves
// it, for a plugin served on a gRPC server of one's own (package plugintest does, to test a
// plugin in one process).
func NewServer(p Plugin) pluginpb.MethodServer {
	return &grpcServer{impl: p}
}

// Serve runs p as a pgimaged plugin. It is what a plugin's main calls, and returns only when
// pgimaged ends the plugin.
//
// The plugin process makes itself the child subreaper of what it starts (Linux
// PR_SET_CHILD_SUBREAPER): a process a method starts that loses its parent, for example by a
// double fork into a session of its own, is re-parented to the plugin rather than to init, so
// that [Run] and pgimaged find it and end it with the method.
func Serve(p Plugin) {
	// The plugin's own lines go to stderr as JSON; pgimaged forwards them into its log tagged
	// with the plugin's name.
	logger := hclog.New(&hclog.LoggerOptions{Output: os.Stderr, Level: hclog.Trace, JSONFormat: true})
	if err := becomeSubreaper(); err != nil {
		logger.Warn("could not become the child subreaper of the method's processes", "error", err)
	}
	var tlsProvider func() (*tls.Config, error)
	if os.Getenv(pluginpb.TLSEnv) != "" {
		tlsProvider = serverTLS
	}
	plugin.Serve(&plugin.ServeConfig{
		TLSProvider:     tlsProvider,
		HandshakeConfig: plugin.HandshakeConfig{MagicCookieKey: pluginpb.MagicCookieKey, MagicCookieValue: pluginpb.MagicCookieValue},
		VersionedPlugins: map[int]plugin.PluginSet{
			ProtocolVersion: {pluginpb.ServiceName: &servePlugin{impl: p}},
		},
		GRPCServer: plugin.DefaultGRPCServer,
		Logger:     logger,
	})
}

// servePlugin is the plugin side of go-plugin's glue.
type servePlugin struct {
	plugin.NetRPCUnsupportedPlugin
	impl Plugin
}

func (g *servePlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	pluginpb.RegisterMethodServer(s, NewServer(g.impl))
	return nil
}

func (g *servePlugin) GRPCClient(context.Context, *plugin.GRPCBroker, *grpc.ClientConn) (interface{}, error) {
	return nil, errors.New("the plugin side has no client")
}

type grpcServer struct {
	pluginpb.UnimplementedMethodServer
	impl Plugin
}

func (s *grpcServer) Describe(ctx context.Context, _ *pluginpb.DescribeRequest) (*pluginpb.DescribeResponse, error) {
	d, err := s.impl.Describe(ctx, DescribeRequest{})
	if err != nil {
		return nil, toStatus(err)
	}
	out := &pluginpb.DescribeResponse{Name: validUTF8(d.Name), Version: validUTF8(d.Version), Description: validUTF8(d.Description), WorksWithoutSource: d.WorksWithoutSource, Schema: schemaToPB(d.Schema)}
	for _, c := range capabilities(s.impl) {
		out.Capabilities = append(out.Capabilities, string(c))
	}
	return out, nil
}

// values decodes opts against the plugin's schema.
func (s *grpcServer) values(ctx context.Context, opts Options) (Values, []Diagnostic, error) {
	d, err := s.impl.Describe(ctx, DescribeRequest{})
	if err != nil {
		return Values{}, nil, err
	}
	v, diags := d.Schema.Decode(opts)
	return v, diags, nil
}

// decode fills *v for a call that runs and renames deprecated aliases in *opts: options the
// schema refuses fail it.
func (s *grpcServer) decode(ctx context.Context, opts *Options, v *Values) error {
	vals, diags, err := s.values(ctx, *opts)
	if err != nil {
		return err
	}
	*v = vals
	*opts = vals.schema.Canonical(*opts)
	return CheckDiagnostics(diags)
}

func (s *grpcServer) Validate(ctx context.Context, req *pluginpb.ValidateRequest) (*pluginpb.ValidateResponse, error) {
	v, ok := s.impl.(Validator)
	if !ok {
		return &pluginpb.ValidateResponse{}, nil
	}
	vr := ValidateRequest{
		Method: req.GetMethod(), Path: Path(req.GetPath()), Command: req.GetCommand(),
		NoParams: req.GetNoParams(), Options: optionsFromPB(req.GetOptions()),
	}
	// pgimaged has checked the options against the schema and reports what is wrong with them;
	// Validate sees the values that are right, and what it says about an option the schema
	// already refuses is dropped, so that each mistake is reported once.
	var err error
	var schemaDiags []Diagnostic
	if vr.Values, schemaDiags, err = s.values(ctx, vr.Options); err != nil {
		return nil, toStatus(err)
	}
	refused := map[string]bool{}
	for _, d := range schemaDiags {
		if d.Severity == SeverityError && d.Option != "" {
			refused[d.Option] = true
		}
	}
	resp, err := v.Validate(ctx, vr)
	if err != nil {
		return nil, toStatus(err)
	}
	out := &pluginpb.ValidateResponse{}
	for _, d := range resp.Diagnostics {
		if refused[d.Option] {
			continue
		}
		sev := pluginpb.Diagnostic_SEVERITY_ERROR
		if d.Severity == SeverityWarning {
			sev = pluginpb.Diagnostic_SEVERITY_WARNING
		}
		out.Diagnostics = append(out.Diagnostics, &pluginpb.Diagnostic{Severity: sev, Summary: validUTF8(d.Summary), Detail: validUTF8(d.Detail), Option: validUTF8(d.Option)})
	}
	return out, nil
}

func (s *grpcServer) Plan(ctx context.Context, req *pluginpb.PlanRequest) (*pluginpb.PlanResponse, error) {
	var plan Plan
	var err error
	switch r := req.GetRequest().(type) {
	case *pluginpb.PlanRequest_Bootstrap:
		p, ok := s.impl.(BootstrapPlanner)
		req := bootstrapFromPB(r.Bootstrap)
		plan, err = serveCall(ctx, s, ok, &req.Options, &req.Values, func() (Plan, error) { return p.PlanBootstrap(ctx, req) })
	case *pluginpb.PlanRequest_Clone:
		p, ok := s.impl.(ClonePlanner)
		req := cloneFromPB(r.Clone)
		plan, err = serveCall(ctx, s, ok, &req.Options, &req.Values, func() (Plan, error) { return p.PlanClone(ctx, req) })
	default:
		return nil, status.Error(codes.InvalidArgument, "plan request names neither bootstrap nor clone")
	}
	if err != nil {
		return nil, err
	}
	return planToPB(plan), nil
}

func (s *grpcServer) Bootstrap(req *pluginpb.BootstrapRequest, stream pluginpb.Method_BootstrapServer) error {
	b, ok := s.impl.(Bootstrapper)
	r := bootstrapFromPB(req)
	return s.serveStream(stream, ok, &r.Options, &r.Values, func(ctx context.Context, rep Reporter) (Result, error) {
		return b.Bootstrap(ctx, r, rep)
	})
}

func (s *grpcServer) Clone(req *pluginpb.CloneRequest, stream pluginpb.Method_CloneServer) error {
	c, ok := s.impl.(Cloner)
	r := cloneFromPB(req)
	return s.serveStream(stream, ok, &r.Options, &r.Values, func(ctx context.Context, rep Reporter) (Result, error) {
		return c.Clone(ctx, r, rep)
	})
}

// serveStream runs a Bootstrap or Clone call as serveCall does, with a reporter on its stream, and
// sends its result.
func (s *grpcServer) serveStream(stream grpc.ServerStreamingServer[pluginpb.Event], ok bool, opts *Options, vals *Values, run func(context.Context, Reporter) (Result, error)) error {
	ctx := stream.Context()
	rep := newStreamReporter(ctx, stream.Send)
	res, err := serveCall(ctx, s, ok, opts, vals, func() (Result, error) { return run(ctx, rep) })
	if err != nil {
		return err
	}
	return rep.send(&pluginpb.Event{Event: &pluginpb.Event_Result{Result: resultToPB(res)}})
}

// serveCall runs a call the plugin implements (ok; else it fails with ErrNotSupported) once the
// request's options are decoded, its error mapped to a gRPC status.
func serveCall[T any](ctx context.Context, s *grpcServer, ok bool, opts *Options, vals *Values, run func() (T, error)) (T, error) {
	var none T
	if !ok {
		return none, toStatus(ErrNotSupported)
	}
	if err := s.decode(ctx, opts, vals); err != nil {
		return none, toStatus(err)
	}
	res, err := run()
	return res, toStatus(err)
}

// streamReporter sends log and progress events on a server stream; gRPC streams are not safe for
// concurrent Send, so it serialises them.
type streamReporter struct {
	mu     sync.Mutex
	ctx    context.Context
	sendFn func(*pluginpb.Event) error
}

func newStreamReporter(ctx context.Context, send func(*pluginpb.Event) error) *streamReporter {
	return &streamReporter{ctx: ctx, sendFn: send}
}

func (r *streamReporter) send(ev *pluginpb.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.ctx.Err(); err != nil {
		return err
	}
	return r.sendFn(ev)
}

func (r *streamReporter) Log(level Level, msg string, keyvals ...any) {
	fields := make(map[string]string, len(keyvals)/2)
	for i := 0; i+1 < len(keyvals); i += 2 {
		fields[validUTF8(fmt.Sprint(keyvals[i]))] = validUTF8(fmt.Sprint(keyvals[i+1]))
	}
	_ = r.send(&pluginpb.Event{Event: &pluginpb.Event_Log{Log: &pluginpb.LogLine{Level: pluginpb.Level(level), Message: validUTF8(msg), Fields: fields}}})
}

func (r *streamReporter) Progress(p Progress) {
	_ = r.send(&pluginpb.Event{Event: &pluginpb.Event_Progress{Progress: &pluginpb.Progress{Phase: validUTF8(p.Phase), Done: p.Done, Total: p.Total, Unit: pluginpb.Unit(p.Unit)}}})
}

// toStatus maps an error to a gRPC status so that the host can tell kinds of failure apart.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok && !errors.Is(err, ErrMethodFailed) {
		var se interface{ GRPCStatus() *status.Status }
		if errors.As(err, &se) {
			return err
		}
	}
	for _, c := range errorCodes {
		if errors.Is(err, c.err) {
			return status.Error(c.code, validUTF8(err.Error()))
		}
	}
	return status.Error(codes.Internal, validUTF8(err.Error()))
}
