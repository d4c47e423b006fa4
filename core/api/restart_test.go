package api_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/pgimaged/pgimaged/core/api"
)

func TestParseRestart(t *testing.T) {
	cases := []struct {
		name   string
		body   map[string]any
		status int
		skip   bool
		check  func(t *testing.T, pending bool, role string, wait time.Duration)
	}{
		{name: "empty", body: map[string]any{}},
		{name: "pending and role", body: map[string]any{"restart_pending": true, "role": "replica"},
			check: func(t *testing.T, pending bool, role string, _ time.Duration) {
				if !pending || role != "replica" {
					t.Errorf("pending %v role %q", pending, role)
				}
			}},
		{name: "timeout", body: map[string]any{"timeout": "2min"}, check: func(t *testing.T, _ bool, _ string, wait time.Duration) {
			if wait != 2*time.Minute {
				t.Errorf("wait %s", wait)
			}
		}},
		{name: "a bad role", body: map[string]any{"role": "boss"}, status: http.StatusBadRequest},
		{name: "a negative timeout", body: map[string]any{"timeout": -3.0}, status: http.StatusBadRequest},
		{name: "an unknown key", body: map[string]any{"when": "now"}, status: http.StatusBadRequest},
		{name: "a schedule", body: map[string]any{"schedule": "2030-01-01T00:00"}, status: http.StatusBadRequest},
		{name: "a bad version", body: map[string]any{"postgres_version": "fifteen"}, status: http.StatusBadRequest},
		{name: "a server as new as asked", body: map[string]any{"postgres_version": "15.0"}, skip: true},
		{name: "a server older than asked", body: map[string]any{"postgres_version": "15.9"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, wait, skip, status, text := api.ParseRestart(c.body, 150004)
			if status != c.status || skip != c.skip {
				t.Fatalf("status %d (%s) skip %v, want %d skip %v", status, text, skip, c.status, c.skip)
			}
			if c.check != nil {
				c.check(t, req.Pending, req.Role, wait)
			}
		})
	}
}
