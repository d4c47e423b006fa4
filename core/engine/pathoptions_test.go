package engine_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/pgimaged/pgimaged/core/config"
	"github.com/pgimaged/pgimaged/core/engine"
	"github.com/pgimaged/pgimaged/sdk"
)

// snapshotPlugin clones from the directory its path option names; its plan shows the path it
// was given.
type snapshotPlugin struct{}

var snapshotSchema = sdk.Schema{Options: []sdk.OptionSpec{
	{Name: "snapshot_dir", Type: sdk.TypePath, Required: true, Aliases: []string{"snapshot"}},
	{Name: "label", Type: sdk.TypeString},
}}

func (snapshotPlugin) Describe(context.Context, sdk.DescribeRequest) (sdk.DescribeResponse, error) {
	return sdk.DescribeResponse{Name: "snapshot", Version: "test", WorksWithoutSource: true, Schema: snapshotSchema}, nil
}

func (snapshotPlugin) Clone(context.Context, sdk.CloneRequest, sdk.Reporter) (sdk.Result, error) {
	return sdk.Result{}, sdk.ErrMethodFailed
}

func (snapshotPlugin) PlanClone(_ context.Context, req sdk.CloneRequest) (sdk.Plan, error) {
	return sdk.Plan{Commands: []sdk.Command{{Argv: []string{"cp", "-r", req.Values.String("snapshot_dir"), req.Values.String("label"), req.Cluster.DataDir}}}}, nil
}

// A relative path option (typed path in the plugin's schema) means what every relative path
// of the configuration means: it starts at the configuration file's directory, and the plugin
// gets it absolute. Other options stay as written.
func TestPathOptionsStartAtTheConfigurationFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "etc")
	for _, tc := range []struct{ name, attr, want string }{
		{"relative", `snapshot_dir = "snapshots/latest"`, filepath.Join(dir, "snapshots/latest")},
		{"by its alias", `snapshot = "../snapshots/latest"`, filepath.Join(filepath.Dir(dir), "snapshots/latest")},
		{"absolute", `snapshot_dir = "/srv/snapshots/latest"`, "/srv/snapshots/latest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := fmt.Sprintf(`
scope    = "batman"
name     = "node2"
data_dir = %q
postgresql {
  listen = "127.0.0.1:1"
  create_replica_methods = ["snapshot"]
}
method "snapshot" {
  no_master = true
  %s
  label     = "relative/not/a/path"
}
`, filepath.Join(t.TempDir(), "data"), tc.attr)
			cfg, diags := config.Parse(filepath.Join(dir, "pgimaged.hcl"), []byte(src))
			if diags.HasErrors() {
				t.Fatalf("decoding: %v", diags)
			}
			n := &engine.Node{Config: cfg, Logger: hclog.NewNullLogger(), Plugins: inProcess{t: t, plugins: map[string]sdk.Plugin{"snapshot": snapshotPlugin{}}}}
			p := n.PlanOneShotClone(t.Context(), nil)
			if len(p.Methods) != 1 || len(p.Methods[0].Commands) != 1 {
				t.Fatalf("plan: %+v", p)
			}
			argv := p.Methods[0].Commands[0].Argv
			if argv[2] != tc.want || argv[3] != "relative/not/a/path" {
				t.Errorf("the plugin got %q and %q, want %q and the string option as written", argv[2], argv[3], tc.want)
			}
		})
	}
}
