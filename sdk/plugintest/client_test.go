package plugintest_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/pgimaged/pgimaged/sdk"
	"github.com/pgimaged/pgimaged/sdk/plugintest"
)

// failing is a plugin whose Describe fails with err.
type failing struct{ err error }

func (f failing) Describe(context.Context, sdk.DescribeRequest) (sdk.DescribeResponse, error) {
	return sdk.DescribeResponse{}, f.err
}

// An error the host tells apart comes back through gRPC as itself, and as nothing else.
func TestErrorsKeepTheirKindAcrossTheWire(t *testing.T) {
	kinds := []error{sdk.ErrNoSource, sdk.ErrInvalidOptions, sdk.ErrNotSupported, sdk.ErrMethodFailed,
		sdk.ErrPluginShutdown, context.Canceled, context.DeadlineExceeded}
	cases := []struct {
		name string
		err  error
		want error // nil: none of kinds
	}{
		{"no source", fmt.Errorf("while connecting: %w", sdk.ErrNoSource), sdk.ErrNoSource},
		{"invalid options", &sdk.OptionsError{Diagnostics: []sdk.Diagnostic{{Summary: "bad", Option: "x"}}}, sdk.ErrInvalidOptions},
		{"not supported", sdk.ErrNotSupported, sdk.ErrNotSupported},
		{"method failed", &sdk.ExitError{Argv0: "pg_basebackup", Code: 1}, sdk.ErrMethodFailed},
		{"cancelled", fmt.Errorf("while copying: %w", context.Canceled), context.Canceled},
		{"timed out", context.DeadlineExceeded, context.DeadlineExceeded},
		{"any other error", errors.New("disk full"), nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := plugintest.Connect(t, failing{tc.err}).Info(t.Context())
			if err == nil || err.Error() != tc.err.Error() {
				t.Fatalf("Describe failing with %q returned %v", tc.err, err)
			}
			for _, k := range kinds {
				if got := errors.Is(err, k); got != (k == tc.want) {
					t.Errorf("errors.Is(%q, %q) = %v after the wire", err, k, got)
				}
			}
		})
	}
}

// planner plans a clone that runs its method's name.
type planner struct{ failing }

func (planner) PlanClone(_ context.Context, req sdk.CloneRequest) (sdk.Plan, error) {
	return sdk.Plan{Commands: []sdk.Command{{Argv: []string{req.Method}}}}, nil
}

// Planning crosses the wire; a plan the plugin cannot make is sdk.ErrNotSupported.
func TestPlanAcrossTheWire(t *testing.T) {
	c := plugintest.Connect(t, planner{})
	plan, err := c.PlanClone(t.Context(), sdk.CloneRequest{Method: "copy"})
	if err != nil || len(plan.Commands) != 1 || plan.Commands[0].Argv[0] != "copy" {
		t.Errorf("PlanClone = %+v, %v; want the command copy", plan, err)
	}
	if _, err := c.PlanBootstrap(t.Context(), sdk.BootstrapRequest{Method: "copy"}); !errors.Is(err, sdk.ErrNotSupported) {
		t.Errorf("PlanBootstrap of a plugin that plans no bootstrap returned %v, want sdk.ErrNotSupported", err)
	}
}
