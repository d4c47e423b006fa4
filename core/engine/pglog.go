package engine

import (
	"path/filepath"
	"strings"
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
