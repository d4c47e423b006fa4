package cli

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/pgimaged/pgimaged/core/engine"
	"github.com/pgimaged/pgimaged/core/pg"
)

// stopAfterOneShot stops, fast, the PostgreSQL a one-shot bootstrap or clone started, for
// --stop, and says so on stderr.
func stopAfterOneShot(ctx context.Context, e *env, node *engine.Node) error {
	srv := &pg.Server{BinDir: node.BinDir(), DataDir: node.Config.DataDir}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := srv.Stop(ctx, "fast"); err != nil {
		return fmt.Errorf("while stopping PostgreSQL (--stop): %w", err)
	}
	fmt.Fprintf(e.stderr, "pgimaged: PostgreSQL stopped (fast shutdown, --stop); data directory %s\n", node.Config.DataDir)
	return nil
}

// sayLeftRunning tells that the PostgreSQL a one-shot bootstrap or clone started is left
// running: where, and the pg_ctl command line that stops it.
func sayLeftRunning(e *env, node *engine.Node) {
	port := 5432
	if _, p, err := pg.SplitListen(node.Config.PostgreSQL.Listen); err == nil && p != 0 {
		port = p
	}
	fmt.Fprintf(e.stderr, "pgimaged: PostgreSQL is left running on port %d, data directory %s; stop it with:\n  %s -D %s stop\n(or run this command with --stop next time)\n",
		port, node.Config.DataDir, shellQuote(filepath.Join(node.BinDir(), "pg_ctl")), shellQuote(node.Config.DataDir))
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:@+,%") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
