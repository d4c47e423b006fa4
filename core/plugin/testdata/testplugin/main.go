// Command testplugin is a method plugin whose behaviour the host's tests choose through the
// method label: ok, panic, hang, cancel, childenv, tree, treehang, treeleave, badutf8. Options
// pass details: pidfile, script (a path run with sh), marker (put into the children's
// environment as PGIMAGED_TEST_MARKER). TESTPLUGIN_MODE in its environment overrides the label,
// for callers that choose their own (`pgimaged plugins check`); TESTPLUGIN_MODE=validatepanic
// makes Validate panic. TESTPLUGIN_REQUIRED names an option the schema then requires.
package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"time"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/pgimaged/pgimaged/core/plugin/host"
	"github.com/pgimaged/pgimaged/sdk"
	"github.com/pgimaged/pgimaged/sdk/pluginpb"
)

type testPlugin struct{}

func (testPlugin) Describe(context.Context, sdk.DescribeRequest) (sdk.DescribeResponse, error) {
	s := sdk.Schema{Options: append([]sdk.OptionSpec(nil), schema.Options...)}
	if req := os.Getenv("TESTPLUGIN_REQUIRED"); req != "" {
		for i := range s.Options {
			if s.Options[i].Name == req {
				s.Options[i].Required = true
			}
		}
	}
	return sdk.DescribeResponse{Name: "testplugin", Version: "0.0.1", Schema: s}, nil
}

// schema: the options the test cases give.
var schema = sdk.Schema{Options: []sdk.OptionSpec{
	{Name: "bad", Type: sdk.TypeString, Flag: true, Description: "Validate refuses it"},
	{Name: "pidfile", Type: sdk.TypeString, Description: "where the started processes write their pids"},
	{Name: "script", Type: sdk.TypeString, Description: "the shell script the tree cases run"},
	{Name: "marker", Type: sdk.TypeString, Description: "PGIMAGED_TEST_MARKER for the started processes"},
}}

func (testPlugin) Validate(_ context.Context, req sdk.ValidateRequest) (sdk.ValidateResponse, error) {
	if os.Getenv("TESTPLUGIN_MODE") == "validatepanic" {
		panic("testplugin: deliberate panic in Validate")
	}
	var resp sdk.ValidateResponse
	if req.Options.Has("bad") {
		resp.Diagnostics = append(resp.Diagnostics, sdk.Errorf("bad", "Option not accepted", "testplugin refuses %q", "bad"))
	}
	return resp, nil
}

func (testPlugin) Clone(ctx context.Context, req sdk.CloneRequest, r sdk.Reporter) (sdk.Result, error) {
	behaviour := req.Method
	if m := os.Getenv("TESTPLUGIN_MODE"); m != "" {
		behaviour = m
	}
	switch behaviour {
	case "ok":
		r.Log(sdk.LevelWarn, "hello from testplugin", "datadir", req.Cluster.DataDir)
		r.Progress(sdk.Progress{Phase: "copy", Done: 5, Total: 10, Unit: sdk.UnitFiles})
		r.Progress(sdk.Progress{Phase: "copy", Done: 10, Total: 10, Unit: sdk.UnitFiles})
		return sdk.Result{Summary: "done"}, nil
	case "panic":
		r.Log(sdk.LevelInfo, "about to panic")
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
		r.Log(sdk.LevelInfo, "hanging")
		select {}
	case "childenv":
		// What a child of the plugin sees of the TLS material pgimaged handed the plugin.
		return sdk.Result{}, sdk.Run(ctx, sdk.Process{Argv: []string{"sh", "-c", "echo key=${PGIMAGED_PLUGIN_TLS:-unset}"}}, r)
	case "cancel":
		// Honours cancellation through sdk.Run; the child's shell ignores SIGTERM, its sleep not.
		return sdk.Result{}, sdk.Run(ctx, sdk.Process{Argv: []string{"sh", "-c", `trap "" TERM; sleep 600; :`}, Env: treeEnv(req), KillGrace: 200 * time.Millisecond}, r)
	case "tree", "treeleave":
		// Runs the script through sdk.Run: cancellation reaches it, but it ignores SIGTERM.
		script, _ := req.Options.Get("script")
		err := sdk.Run(ctx, sdk.Process{Argv: []string{"sh", script}, Env: treeEnv(req), KillGrace: 200 * time.Millisecond}, r)
		if err != nil {
			return sdk.Result{}, err
		}
		return sdk.Result{Summary: "left a tree"}, nil
	case "treehang":
		// Starts the script without sdk.Run and ignores cancellation.
		script, _ := req.Options.Get("script")
		cmd := exec.Command("sh", script)
		for k, v := range treeEnv(req) {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		cmd.Env = append(cmd.Env, "PATH="+os.Getenv("PATH"))
		if err := cmd.Start(); err != nil {
			return sdk.Result{}, err
		}
		r.Log(sdk.LevelInfo, "hanging")
		select {}
	case "badutf8":
		// Output that is not UTF-8, from the plugin and from a child; then success.
		r.Log(sdk.LevelInfo, "plugin says \xff\xfe: \xff\xfe", "field", "\xc3\x28")
		r.Progress(sdk.Progress{Phase: "copy \xff", Done: 1, Total: 1})
		if err := sdk.Run(ctx, sdk.Process{Argv: []string{"printf", `a\377\376b\n\303\050\n`}}, r); err != nil {
			return sdk.Result{}, err
		}
		return sdk.Result{Summary: "copied \xff"}, nil
	case "badutf8fail":
		return sdk.Result{}, fmt.Errorf("failed with \xff\xfe")
	}
	return sdk.Result{}, fmt.Errorf("testplugin: unknown behaviour %q", req.Method)
}

// treeEnv is what the tree's processes get: the marker and where to write their pids.
func treeEnv(req sdk.CloneRequest) map[string]string {
	env := map[string]string{}
	if m, ok := req.Options.Get("marker"); ok {
		env["PGIMAGED_TEST_MARKER"] = m
	}
	if f, ok := req.Options.Get("pidfile"); ok {
		env["TREE_PIDS"] = f
	}
	if req.Method == "treeleave" {
		env["TREE_LEAVE"] = "1"
	}
	return env
}

func main() {
	if v := os.Getenv("TESTPLUGIN_PROTOCOL"); v != "" {
		n, _ := strconv.Atoi(v)
		serveAs(n)
		return
	}
	if os.Getenv("TESTPLUGIN_STDERR") != "" {
		fmt.Fprintln(os.Stderr, "plain stderr line from testplugin")
	}
	sdk.Serve(testPlugin{})
}

// serveAs serves testPlugin the way go-plugin does by default, under protocol version v: unlike
// sdk.Serve it neither uses the certificate pgimaged hands out (go-plugin's automatic mutual TLS
// applies, as for a plugin written in another language) nor becomes a subreaper.
func serveAs(v int) {
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  host.Handshake,
		VersionedPlugins: map[int]plugin.PluginSet{v: {host.PluginName: methodPlugin{}}},
		GRPCServer:       plugin.DefaultGRPCServer,
	})
}

// methodPlugin is go-plugin's glue for the plugin side of the method service.
type methodPlugin struct{ plugin.NetRPCUnsupportedPlugin }

func (methodPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	pluginpb.RegisterMethodServer(s, sdk.NewServer(testPlugin{}))
	return nil
}

func (methodPlugin) GRPCClient(context.Context, *plugin.GRPCBroker, *grpc.ClientConn) (interface{}, error) {
	return nil, fmt.Errorf("testplugin has no client")
}
