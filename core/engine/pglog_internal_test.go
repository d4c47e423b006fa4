package engine

import (
	"os"
	"path/filepath"
	"strings"
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

// The WAL receiver's failure is found in the logging collector's files too, in each of the
// formats PostgreSQL 15 writes (records as it wrote them), where current_logfiles names them.
func TestWALReceiverFailureInTheCollectorsFiles(t *testing.T) {
	const refused = `could not connect to the primary server: connection to server at "127.0.0.1", port 1 failed: Connection refused`
	csvLog := `2026-12-07 17:42:43.973 UTC,,,1484,,6b16f013.5cc,2,,2026-12-07 17:42:43 UTC,,0,LOG,00000,"entering standby mode",,,,,,,,,"","startup",,0
2026-12-07 17:42:43.977 UTC,,,1485,,6b16f013.5cd,1,,2026-12-07 17:42:43 UTC,,0,FATAL,08006,"could not connect to the primary server: connection to server at ""127.0.0.1"", port 1 failed: Connection refused
	Is the server running on that host and accepting TCP/IP connections?",,,,,,,,,"","walreceiver",,0
2026-12-07 17:42:44.001 UTC,,,1484,,6b16f013.5cc,5,,2026-12-07 17:42:43 UTC,1/0,0,LOG,00000,"consistent recovery state reached at 0/2000100",,,,,,,,,"","startup",,0
`
	jsonLog := `{"timestamp":"2026-12-07 17:42:43.973 UTC","pid":1484,"session_id":"6b16f013.5cc","line_num":2,"session_start":"2026-12-07 17:42:43 UTC","txid":0,"error_severity":"LOG","state_code":"00000","message":"entering standby mode","backend_type":"startup","query_id":0}
{"timestamp":"2026-12-07 17:42:43.977 UTC","pid":1485,"session_id":"6b16f013.5cd","line_num":1,"session_start":"2026-12-07 17:42:43 UTC","txid":0,"error_severity":"FATAL","state_code":"08006","message":"could not connect to the primary server: connection to server at \"127.0.0.1\", port 1 failed: Connection refused\n\tIs the server running on that host and accepting TCP/IP connections?","backend_type":"walreceiver","query_id":0}
`
	stderrLog := `2026-12-07 17:42:43.977 UTC [1485] FATAL:  ` + refused + "\n\tIs the server running on that host and accepting TCP/IP connections?\n"
	for name, c := range map[string]struct {
		current string // current_logfiles, "" for none
		files   map[string]string
		want    string
	}{
		"no collector":      {"", map[string]string{}, refused},
		"collector, stderr": {"stderr log/postgresql-Mon.log\n", map[string]string{"log/postgresql-Mon.log": stderrLog}, refused},
		"csvlog alone":      {"csvlog log/postgresql.csv\n", map[string]string{"log/postgresql.csv": csvLog}, refused},
		"jsonlog alone":     {"jsonlog log/postgresql.json\n", map[string]string{"log/postgresql.json": jsonLog}, refused},
		"csvlog and jsonlog, the json read": {"csvlog log/postgresql.csv\njsonlog log/postgresql.json\n",
			map[string]string{"log/postgresql.csv": "", "log/postgresql.json": jsonLog}, refused},
		"stderr preferred": {"stderr log/postgresql.log\ncsvlog log/postgresql.csv\n",
			map[string]string{"log/postgresql.log": stderrLog, "log/postgresql.csv": ""}, refused},
		"an absolute log_directory": {"stderr ABS/postgresql.log\n", map[string]string{"ABS/postgresql.log": stderrLog}, refused},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			n := &Node{Config: &config.Config{DataDir: filepath.Join(dir, "data")}}
			abs := filepath.Join(dir, "elsewhere")
			write := func(path, text string) {
				if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			// Without the collector pg_ctl's file holds the messages; with it, a line saying so.
			if c.current == "" {
				write(n.ServerLogFile(), stderrLog)
			} else {
				write(n.ServerLogFile(), "2026-12-07 17:42:43.921 UTC [1480] LOG:  redirecting log output to logging collector process\n")
				write(filepath.Join(n.Config.DataDir, "current_logfiles"), strings.ReplaceAll(c.current, "ABS", abs))
			}
			for f, text := range c.files {
				if strings.HasPrefix(f, "ABS/") {
					write(filepath.Join(abs, strings.TrimPrefix(f, "ABS/")), text)
				} else {
					write(filepath.Join(n.Config.DataDir, f), text)
				}
			}
			if got := walReceiverFailure(n.messageLog()); got != c.want {
				t.Errorf("walReceiverFailure = %q, want %q", got, c.want)
			}
		})
	}
}
