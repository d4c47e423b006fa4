package main

import (
	"strings"
	"testing"
)

// The rejoin and switchover benchmarks are listed and refuse bad flags before they start
// anything.
func TestRejoinAndSwitchoverFlags(t *testing.T) {
	var out, errb strings.Builder
	if code := run([]string{"help"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "\n  rejoin ") || !strings.Contains(out.String(), "\n  switchover ") {
		t.Errorf("help: exit %d, does not list rejoin and switchover:\n%s", code, out.String())
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"rejoin", "-changed", "0"}, "-changed 0"},
		{[]string{"rejoin", "-size", "-1"}, "-size -1"},
		{[]string{"rejoin", "-runs", "0"}, "-runs 0"},
		{[]string{"switchover", "-members", "1"}, "-members 1"},
		{[]string{"switchover", "-runs", "0"}, "-runs 0"},
		{[]string{"switchover", "-nosuch"}, "-nosuch"},
	} {
		out.Reset()
		errb.Reset()
		if code := run(tc.args, &out, &errb); code == 0 || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("%v: exit %d, want a failure naming %q:\n%s", tc.args, code, tc.want, errb.String())
		}
	}
}
