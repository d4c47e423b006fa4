package plugintest

import (
	"context"
	"errors"
	"io"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/pgimaged/pgimaged/sdk"
	"github.com/pgimaged/pgimaged/sdk/pluginpb"
)

// NewClient is pgimaged's client of a plugin whose Method service is served on conn: the one
// pgimaged itself uses for every plugin it launches, so that what [Connect] and [Conformance]
// check is what pgimaged meets. Calls the plugin does not serve fail with [sdk.ErrNotSupported];
// an error the plugin returned keeps its kind ([sdk.ErrNoSource], [sdk.ErrInvalidOptions],
// [sdk.ErrMethodFailed], context errors) and its gRPC status; a plugin process that has gone is
// [sdk.ErrPluginShutdown].
func NewClient(conn grpc.ClientConnInterface) Client {
	return &client{rpc: pluginpb.NewMethodClient(conn)}
}

// client is [Client] over gRPC.
type client struct {
	rpc pluginpb.MethodClient
}

var (
	_ sdk.Plugin           = (*client)(nil)
	_ sdk.Validator        = (*client)(nil)
	_ sdk.Bootstrapper     = (*client)(nil)
	_ sdk.Cloner           = (*client)(nil)
	_ sdk.BootstrapPlanner = (*client)(nil)
	_ sdk.ClonePlanner     = (*client)(nil)
)

// remoteError is an error returned by a plugin, with the gRPC code it travelled under.
type remoteError struct {
	code    codes.Code
	message string
}

func (e *remoteError) Error() string { return e.message }

// GRPCStatus is the status the error travelled as (see status.FromError).
func (e *remoteError) GRPCStatus() *status.Status { return status.New(e.code, e.message) }

// Is maps the gRPC code back to the sentinel it stands for (see pluginpb.CodeNoSource).
func (e *remoteError) Is(target error) bool {
	switch e.code {
	case codes.Unavailable:
		return target == sdk.ErrPluginShutdown
	case codes.Canceled:
		return target == context.Canceled
	case codes.DeadlineExceeded:
		return target == context.DeadlineExceeded
	case pluginpb.CodeNoSource:
		return target == sdk.ErrNoSource
	case pluginpb.CodeInvalidOptions:
		return target == sdk.ErrInvalidOptions
	case pluginpb.CodeNotSupported:
		return target == sdk.ErrNotSupported
	case pluginpb.CodeMethodFailed:
		return target == sdk.ErrMethodFailed
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
	return &remoteError{code: s.Code(), message: msg}
}

// Describe asks the plugin who it is and what it can do.
func (c *client) Describe(ctx context.Context, _ sdk.DescribeRequest) (sdk.DescribeResponse, error) {
	info, err := c.Info(ctx)
	return info.DescribeResponse, err
}

// Info is Describe plus the capabilities the plugin serves.
func (c *client) Info(ctx context.Context) (sdk.Info, error) {
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
func (c *client) Validate(ctx context.Context, req sdk.ValidateRequest) (sdk.ValidateResponse, error) {
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
func (c *client) PlanBootstrap(ctx context.Context, req sdk.BootstrapRequest) (sdk.Plan, error) {
	r, err := c.rpc.Plan(ctx, &pluginpb.PlanRequest{Request: &pluginpb.PlanRequest_Bootstrap{Bootstrap: bootstrapToPB(req)}})
	if err != nil {
		return sdk.Plan{}, fromStatus(ctx, err)
	}
	return planFromPB(r), nil
}

// PlanClone asks what a clone would run.
func (c *client) PlanClone(ctx context.Context, req sdk.CloneRequest) (sdk.Plan, error) {
	r, err := c.rpc.Plan(ctx, &pluginpb.PlanRequest{Request: &pluginpb.PlanRequest_Clone{Clone: cloneToPB(req)}})
	if err != nil {
		return sdk.Plan{}, fromStatus(ctx, err)
	}
	return planFromPB(r), nil
}

// Bootstrap runs the plugin's bootstrap, passing its events to rep.
func (c *client) Bootstrap(ctx context.Context, req sdk.BootstrapRequest, rep sdk.Reporter) (sdk.Result, error) {
	stream, err := c.rpc.Bootstrap(ctx, bootstrapToPB(req))
	if err != nil {
		return sdk.Result{}, fromStatus(ctx, err)
	}
	return drain(ctx, stream, rep)
}

// Clone runs the plugin's clone, passing its events to rep.
func (c *client) Clone(ctx context.Context, req sdk.CloneRequest, rep sdk.Reporter) (sdk.Result, error) {
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
				return sdk.Result{}, &remoteError{code: codes.Internal, message: "plugin ended the call without a result"}
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
