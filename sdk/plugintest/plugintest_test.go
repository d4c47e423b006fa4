package plugintest_test

import (
	"context"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/pgimaged/pgimaged/sdk"
	"github.com/pgimaged/pgimaged/sdk/plugintest"
)

// stubborn bootstraps without looking at its context: a cancelled call still succeeds.
type stubborn struct{}

func (stubborn) Describe(context.Context, sdk.DescribeRequest) (sdk.DescribeResponse, error) {
	return sdk.DescribeResponse{Name: "stubborn", Version: "1", Schema: sdk.Schema{Options: []sdk.OptionSpec{
		{Name: "level", Type: sdk.TypeInt},
	}}}, nil
}

func (stubborn) Bootstrap(context.Context, sdk.BootstrapRequest, sdk.Reporter) (sdk.Result, error) {
	return sdk.Result{Summary: "done anyway"}, nil
}

const helperEnv = "PLUGINTEST_SELF_TEST"

// TestConformanceReports: Conformance finds a bootstrap that ignores cancellation, reports it at
// the caller's line, takes the schema's refusals as pgimaged does, and keeps go-plugin's debug
// lines out of `go test -v`. The suite runs on a stubborn plugin in a child process of this
// test (where it must fail), and this test reads what it printed.
func TestConformanceReports(t *testing.T) {
	if os.Getenv(helperEnv) != "" {
		plugintest.Conformance(t, stubborn{}, plugintest.Suite{ // the line failures must point at
			InvalidOptions: []plugintest.InvalidCase{
				{Name: "level not a number", Option: "level", Request: sdk.ValidateRequest{Options: sdk.Options{{Name: "level", Value: "high"}}}},
			},
		})
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestConformanceReports$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("Conformance passed a bootstrap that ignores cancellation:\n%s", out)
	}
	text := string(out)
	if !strings.Contains(text, "--- FAIL: TestConformanceReports/bootstrap-cancelled") {
		t.Errorf("no failing bootstrap-cancelled check:\n%s", text)
	}
	if !strings.Contains(text, "--- PASS: TestConformanceReports/validate-refuses/level_not_a_number") {
		t.Errorf("the schema's refusal of a wrong type was not taken:\n%s", text)
	}
	src, err := os.ReadFile("plugintest_test.go")
	if err != nil {
		t.Fatal(err)
	}
	line := 0
	for i, l := range strings.Split(string(src), "\n") {
		if strings.Contains(l, "// the line failures must point at") {
			line = i + 1
			break
		}
	}
	at := regexp.MustCompile(`(?m)^\s+(\S+\.go):(\d+): Bootstrap with a cancelled context`).FindStringSubmatch(text)
	if at == nil || at[1] != "plugintest_test.go" || at[2] != itoa(line) {
		t.Errorf("the failure is not reported at plugintest_test.go:%d:\n%s", line, text)
	}
	if strings.Contains(text, "[DEBUG]") || strings.Contains(text, "[TRACE]") {
		t.Errorf("debug lines in the output:\n%s", text)
	}
}

func itoa(n int) string {
	const digits = "0123456789"
	if n < 10 {
		return digits[n : n+1]
	}
	return itoa(n/10) + digits[n%10:n%10+1]
}
