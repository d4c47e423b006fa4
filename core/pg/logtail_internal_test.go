package pg

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// With the logging collector on, the file pg_ctl was given says only that the messages went
// to the collector: the tail of a server's log is then the collector's current stderr file
// too, where current_logfiles names it, so that a failed start shows PostgreSQL's reason.
func TestLogTailFollowsTheLoggingCollector(t *testing.T) {
	redirect := []string{
		"2026-12-07 17:42:43.921 UTC [1480] LOG:  redirecting log output to logging collector process",
		`2026-12-07 17:42:43.921 UTC [1480] HINT:  Future log output will appear in directory "/srv/pg/data.pglog".`,
	}
	fatal := `2026-12-07 17:42:44.010 UTC [1484] FATAL:  could not open file "pg_wal/00000002.history": Permission denied`
	for name, c := range map[string]struct {
		pgctl, current, collector []string
		want                      []string
	}{
		"no collector":            {[]string{fatal}, nil, nil, []string{fatal}},
		"collector":               {redirect, []string{"stderr data.pglog/postgresql-Mon.log"}, []string{fatal}, append(slices.Clone(redirect), fatal)},
		"collector, csvlog alone": {redirect, []string{"csvlog data.pglog/postgresql-Mon.csv"}, nil, redirect},
		"failed before the collector started, an old current_logfiles": {
			append(slices.Clone(redirect), `2026-12-07 18:00:00.000 UTC [1600] FATAL:  invalid value for parameter "max_connections"`),
			[]string{"stderr data.pglog/postgresql-Mon.log"}, []string{fatal},
			append(slices.Clone(redirect), `2026-12-07 18:00:00.000 UTC [1600] FATAL:  invalid value for parameter "max_connections"`)},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			data := filepath.Join(dir, "data")
			s := &Server{DataDir: data, LogFile: filepath.Join(dir, "data.pglog", "postgresql.log")}
			write := func(path string, lines []string) {
				if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			write(s.LogFile, c.pgctl)
			if c.current != nil {
				// log_directory as pgimaged sets it: absolute, beside the data directory.
				write(filepath.Join(data, "current_logfiles"), []string{strings.Replace(c.current[0], " ", " "+dir+"/", 1)})
			}
			if c.collector != nil {
				write(filepath.Join(dir, "data.pglog", "postgresql-Mon.log"), c.collector)
			}
			if got := s.LogTail(10); !slices.Equal(got, c.want) {
				t.Errorf("LogTail = %q\nwant %q", got, c.want)
			}
		})
	}
}
