package engine

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/pgimaged/pgimaged/core/pg"
	"github.com/pgimaged/pgimaged/sdk"
)

// ensureRoles creates or alters the superuser (its password) and the replication role.
func (n *Node) ensureRoles(ctx context.Context, srv *pg.Server) error {
	su := n.Config.PostgreSQL.Superuser
	repl := n.Config.PostgreSQL.Replication
	return srv.EnsureRoles(ctx,
		pg.Role{Username: n.superuserName(), Password: su.Password},
		pg.Role{Username: repl.Username, Password: repl.Password})
}

// postBootstrap runs bootstrap.post_bootstrap with a connection string as its last argument,
// as Patroni does. The connection string carries no password; PGPASSFILE names a private
// pgpass file with the superuser's.
func (n *Node) postBootstrap(ctx context.Context, srv *pg.Server) error {
	cmdline := n.Config.Bootstrap.PostBootstrap
	if cmdline == "" {
		return nil
	}
	argv, err := sdk.SplitCommand(cmdline)
	if err != nil {
		return err
	}
	if len(argv) == 0 {
		return fmt.Errorf("post_bootstrap is empty")
	}
	conn := n.localConn(srv)
	env := map[string]string{}
	if pw := n.Config.PostgreSQL.Superuser.Password; pw != "" {
		dir, err := os.MkdirTemp("", "pgimaged-pgpass-")
		if err != nil {
			return fmt.Errorf("while creating a directory for the pgpass file: %w", err)
		}
		defer os.RemoveAll(dir)
		pf := filepath.Join(dir, "pgpass")
		if err := pg.WritePgpass(pf, pg.PassEntry{Host: "*", Port: "*", Database: "*", User: conn.User, Password: pw}); err != nil {
			return err
		}
		env["PGPASSFILE"] = pf
	}
	argv = append(argv, conn.DSN())
	rep := n.reporter("post_bootstrap", "")
	if err := sdk.Run(ctx, sdk.Process{Argv: argv, Env: env, Secrets: n.secrets()}, rep); err != nil {
		return err
	}
	return nil
}
