package main

import (
	"strings"
	"testing"
)

// The standby benchmark is listed and refuses bad flags before it starts anything.
func TestStandbyFlags(t *testing.T) {
	var out, errb strings.Builder
	if code := run([]string{"help"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "\n  standby ") {
		t.Errorf("help: exit %d, does not list standby:\n%s", code, out.String())
	}
	for _, args := range [][]string{{"standby", "-runs", "0"}, {"standby", "-nosuch"}} {
		out.Reset()
		errb.Reset()
		if code := run(args, &out, &errb); code == 0 || !strings.Contains(errb.String(), args[1]) {
			t.Errorf("%v: exit %d, want a failure naming %q:\n%s", args, code, args[1], errb.String())
		}
	}
}
