package cli

import (
	"strings"
	"testing"

	"github.com/pgimaged/pgimaged/core/dcs"
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

func TestProgressText(t *testing.T) {
	cases := []struct {
		p    dcs.CloneProgress
		want string
	}{
		{dcs.CloneProgress{Method: "basebackup", Done: 3 << 20, Total: 40 << 20, Unit: "bytes"}, "basebackup 3.0 MiB of 40.0 MiB"},
		{dcs.CloneProgress{Method: "pgbackrest", Done: 42, Total: 100, Unit: "percent"}, "pgbackrest 42%"},
		{dcs.CloneProgress{Method: "walg", Done: 7, Total: 9, Unit: "files"}, "walg 7 of 9 files"},
		{dcs.CloneProgress{Method: "script", Done: 2048, Unit: "bytes"}, "script 2.0 KiB"},
	}
	for _, tc := range cases {
		if got := progressText(tc.p); got != tc.want {
			t.Errorf("progressText(%+v) = %q, want %q", tc.p, got, tc.want)
		}
	}
}
