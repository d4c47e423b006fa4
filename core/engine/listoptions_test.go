package engine_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/pgimaged/pgimaged/core/config"
	"github.com/pgimaged/pgimaged/core/dcs"
	"github.com/pgimaged/pgimaged/core/engine"
	"github.com/pgimaged/pgimaged/sdk"
)

// echoPlugin bootstraps by planning `echo` with its options as arguments, repeated in a note: a
// plugin that shows what it gets.
type echoPlugin struct{}

func (echoPlugin) Describe(context.Context, sdk.DescribeRequest) (sdk.DescribeResponse, error) {
	return sdk.DescribeResponse{Name: "echo", Version: "test", Schema: sdk.Schema{Open: true, Options: []sdk.OptionSpec{
		{Name: "items", Type: sdk.TypeList}, {Name: "env", Type: sdk.TypeMap},
	}}}, nil
}

func (echoPlugin) Bootstrap(context.Context, sdk.BootstrapRequest, sdk.Reporter) (sdk.Result, error) {
	return sdk.Result{}, sdk.ErrMethodFailed
}

func (echoPlugin) PlanBootstrap(_ context.Context, req sdk.BootstrapRequest) (sdk.Plan, error) {
	args := req.Options.Args()
	return sdk.Plan{Commands: []sdk.Command{{Argv: append([]string{"/bin/echo"}, args...)}}, Notes: []string{strings.Join(args, " ")}}, nil
}

// The elements of list and map options read by env() or file() are masked in the plan; the
// others are shown.
func TestListAndMapSecretsMaskedInPlan(t *testing.T) {
	secret, fileSecret := "env-s3cret-list-element", "file-s3cret-map-value"
	t.Setenv("PGIMAGED_TEST_LIST_SECRET", secret)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "token"), []byte(fileSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	src := fmt.Sprintf(`
scope    = "batman"
name     = "node1"
data_dir = %q
postgresql { listen = "127.0.0.1:1" }
bootstrap { method = "custom" }
method "custom" {
  plugin = "echo"
  items  = ["plain", env("PGIMAGED_TEST_LIST_SECRET")]
  env    = { REGION = "eu-west-1", TOKEN = file("token") }
}
`, filepath.Join(dir, "data"))
	cfg, diags := config.Parse(filepath.Join(dir, "pgimaged.hcl"), []byte(src))
	if diags.HasErrors() {
		t.Fatalf("decoding: %v", diags)
	}
	n := &engine.Node{Config: cfg, Logger: hclog.NewNullLogger(), Plugins: inProcess{t: t, plugins: map[string]sdk.Plugin{"echo": echoPlugin{}}}}

	p := n.Plan(t.Context(), &dcs.Cluster{}, nil)
	if p.Path != "bootstrap" || len(p.Methods) != 1 || len(p.Methods[0].Commands) != 1 || len(p.Methods[0].Notes) != 1 {
		t.Fatalf("plan: %+v", p)
	}
	argv := strings.Join(p.Methods[0].Commands[0].Argv, " ")
	want := "/bin/echo --items=plain --items=" + sdk.Mask + " --env=REGION=eu-west-1 --env=TOKEN=" + sdk.Mask
	if argv != want {
		t.Errorf("planned argv\n got %s\nwant %s", argv, want)
	}
	if note := p.Methods[0].Notes[0]; strings.Contains(note, secret) || strings.Contains(note, fileSecret) {
		t.Errorf("the plan's note shows a secret: %s", note)
	}

}
