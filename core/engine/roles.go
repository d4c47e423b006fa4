package engine

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"

	"github.com/pgimaged/pgimaged/core/pg"
	"github.com/pgimaged/pgimaged/sdk"
)

// ensureRoles creates or alters the superuser (its password), the replication role and, when
// one is configured apart from the superuser, the rewind role.
func (n *Node) ensureRoles(ctx context.Context, srv *pg.Server) error {
	su := n.Config.PostgreSQL.Superuser
	return srv.EnsureRoles(ctx,
		pg.Role{Username: n.superuserName(), Password: su.Password},
		n.Config.PostgreSQL.Replication.Role(), n.Config.PostgreSQL.Rewind.Role())
}

// postBootstrap runs bootstrap.post_bootstrap with a connection string as its last argument,
// as Patroni does. The connection string carries no password; PGPASSFILE names a private
// pgpass file with the superuser's, beside the data directory (never under /tmp), removed
// afterwards, and by the next start if pgimaged is killed meanwhile (the bootstrap's data
// directory is still marked incomplete then).
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
		pf := n.superuserPgpassPath()
		if err := pg.WritePgpass(pf, pg.PassEntry{Host: "*", Port: "*", Database: "*", User: conn.User, Password: pw}); err != nil {
			return err
		}
		defer n.removeSuperuserPgpass()
		maps.Copy(env, pg.PassfileEnv(pf))
	}
	argv = append(argv, conn.DSN())
	rep := n.reporter("post_bootstrap", "")
	if err := sdk.Run(ctx, sdk.Process{Argv: argv, Env: env, Secrets: n.secrets()}, rep); err != nil {
		return err
	}
	return nil
}

// superuserPgpassPath is the pgpass file post_bootstrap gets: beside the data directory.
func (n *Node) superuserPgpassPath() string {
	d := absDir(n.Config.DataDir)
	return filepath.Join(filepath.Dir(d), "."+filepath.Base(d)+".post_bootstrap.pgpass")
}

func (n *Node) removeSuperuserPgpass() {
	if err := os.Remove(n.superuserPgpassPath()); err != nil && !os.IsNotExist(err) {
		n.logger().Error("could not remove the pgpass file of post_bootstrap", "path", n.superuserPgpassPath(), "error", err)
	}
}
