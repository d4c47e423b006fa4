package host

import (
	"context"
	"errors"
	"io"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/pgimaged/pgimaged/sdk"
	"github.com/pgimaged/pgimaged/sdk/internal/pluginpb"
	"github.com/pgimaged/pgimaged/sdk/internal/wire"
)

// Client is the host's handle on a running plugin, reached over gRPC. It implements every
// interface a plugin may implement; calls the plugin does not serve fail with [sdk.ErrNotSupported].
type Client struct {
	rpc pluginpb.MethodClient
}

var (
	_ sdk.Plugin           = (*Client)(nil)
	_ sdk.Validator        = (*Client)(nil)
	_ sdk.Bootstrapper     = (*Client)(nil)
	_ sdk.Cloner           = (*Client)(nil)
	_ sdk.BootstrapPlanner = (*Client)(nil)
	_ sdk.ClonePlanner     = (*Client)(nil)
)

// RemoteError is an error returned by a plugin, with the gRPC code it travelled under. errors.Is
// matches it against the sentinel that code stands for ([sdk.ErrNoSource], [sdk.ErrInvalidOptions],
// [sdk.ErrNotSupported], [sdk.ErrMethodFailed], [sdk.ErrPluginShutdown], context errors).
type RemoteError struct {
	Code    codes.Code
	Message string
}

func (e *RemoteError) Error() string { return e.Message }

// Is maps the gRPC code back to a sentinel.
func (e *RemoteError) Is(target error) bool {
	if e.Code == codes.Unavailable {
		return target == sdk.ErrPluginShutdown
	}
	for _, c := range wire.ErrorCodes {
		if c.Code == e.Code {
			return target == c.Err
		}
	}
	return false
}

func fromStatus(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	s, ok := status.FromError(err)
	if !ok {
		return err
	}
	msg := s.Message()
	if s.Code() == codes.Unavailable {
		msg = sdk.ErrPluginShutdown.Error() + ": " + msg
	}
	return &RemoteError{Code: s.Code(), Message: msg}
}

// Describe asks the plugin who it is and what it can do.
func (c *Client) Describe(ctx context.Context, _ sdk.DescribeRequest) (sdk.DescribeResponse, error) {
	info, err := c.Info(ctx)
	return info.DescribeResponse, err
}

// Info is Describe plus the capabilities the plugin serves.
func (c *Client) Info(ctx context.Context) (sdk.Info, error) {
	r, err := c.rpc.Describe(ctx, &pluginpb.DescribeRequest{})
	if err != nil {
		return sdk.Info{}, fromStatus(ctx, err)
	}
	info := sdk.Info{DescribeResponse: sdk.DescribeResponse{
		Name: r.GetName(), Version: r.GetVersion(), Description: r.GetDescription(), WorksWithoutSource: r.GetWorksWithoutSource(),
		Schema: schemaFromPB(r.GetSchema()),
	}}
	for _, c := range r.GetCapabilities() {
		info.Capabilities = append(info.Capabilities, sdk.Capability(c))
	}
	return info, nil
}

// Validate sends a method's options to the plugin for checking.
func (c *Client) Validate(ctx context.Context, req sdk.ValidateRequest) (sdk.ValidateResponse, error) {
	r, err := c.rpc.Validate(ctx, &pluginpb.ValidateRequest{
		Method: req.Method, Path: pluginpb.Path(req.Path), Command: req.Command, NoParams: req.NoParams, Options: optionsToPB(req.Options),
	})
	if err != nil {
		return sdk.ValidateResponse{}, fromStatus(ctx, err)
	}
	var out sdk.ValidateResponse
	for _, d := range r.GetDiagnostics() {
		sev := sdk.SeverityError
		if d.GetSeverity() == pluginpb.Diagnostic_SEVERITY_WARNING {
			sev = sdk.SeverityWarning
		}
		out.Diagnostics = append(out.Diagnostics, sdk.Diagnostic{Severity: sev, Summary: d.GetSummary(), Detail: d.GetDetail(), Option: d.GetOption()})
	}
	return out, nil
}

// PlanBootstrap asks what a bootstrap would run.
func (c *Client) PlanBootstrap(ctx context.Context, req sdk.BootstrapRequest) (sdk.Plan, error) {
	r, err := c.rpc.Plan(ctx, &pluginpb.PlanRequest{Request: &pluginpb.PlanRequest_Bootstrap{Bootstrap: bootstrapToPB(req)}})
	if err != nil {
		return sdk.Plan{}, fromStatus(ctx, err)
	}
	return planFromPB(r), nil
}

// PlanClone asks what a clone would run.
func (c *Client) PlanClone(ctx context.Context, req sdk.CloneRequest) (sdk.Plan, error) {
	r, err := c.rpc.Plan(ctx, &pluginpb.PlanRequest{Request: &pluginpb.PlanRequest_Clone{Clone: cloneToPB(req)}})
	if err != nil {
		return sdk.Plan{}, fromStatus(ctx, err)
	}
	return planFromPB(r), nil
}

// Bootstrap runs the plugin's bootstrap, passing its events to rep.
func (c *Client) Bootstrap(ctx context.Context, req sdk.BootstrapRequest, rep sdk.Reporter) (sdk.Result, error) {
	stream, err := c.rpc.Bootstrap(ctx, bootstrapToPB(req))
	if err != nil {
		return sdk.Result{}, fromStatus(ctx, err)
	}
	return drain(ctx, stream, rep)
}

// Clone runs the plugin's clone, passing its events to rep.
func (c *Client) Clone(ctx context.Context, req sdk.CloneRequest, rep sdk.Reporter) (sdk.Result, error) {
	stream, err := c.rpc.Clone(ctx, cloneToPB(req))
	if err != nil {
		return sdk.Result{}, fromStatus(ctx, err)
	}
	return drain(ctx, stream, rep)
}

type eventStream interface {
	Recv() (*pluginpb.Event, error)
}

// drain receives events until the stream ends. A stream that ends without a result event is a
// failure: a plugin must either return an error or report a result.
func drain(ctx context.Context, s eventStream, rep sdk.Reporter) (sdk.Result, error) {
	var res *sdk.Result
	for {
		ev, err := s.Recv()
		if errors.Is(err, io.EOF) {
			if res == nil {
				return sdk.Result{}, &RemoteError{Code: codes.Internal, Message: "plugin ended the call without a result"}
			}
			return *res, nil
		}
		if err != nil {
			return sdk.Result{}, fromStatus(ctx, err)
		}
		switch e := ev.GetEvent().(type) {
		case *pluginpb.Event_Log:
			if rep != nil {
				kv := make([]any, 0, 2*len(e.Log.GetFields()))
				for k, v := range e.Log.GetFields() {
					kv = append(kv, k, v)
				}
				rep.Log(sdk.Level(e.Log.GetLevel()), e.Log.GetMessage(), kv...)
			}
		case *pluginpb.Event_Progress:
			if rep != nil {
				rep.Progress(sdk.Progress{Phase: e.Progress.GetPhase(), Done: e.Progress.GetDone(), Total: e.Progress.GetTotal(), Unit: sdk.Unit(e.Progress.GetUnit())})
			}
		case *pluginpb.Event_Result:
			r := resultFromPB(e.Result)
			res = &r
		}
	}
}

// ProtocolVersion is the version of the plugin protocol the host speaks.
const ProtocolVersion = sdk.ProtocolVersion

// PluginName is the name the method service is dispensed under.
const PluginName = wire.PluginName

// Handshake is the go-plugin handshake between pgimaged and its plugins. The protocol version is
// negotiated through VersionedPlugins; a plugin and host without a common version refuse each other.
var Handshake = wire.Handshake

// GRPCPlugin is go-plugin's glue for the method service: the plugin side serves Impl (an
// sdk.Plugin; a test plugin may serve under a protocol version of its choosing), the host side
// gets a [*Client].
type GRPCPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	Impl   sdk.Plugin
	Logger hclog.Logger
}

// GRPCServer registers the method service.
func (g *GRPCPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	pluginpb.RegisterMethodServer(s, wire.NewServer(g.Impl, g.Logger))
	return nil
}

// GRPCClient returns the host's view of the plugin.
func (g *GRPCPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (interface{}, error) {
	return &Client{rpc: pluginpb.NewMethodClient(c)}, nil
}

// NewClient is the host's handle on a plugin served on conn (see [Register]); go-plugin's
// [GRPCPlugin] makes one for a launched plugin.
func NewClient(conn grpc.ClientConnInterface) *Client {
	return &Client{rpc: pluginpb.NewMethodClient(conn)}
}

// Register serves p's method service on s, for tests that connect to a plugin in-process
// without go-plugin. logger may be nil.
func Register(s *grpc.Server, p sdk.Plugin, logger hclog.Logger) {
	pluginpb.RegisterMethodServer(s, wire.NewServer(p, logger))
}
