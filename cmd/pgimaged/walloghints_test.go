package main_test

import (
	"testing"
	"time"
)

// TestBootstrapSetsWalLogHints: a bootstrapped primary logs hint-bit changes, so that pg_rewind
// can bring it back once another member has been promoted, unless the configuration's
// parameters say otherwise.
func TestBootstrapSetsWalLogHints(t *testing.T) {
	cases := []struct {
		name   string
		params string // added to postgresql.parameters
		want   string
	}{
		{name: "by default", want: "on"},
		{name: "the configuration's value wins", params: `, wal_log_hints = "off"`, want: "off"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := newNode(t, "primary", "", "")
			if tc.params != "" {
				rewriteParams(t, n, tc.params)
			}
			r := runBounded(t, 90*time.Second, n.env, "bootstrap", "-config", n.config)
			if r.code != 0 {
				t.Fatalf("bootstrap failed: %s\nserver log:\n%s", r, n.serverLog())
			}
			conn := connectTCP(t, n.port, "postgres", n.superPass, "postgres")
			if v := queryString(t, conn, "SHOW wal_log_hints"); v != tc.want {
				t.Errorf("the bootstrapped primary runs with wal_log_hints = %s, want %s", v, tc.want)
			}
		})
	}
}
