package engine

import (
	"testing"

	"github.com/pgimaged/pgimaged/core/config"
)

// With the logging collector on, its files go beside the data directory unless the
// configuration names a log_directory; without it, nothing is added.
func TestServerLogParameters(t *testing.T) {
	n := &Node{Config: &config.Config{DataDir: "/var/lib/postgresql/15/main"}}
	if got := n.ServerLogFile(); got != "/var/lib/postgresql/15/main.pglog/postgresql.log" {
		t.Errorf("ServerLogFile = %q", got)
	}
	for _, tc := range []struct {
		name   string
		params map[string]string
		want   string // log_directory afterwards; "" for none
	}{
		{"no collector", map[string]string{}, ""},
		{"collector off", map[string]string{"logging_collector": "off"}, ""},
		{"collector on", map[string]string{"logging_collector": "on"}, "/var/lib/postgresql/15/main.pglog"},
		{"collector true, quoted", map[string]string{"logging_collector": "'true'"}, "/var/lib/postgresql/15/main.pglog"},
		{"log_directory given", map[string]string{"logging_collector": "on", "log_directory": "/var/log/postgresql"}, "/var/log/postgresql"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n.serverLogParameters(tc.params)
			if got := tc.params["log_directory"]; got != tc.want {
				t.Errorf("log_directory = %q, want %q", got, tc.want)
			}
		})
	}
}
