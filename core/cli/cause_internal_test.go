package cli

import (
	"strings"
	"testing"
)

func TestExplainError(t *testing.T) {
	cases := []struct {
		name, msg, first, context string
	}{
		{
			name:    "pg_basebackup with a wrong password",
			msg:     `every replica method failed: basebackup (2 attempts): while copying the source into "/tmp/x/data" with pg_basebackup (pg_basebackup: error: connection to server at "127.0.0.1", port 5432 failed: FATAL:  password authentication failed for user "replicator"): /usr/lib/postgresql/15/bin/pg_basebackup exited with code 1; last output: password retrieved from file "/tmp/x/data.pgpass"`,
			first:   `password authentication failed for user "replicator"`,
			context: "every replica method failed",
		},
		{
			name:    "wrapped Go errors",
			msg:     `while connecting to the source node1: dial tcp 127.0.0.1:5: connect: connection refused`,
			first:   "connection refused",
			context: "while connecting to the source node1",
		},
		{
			name:  "a bare message",
			msg:   "fenced",
			first: "fenced",
		},
		{
			name:    "only the first line counts",
			msg:     "start: postmaster exited\n  last log lines:\n    FATAL:  could not bind",
			first:   "postmaster exited",
			context: "start",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := explainError(tc.msg, 200)
			if !strings.HasPrefix(got, tc.first) {
				t.Errorf("explainError = %q, want it to start with %q", got, tc.first)
			}
			if tc.context != "" && !strings.Contains(got, tc.context) {
				t.Errorf("explainError = %q, want it to name the context %q", got, tc.context)
			}
			if short := explainError(tc.msg, 40); len([]rune(short)) > 40 || strings.Contains(short, "\n") {
				t.Errorf("explainError(width 40) = %q: longer than 40 or not one line", short)
			}
		})
	}
}
