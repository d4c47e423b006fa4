package engine

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"

	"github.com/pgimaged/pgimaged/core/dcs"
	"github.com/pgimaged/pgimaged/core/pg"
)

// replicationSource is conn as a source reached as the replication role, with the role's TLS
// settings (they win over what conn says, as Patroni's authentication settings win over a
// member's conn_url) and its password, which travels through a pgpass file.
func replicationSource(n *Node, member string, conn pg.Conn) *Source {
	r := n.Config.PostgreSQL.Replication
	conn.User = r.Username
	if conn.Database == "" {
		conn.Database = "postgres"
	}
	return &Source{Member: member, Conn: conn.WithTLS(r.TLS, true), Password: r.Password}
}

// rewindSource is member m as a source for a rewind: reached at its conn_url as the rewind
// role (authentication.rewind, by default the superuser; pg_rewind reads files through an
// ordinary connection), with that role's TLS settings. nil when its conn_url cannot be read.
func rewindSource(n *Node, m dcs.Member) *Source {
	conn, _, err := pg.ParseConnURL(m.ConnURL)
	if err != nil {
		return nil
	}
	return rewindAt(n, m.Name, conn)
}

// rewindAt is the server conn names (member: its member name, "" for the remote) as a source
// for pg_rewind: as the rewind role, with its TLS settings.
func rewindAt(n *Node, member string, conn pg.Conn) *Source {
	r := n.Config.PostgreSQL.Rewind
	conn.User = r.Username
	if conn.Database == "" {
		conn.Database = "postgres"
	}
	return &Source{Member: member, Conn: conn.WithTLS(r.TLS, true), Password: r.Password}
}

// superuserAt is the server conn names (member: its member name, "" for none) reached as the
// superuser, with its TLS settings and password.
func superuserAt(n *Node, member string, conn pg.Conn) *Source {
	su := n.Config.PostgreSQL.Superuser
	conn.User = n.superuserName()
	if conn.Database == "" {
		conn.Database = "postgres"
	}
	return &Source{Member: member, Conn: conn.WithTLS(su.TLS, true), Password: su.Password}
}

// RemoteSource is the remote primary of a standby cluster (the standby_cluster block) as a
// source: its hosts and ports, as the replication role with its TLS settings. nil when this is
// not a standby cluster or the block names no host (it follows an archive alone).
func RemoteSource(n *Node) *Source {
	remote := n.standbyBlock().Remote()
	if remote == nil {
		return nil
	}
	return replicationSource(n, "", *remote)
}

// serviceName is the service of the file that holds the client key's passphrase for methods.
const serviceName = "pgimaged"

// ServicePath is the connection service file that hands the methods the passphrase of the
// client key (sslpassword), which has no place on a command line: beside the data directory
// like the pgpass file, 0600, only while methods run.
func (n *Node) ServicePath() string {
	d := absDir(n.Config.DataDir)
	return filepath.Join(filepath.Dir(d), "."+filepath.Base(d)+".pg_service.conf")
}

// serviceEnv is what libpq programs need to find the passphrase in [Node.ServicePath]; none
// when the source has no passphrase.
func (n *Node) serviceEnv(src *Source) map[string]string {
	if src == nil || src.Conn.SSLPassword == "" {
		return map[string]string{}
	}
	return map[string]string{"PGSERVICEFILE": n.ServicePath(), "PGSERVICE": serviceName}
}

// methodEnv is the environment a replica method gets for src: PGPASSFILE (passfile, when the
// source has a password, with an empty PGPASSWORD: see [pg.PassfileEnv]) and, when the client key has a passphrase, the service file, written
// here; done removes it.
func (n *Node) methodEnv(src *Source, passfile string) (env map[string]string, done func(), err error) {
	env = n.serviceEnv(src)
	if src != nil && passfile != "" {
		maps.Copy(env, pg.PassfileEnv(passfile))
	}
	if len(env) == 0 || env["PGSERVICEFILE"] == "" {
		return env, func() {}, nil
	}
	if err := os.MkdirAll(filepath.Dir(n.ServicePath()), 0o700); err != nil {
		return nil, nil, fmt.Errorf("while creating the directory of the service file %q: %w", n.ServicePath(), err)
	}
	if err := pg.WriteServiceFile(n.ServicePath(), serviceName, src.Conn); err != nil {
		return nil, nil, err
	}
	return env, n.removeServiceFile, nil
}

// removeServiceFile removes the file [Node.methodEnv] writes, if it is there.
func (n *Node) removeServiceFile() {
	if err := os.Remove(n.ServicePath()); err != nil && !errors.Is(err, os.ErrNotExist) {
		n.logger().Error("could not remove the service file", "path", n.ServicePath(), "error", err)
	}
}

// plannedEnv is methodEnv's environment without writing anything, for plan.
func (n *Node) plannedEnv(src *Source) map[string]string {
	env := maps.Clone(n.serviceEnv(src))
	if src != nil && src.Password != "" {
		maps.Copy(env, pg.PassfileEnv(n.PgpassPath()))
	}
	return env
}
