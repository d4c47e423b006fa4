package proc_test

import (
	"testing"

	"github.com/pgimaged/pgimaged/core/plugin/host/proc"
)

func TestParseStat(t *testing.T) {
	cases := []struct {
		name, stat string
		want       proc.Process
		ok         bool
	}{
		{"plain", "42 (sleep) S 7 42 7 0 -1 4194304 80 0 0 0 0 0 0 0 20 0 1 0 123456 5726208 128 18446744073709551615",
			proc.Process{PID: 42, Comm: "sleep", State: 'S', PPID: 7, PGID: 42, SID: 7, Start: 123456}, true},
		{"command name with spaces and parentheses", "43 (a (b) c) R 1 2 3 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 99 0 0 0",
			proc.Process{PID: 43, Comm: "a (b) c", State: 'R', PPID: 1, PGID: 2, SID: 3, Start: 99}, true},
		{"zombie", "44 (sh) Z 1 44 44 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 7 0 0 0",
			proc.Process{PID: 44, Comm: "sh", State: 'Z', PPID: 1, PGID: 44, SID: 44, Start: 7}, true},
		{"cut short", "45 (sh) S 1 45", proc.Process{}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pid := tc.want.PID
			if pid == 0 {
				pid = 45
			}
			got, ok := proc.ParseStat(pid, tc.stat)
			if ok != tc.ok || (ok && got != tc.want) {
				t.Errorf("ParseStat = %+v, %v; want %+v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}
