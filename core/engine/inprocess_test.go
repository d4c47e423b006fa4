package engine_test

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/pgimaged/pgimaged/core/engine"
	"github.com/pgimaged/pgimaged/sdk"
	"github.com/pgimaged/pgimaged/sdk/plugintest"
)

// inProcess serves plugin implementations over real gRPC inside the test process
// (plugintest.Connect) as the engine's Plugins.
type inProcess struct {
	t       testing.TB
	plugins map[string]sdk.Plugin
}

var _ engine.Plugins = inProcess{}

func (p inProcess) Has(name string) bool { _, ok := p.plugins[name]; return ok }

func (p inProcess) Launch(ctx context.Context, name string) (engine.PluginInstance, error) {
	impl, ok := p.plugins[name]
	if !ok {
		return nil, fmt.Errorf("no in-process plugin %q", name)
	}
	c := plugintest.Connect(p.t, impl)
	info, err := c.Info(ctx)
	if err != nil {
		return nil, err
	}
	return &inProcessInstance{c: c, info: info}, nil
}

type inProcessInstance struct {
	c    plugintest.Client
	info sdk.Info
}

func (i *inProcessInstance) Info() sdk.Info { return i.info }

func (i *inProcessInstance) Clone(ctx context.Context, req sdk.CloneRequest, rep sdk.Reporter, timeout time.Duration) (sdk.Result, error) {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	return i.c.Clone(ctx, req, rep)
}

func (i *inProcessInstance) Bootstrap(ctx context.Context, req sdk.BootstrapRequest, rep sdk.Reporter, timeout time.Duration) (sdk.Result, error) {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	return i.c.Bootstrap(ctx, req, rep)
}

func (i *inProcessInstance) PlanClone(ctx context.Context, req sdk.CloneRequest) (sdk.Plan, error) {
	return i.c.PlanClone(ctx, req)
}

func (i *inProcessInstance) PlanBootstrap(ctx context.Context, req sdk.BootstrapRequest) (sdk.Plan, error) {
	return i.c.PlanBootstrap(ctx, req)
}

func (i *inProcessInstance) Kill() {}

// initdbPlugin bootstraps with the real initdb: a minimal bootstrap method.
type initdbPlugin struct{}

func (initdbPlugin) Describe(context.Context, sdk.DescribeRequest) (sdk.DescribeResponse, error) {
	return sdk.DescribeResponse{Name: "initdb", Version: "test"}, nil
}

func (initdbPlugin) argv(req sdk.BootstrapRequest) []string {
	return []string{filepath.Join(req.Cluster.BinDir, "initdb"), "-D", req.Cluster.DataDir,
		"--username=" + req.Superuser.Username, "--auth=trust", "--no-sync", "--locale=C", "--encoding=UTF8"}
}

func (p initdbPlugin) Bootstrap(ctx context.Context, req sdk.BootstrapRequest, _ sdk.Reporter) (sdk.Result, error) {
	argv := p.argv(req)
	if out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput(); err != nil {
		return sdk.Result{}, fmt.Errorf("%w: initdb: %v: %s", sdk.ErrMethodFailed, err, out)
	}
	return sdk.Result{Summary: "initdb made a cluster"}, nil
}

func (p initdbPlugin) PlanBootstrap(_ context.Context, req sdk.BootstrapRequest) (sdk.Plan, error) {
	return sdk.Plan{Commands: []sdk.Command{{Argv: p.argv(req)}}}, nil
}
