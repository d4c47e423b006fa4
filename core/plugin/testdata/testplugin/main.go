// Command testplugin is a method plugin whose behaviour the host's tests choose through the
// method label: ok, panic, hang, logs.
package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"

	"github.com/pgimaged/pgimaged/sdk"
)

type testPlugin struct{}

func (testPlugin) Describe(context.Context, sdk.DescribeRequest) (sdk.DescribeResponse, error) {
	return sdk.DescribeResponse{Name: "testplugin", Version: "0.0.1"}, nil
}

func (testPlugin) Validate(_ context.Context, req sdk.ValidateRequest) (sdk.ValidateResponse, error) {
	var resp sdk.ValidateResponse
	if req.Options.Has("bad") {
		resp.Diagnostics = append(resp.Diagnostics, sdk.Errorf("bad", "Option not accepted", "testplugin refuses %q", "bad"))
	}
	return resp, nil
}

func (testPlugin) Clone(ctx context.Context, req sdk.CloneRequest, r sdk.Reporter) (sdk.Result, error) {
	switch req.Method {
	case "ok":
		r.Log(hclog.Info, "hello from testplugin", "datadir", req.Cluster.DataDir)
		r.Progress(sdk.Progress{Phase: "copy", Done: 5, Total: 10})
		r.Progress(sdk.Progress{Phase: "copy", Done: 10, Total: 10})
		return sdk.Result{Summary: "done"}, nil
	case "panic":
		r.Log(hclog.Info, "about to panic")
		time.Sleep(100 * time.Millisecond)
		panic("testplugin: deliberate panic in the middle of a clone")
	case "hang":
		// Start a child in the plugin's own process group, record pids, then ignore cancellation.
		child := exec.Command("sleep", "600")
		if err := child.Start(); err != nil {
			return sdk.Result{}, err
		}
		if f, ok := req.Options.Get("pidfile"); ok {
			_ = os.WriteFile(f, []byte(strconv.Itoa(os.Getpid())+" "+strconv.Itoa(child.Process.Pid)+"\n"), 0o644)
		}
		r.Log(hclog.Info, "hanging")
		select {}
	case "childenv":
		// What a child of the plugin sees of the TLS material pgimaged handed the plugin.
		return sdk.Result{}, sdk.Run(ctx, sdk.Process{Argv: []string{"sh", "-c", "echo key=${PGIMAGED_PLUGIN_TLS:-unset}"}}, r)
	case "cancel":
		// Honours cancellation through sdk.Run.
		return sdk.Result{}, sdk.Run(ctx, sdk.Process{Argv: []string{"sleep", "600"}}, r)
	}
	return sdk.Result{}, fmt.Errorf("testplugin: unknown behaviour %q", req.Method)
}

func main() {
	if v := os.Getenv("TESTPLUGIN_PROTOCOL"); v != "" {
		n, _ := strconv.Atoi(v)
		goplugin.Serve(&goplugin.ServeConfig{
			HandshakeConfig:  sdk.Handshake,
			VersionedPlugins: map[int]goplugin.PluginSet{n: {sdk.PluginName: &sdk.GRPCPlugin{Impl: testPlugin{}}}},
			GRPCServer:       goplugin.DefaultGRPCServer,
		})
		return
	}
	if os.Getenv("TESTPLUGIN_STDERR") != "" {
		fmt.Fprintln(os.Stderr, "plain stderr line from testplugin")
	}
	sdk.Serve(testPlugin{})
}
