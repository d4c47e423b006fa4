package engine

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"path/filepath"
	"strings"

	"github.com/pgimaged/pgimaged/core/pg"
)

// ServerLogDir is where PostgreSQL's log goes: a directory beside the data directory, named
// after it (<data_dir>.pglog), as the pgpass file is. It is never inside the data directory: a
// base backup of this member must not carry its log into a replica, and a reinit, which empties
// the data directory, must not take the evidence of the server it replaces with it.
func (n *Node) ServerLogDir() string {
	d := absDir(n.Config.DataDir)
	return filepath.Join(filepath.Dir(d), filepath.Base(d)+".pglog")
}

// ServerLogFile is the file in [Node.ServerLogDir] that pg_ctl sends the server's output to
// (pg_ctl -l), appended to across starts, reinits included.
func (n *Node) ServerLogFile() string {
	return filepath.Join(n.ServerLogDir(), "postgresql.log")
}

// serverLogParameters are the parameters that keep the log files of PostgreSQL's logging
// collector beside the data directory too: with logging_collector on and no log_directory in
// the configuration's parameters, log_directory is [Node.ServerLogDir] (PostgreSQL's default,
// "log", is inside the data directory). A log_directory in parameters wins.
func (n *Node) serverLogParameters(params map[string]string) {
	if _, set := params["log_directory"]; set || !settingOn(params["logging_collector"]) {
		return
	}
	params["log_directory"] = n.ServerLogDir()
}

// settingOn reports whether a boolean PostgreSQL setting is on, as PostgreSQL spells it.
func settingOn(v string) bool {
	switch strings.ToLower(strings.Trim(strings.TrimSpace(v), `'"`)) {
	case "on", "true", "yes", "1", "t", "y":
		return true
	}
	return false
}

// Log formats PostgreSQL writes (log_destination), as current_logfiles names them.
const (
	logStderr = "stderr"
	logCSV    = "csvlog"
	logJSON   = "jsonlog"
)

// messageLog is the file PostgreSQL writes its messages to now, and its format: with the
// logging collector on, the file current_logfiles in the data directory names (stderr's
// first, then jsonlog's, then csvlog's; relative to the data directory, where log_directory
// is); otherwise [Node.ServerLogFile], where pg_ctl sends the server's output.
func (n *Node) messageLog() (path, format string) {
	files := pg.CollectorLogs(n.Config.DataDir)
	for _, f := range []string{logStderr, logJSON, logCSV} {
		if file, ok := files[f]; ok {
			return file, f
		}
	}
	return n.ServerLogFile(), logStderr
}

// logLines turns the end of a log in format into lines as the stderr format writes them
// ("... LEVEL:  message"): a csvlog or jsonlog record becomes "LEVEL:  message", the
// message's first line (its first line in the stderr format too). The first
// record of b may be cut off (b is the end of a file): it is skipped when it cannot be read.
func logLines(b []byte, format string) []string {
	switch format {
	case logCSV:
		if i := bytes.IndexByte(b, '\n'); i >= 0 && len(b) == serverLogTail {
			b = b[i+1:]
		}
		r := csv.NewReader(bytes.NewReader(b))
		r.FieldsPerRecord, r.LazyQuotes, r.ReuseRecord = -1, true, true
		var lines []string
		for {
			rec, err := r.Read()
			if errors.Is(err, io.EOF) {
				return lines
			}
			// error_severity and message are the 12th and 14th fields.
			if err == nil && len(rec) > 13 {
				lines = append(lines, rec[11]+":  "+firstLine(rec[13]))
			}
		}
	case logJSON:
		var lines []string
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(make([]byte, 0, 64<<10), serverLogTail+1)
		for sc.Scan() {
			var rec struct {
				Severity string `json:"error_severity"`
				Message  string `json:"message"`
			}
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Severity != "" {
				lines = append(lines, rec.Severity+":  "+firstLine(rec.Message))
			}
		}
		return lines
	}
	return strings.Split(string(b), "\n")
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}
