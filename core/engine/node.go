// Package engine makes pgimaged's decisions and carries them out: it validates a configuration
// against the plugins that will run it, runs the chain of replica methods, bootstraps a new
// cluster, turns a filled data directory into a running primary or standby, and drives the node
// loop that races for the DCS `initialize` key.
//
// Every decision of the node loop is made by one pure function, [Decide], fed an [Observation]
// ([Node.Observe]); `pgimaged run` ([Agent]) carries the [Action] out and `pgimaged plan`
// ([Node.Plan]) prints it. The safety invariants the engine keeps, where each is enforced and
// which test checks it, are written down in docs/invariants.md.
package engine

import (
	"context"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/pgimaged/pgimaged/core/config"
	"github.com/pgimaged/pgimaged/core/pg"
	"github.com/pgimaged/pgimaged/core/plugin"
	"github.com/pgimaged/pgimaged/sdk"
	"github.com/pgimaged/pgimaged/sdk/syncfs"
)

// Node is one member's engine: its configuration, its plugins and where it reports.
type Node struct {
	Config *config.Config
	// Catalog is the installed plugins; Plugins, if set, replaces it (tests run plugins
	// in-process through it).
	Catalog *plugin.Catalog
	Plugins Plugins
	Logger  hclog.Logger
	// Progress, if set, sees every progress event of a running method (for a terminal display).
	Progress func(method string, p sdk.Progress)
	// Prepare, if set, adjusts every PostgreSQL program pgimaged runs before it starts.
	Prepare func(*exec.Cmd)
	// Version is pgimaged's version, published in the member key.
	Version string
	// Events, if set, observes attempts, plugin launches and DCS errors (for metrics).
	Events Events

	binOnce sync.Once
	binDir  string
	binVer  int

	// standby is the standby_cluster block the DCS decides on (standby_follow.go).
	standby standbyView
}

func (n *Node) logger() hclog.Logger {
	if n.Logger == nil {
		return hclog.NewNullLogger()
	}
	return n.Logger
}

// BinDir is postgresql.bin_dir, or where the PostgreSQL server binaries are found.
func (n *Node) BinDir() string {
	n.binOnce.Do(func() {
		n.binDir = n.Config.PostgreSQL.BinDir
		if n.binDir == "" {
			n.binDir = FindBinDir()
		}
		if v, err := pg.BinVersion(context.Background(), n.binDir); err == nil {
			n.binVer = v
		}
	})
	return n.binDir
}

// ServerVersion is the server_version_num of the binaries in BinDir, 0 if unknown.
func (n *Node) ServerVersion() int {
	n.BinDir()
	return n.binVer
}

// FindBinDir looks for the PostgreSQL server binaries: the newest /usr/lib/postgresql/<v>/bin,
// then pg_config --bindir, then the directory of `postgres` in PATH.
func FindBinDir() string {
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
	sort.Slice(matches, func(i, j int) bool {
		vi, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(filepath.Dir(matches[i]))), 64)
		vj, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(filepath.Dir(matches[j]))), 64)
		return vi > vj
	})
	if len(matches) > 0 {
		return filepath.Dir(matches[0])
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		if d := strings.TrimSpace(string(out)); d != "" {
			if _, err := os.Stat(filepath.Join(d, "postgres")); err == nil {
				return d
			}
		}
	}
	if p, err := exec.LookPath("postgres"); err == nil {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			p = r
		}
		return filepath.Dir(p)
	}
	return ""
}

func (n *Node) cluster() sdk.Cluster {
	return sdk.Cluster{
		Scope: n.Config.Scope, Name: n.Config.Name, DataDir: n.Config.DataDir,
		BinDir: n.BinDir(), ServerVersion: n.ServerVersion(),
	}
}

// server describes this node's PostgreSQL for pg_ctl and local connections.
func (n *Node) server() (*pg.Server, error) {
	_, port, err := pg.SplitListen(n.Config.PostgreSQL.Listen)
	if err != nil {
		return nil, err
	}
	if port == 0 {
		port = 5432
	}
	timeout := n.Config.PostgreSQL.PGCtlTimeout
	// No SocketDir: a running server says where it listens (postmaster.pid), wherever
	// unix_socket_directories put its socket; the password is for a server without one.
	return &pg.Server{
		BinDir: n.BinDir(), DataDir: n.Config.DataDir, Port: port,
		User: n.superuserName(), Password: n.Config.PostgreSQL.Superuser.Password, TLS: n.Config.PostgreSQL.Superuser.TLS,
		StartTimeout: timeout, StopTimeout: timeout, Prepare: n.Prepare, LogFile: n.ServerLogFile(),
	}, nil
}

// localConn is how pgimaged reaches its own server, as the superuser: over the unix socket
// where the running server listens (peer authentication through pgimaged's ident map), or over
// TCP when unix_socket_directories is empty. It carries no password.
func (n *Node) localConn(srv *pg.Server) pg.Conn {
	return srv.Conn()
}

func (n *Node) superuserName() string {
	if u := n.Config.PostgreSQL.Superuser.Username; u != "" {
		return u
	}
	return "postgres"
}

// settings is what WriteSettings gets from the configuration, for a server that starts as a
// primary (a bootstrapped or adopted one) or as a replica.
func (n *Node) settings(primary bool) pg.Settings {
	params := map[string]string{}
	// Replicas cloned at the same moment each make the primary switch WAL and checkpoint; kept
	// WAL lets every pg_basebackup's WAL stream find its start even when another backup's
	// checkpoint would otherwise have recycled it. A replica has no such clones to serve. The
	// configuration's parameters win.
	if v := n.ServerVersion(); primary && v >= 130000 {
		params["wal_keep_size"] = "128MB"
	} else if primary && v > 0 {
		params["wal_keep_segments"] = "8"
	}
	// A server that starts after a crash, or from a base backup (backup_label), first syncs its
	// data directory, pg_wal and tablespaces; by default it fsyncs every file, which on a fresh
	// replica takes longer than its recovery. One syncfs per file system is as durable where
	// syncfs reports writeback errors (Linux 5.8 and later).
	if v := n.ServerVersion(); v >= 140000 && syncfs.Supported() {
		params["recovery_init_sync_method"] = "syncfs"
	}
	// pg_rewind can bring a former primary back only if it logged hint-bit changes: on every
	// member, since any may become the primary, as Patroni does. Redundant, and harmless, on a
	// cluster with data checksums.
	params["wal_log_hints"] = "on"
	for k, v := range n.Config.PostgreSQL.Parameters {
		params[k] = v
	}
	n.serverLogParameters(params)
	var hba []string
	if n.Config.PostgreSQL.PGHBA != nil {
		hba = append([]string{}, n.Config.PostgreSQL.PGHBA...)
	}
	return pg.Settings{
		Listen: n.Config.PostgreSQL.Listen, Parameters: params, HBA: hba,
		Superuser: n.Config.PostgreSQL.Superuser.Username,
	}
}

// secrets are the passwords, and the option values read by env() or file(), that must never
// show in logs or command lines.
func (n *Node) secrets() sdk.Masker {
	var m sdk.Masker
	pgc := n.Config.PostgreSQL
	for _, s := range slices.Concat(pgc.Superuser.Secrets(), pgc.Replication.Secrets(), pgc.Rewind.Secrets(), []string{n.Config.DCS.Password, n.Config.API.Password}) {
		if s != "" {
			m = append(m, s)
		}
	}
	// What options read by env() or file(), element by element in lists and maps.
	for _, label := range slices.Sorted(maps.Keys(n.Config.Methods)) {
		for _, s := range n.Config.Methods[label].OptionSecrets {
			if s != "" {
				m = append(m, s)
			}
		}
	}
	for i, o := range n.Config.Bootstrap.Initdb {
		if i < len(n.Config.Bootstrap.InitdbHidden) && n.Config.Bootstrap.InitdbHidden[i] && o.Value != "" {
			m = append(m, o.Value)
		}
	}
	return m
}

// methodReporter passes a method's events to the node's log and progress hook and keeps the
// last log lines for the attempt history.
type methodReporter struct {
	logger   hclog.Logger
	mask     sdk.Masker
	label    string
	progress func(string, sdk.Progress)
	mu       sync.Mutex
	tail     []string
	bytes    int64 // the largest byte count reported
}

func (n *Node) reporter(label, pluginName string) *methodReporter {
	return &methodReporter{
		logger:   n.logger().With("method", label, "plugin", pluginName),
		mask:     n.secrets(),
		label:    label,
		progress: n.Progress,
	}
}

func (r *methodReporter) Log(level sdk.Level, msg string, kv ...any) {
	msg = r.mask.Mask(msg)
	for i := 1; i < len(kv); i += 2 {
		if s, ok := kv[i].(string); ok {
			kv[i] = r.mask.Mask(s)
		}
	}
	r.logger.Log(plugin.LogLevel(level), msg, kv...)
	r.mu.Lock()
	r.tail = append(r.tail, msg)
	if len(r.tail) > 20 {
		r.tail = r.tail[len(r.tail)-20:]
	}
	r.mu.Unlock()
}

func (r *methodReporter) Progress(p sdk.Progress) {
	r.noteProgress(p)
	if r.progress != nil {
		r.progress(r.label, p)
	}
}

func (r *methodReporter) lines() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.tail...)
}

// sleepCtx waits d or until ctx ends; false when ctx ended.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
