package sdk

import (
	"context"
	"errors"
	"io"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/pgimaged/pgimaged/sdk/internal/pluginpb"
)

// Client is the host's handle on a running plugin, reached over gRPC. It implements every
// interface a plugin may implement; calls the plugin does not serve fail with [ErrNotSupported].
type Client struct {
	rpc pluginpb.MethodClient
}

var (
	_ Plugin           = (*Client)(nil)
	_ Validator        = (*Client)(nil)
	_ Bootstrapper     = (*Client)(nil)
	_ Cloner           = (*Client)(nil)
	_ BootstrapPlanner = (*Client)(nil)
	_ ClonePlanner     = (*Client)(nil)
)

// RemoteError is an error returned by a plugin, with the gRPC code it travelled under. errors.Is
// matches it against the sentinel that code stands for ([ErrNoSource], [ErrInvalidOptions],
// [ErrNotSupported], [ErrMethodFailed], [ErrPluginShutdown], context errors).
type RemoteError struct {
	Code    codes.Code
	Message string
}

func (e *RemoteError) Error() string { return e.Message }

// Is maps the gRPC code back to a sentinel.
func (e *RemoteError) Is(target error) bool {
	switch e.Code {
	case codes.FailedPrecondition:
		return target == ErrNoSource
	case codes.InvalidArgument:
		return target == ErrInvalidOptions
	case codes.Unimplemented:
		return target == ErrNotSupported
	case codes.Aborted:
		return target == ErrMethodFailed
	case codes.Unavailable:
		return target == ErrPluginShutdown
	case codes.Canceled:
		return target == context.Canceled
	case codes.DeadlineExceeded:
		return target == context.DeadlineExceeded
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
		msg = ErrPluginShutdown.Error() + ": " + msg
	}
	return &RemoteError{Code: s.Code(), Message: msg}
}

// Describe asks the plugin who it is and what it can do.
func (c *Client) Describe(ctx context.Context, _ DescribeRequest) (DescribeResponse, error) {
	info, err := c.Info(ctx)
	return info.DescribeResponse, err
}

// Info is Describe plus the capabilities the plugin serves.
func (c *Client) Info(ctx context.Context) (Info, error) {
	r, err := c.rpc.Describe(ctx, &pluginpb.DescribeRequest{})
	if err != nil {
		return Info{}, fromStatus(ctx, err)
	}
	info := Info{DescribeResponse: DescribeResponse{
		Name: r.GetName(), Version: r.GetVersion(), Description: r.GetDescription(), WorksWithoutSource: r.GetWorksWithoutSource(),
		Schema: schemaFromPB(r.GetSchema()),
	}}
	for _, c := range r.GetCapabilities() {
		info.Capabilities = append(info.Capabilities, Capability(c))
	}
	return info, nil
}

// Validate sends a method's options to the plugin for checking.
func (c *Client) Validate(ctx context.Context, req ValidateRequest) (ValidateResponse, error) {
	r, err := c.rpc.Validate(ctx, &pluginpb.ValidateRequest{
		Method: req.Method, Path: pathToPB(req.Path), Command: req.Command, NoParams: req.NoParams, Options: optionsToPB(req.Options),
	})
	if err != nil {
		return ValidateResponse{}, fromStatus(ctx, err)
	}
	var out ValidateResponse
	for _, d := range r.GetDiagnostics() {
		sev := SeverityError
		if d.GetSeverity() == pluginpb.Diagnostic_SEVERITY_WARNING {
			sev = SeverityWarning
		}
		out.Diagnostics = append(out.Diagnostics, Diagnostic{Severity: sev, Summary: d.GetSummary(), Detail: d.GetDetail(), Option: d.GetOption()})
	}
	return out, nil
}

// PlanBootstrap asks what a bootstrap would run.
func (c *Client) PlanBootstrap(ctx context.Context, req BootstrapRequest) (Plan, error) {
	r, err := c.rpc.Plan(ctx, &pluginpb.PlanRequest{Request: &pluginpb.PlanRequest_Bootstrap{Bootstrap: bootstrapToPB(req)}})
	if err != nil {
		return Plan{}, fromStatus(ctx, err)
	}
	return planFromPB(r), nil
}

// PlanClone asks what a clone would run.
func (c *Client) PlanClone(ctx context.Context, req CloneRequest) (Plan, error) {
	r, err := c.rpc.Plan(ctx, &pluginpb.PlanRequest{Request: &pluginpb.PlanRequest_Clone{Clone: cloneToPB(req)}})
	if err != nil {
		return Plan{}, fromStatus(ctx, err)
	}
	return planFromPB(r), nil
}

// Bootstrap runs the plugin's bootstrap, passing its events to rep.
func (c *Client) Bootstrap(ctx context.Context, req BootstrapRequest, rep Reporter) (Result, error) {
	stream, err := c.rpc.Bootstrap(ctx, bootstrapToPB(req))
	if err != nil {
		return Result{}, fromStatus(ctx, err)
	}
	return drain(ctx, stream, rep)
}

// Clone runs the plugin's clone, passing its events to rep.
func (c *Client) Clone(ctx context.Context, req CloneRequest, rep Reporter) (Result, error) {
	stream, err := c.rpc.Clone(ctx, cloneToPB(req))
	if err != nil {
		return Result{}, fromStatus(ctx, err)
	}
	return drain(ctx, stream, rep)
}

type eventStream interface {
	Recv() (*pluginpb.Event, error)
}

// drain receives events until the stream ends. A stream that ends without a result event is a
// failure: a plugin must either return an error or report a result.
func drain(ctx context.Context, s eventStream, rep Reporter) (Result, error) {
	var res *Result
	for {
		ev, err := s.Recv()
		if errors.Is(err, io.EOF) {
			if res == nil {
				return Result{}, &RemoteError{Code: codes.Internal, Message: "plugin ended the call without a result"}
			}
			return *res, nil
		}
		if err != nil {
			return Result{}, fromStatus(ctx, err)
		}
		switch e := ev.GetEvent().(type) {
		case *pluginpb.Event_Log:
			if rep != nil {
				kv := make([]any, 0, 2*len(e.Log.GetFields()))
				for k, v := range e.Log.GetFields() {
					kv = append(kv, k, v)
				}
				rep.Log(levelFromPB(e.Log.GetLevel()), e.Log.GetMessage(), kv...)
			}
		case *pluginpb.Event_Progress:
			if rep != nil {
				rep.Progress(Progress{Phase: e.Progress.GetPhase(), Done: e.Progress.GetDone(), Total: e.Progress.GetTotal(), Unit: Unit(e.Progress.GetUnit())})
			}
		case *pluginpb.Event_Result:
			r := resultFromPB(e.Result)
			res = &r
		}
	}
}
