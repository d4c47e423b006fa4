package pg_test

import (
	"context"
	"net"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgimaged/pgimaged/core/pg"
	"github.com/pgimaged/pgimaged/internal/pgtest"
	"github.com/pgimaged/pgimaged/internal/testenv"
)

// target_session_attrs=read-write in a connection of several hosts picks the primary for a
// replication connection too, where SQL cannot be run, with the standby listed first; with the
// standby alone the connection fails.
func TestReadWriteReplicationConnection(t *testing.T) {
	primary := pgtest.StartPrimary(t, pgtest.Options{})
	dir := filepath.Join(testenv.PostgresUser(t).TempDir(t), "standby")
	primary.Basebackup(t, dir, "--write-recovery-conf")
	standby := primary.StartCopy(t, dir)
	pgtest.WaitFor(t, standby, "pg_is_in_recovery()", "true")

	connect := func(ports ...int) (int, error) {
		c := pg.Conn{Host: "127.0.0.1", User: primary.ReplUser, Params: map[string]string{"target_session_attrs": "read-write"}}
		for range ports[1:] {
			c.Host += ",127.0.0.1"
		}
		c.Ports = ports
		if len(ports) == 1 {
			c.Port, c.Ports = ports[0], nil
		}
		cfg, err := c.Config()
		if err != nil {
			t.Fatal(err)
		}
		cfg.Password = primary.ReplPass
		cfg.RuntimeParams["replication"] = "true"
		delete(cfg.RuntimeParams, "database")
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgconn.ConnectConfig(ctx, cfg)
		if err != nil {
			return 0, err
		}
		defer conn.Close(context.Background())
		_, port, _ := net.SplitHostPort(conn.Conn().RemoteAddr().String())
		return strconv.Atoi(port)
	}
	if got, err := connect(standby.Port, primary.Port); err != nil || got != primary.Port {
		t.Fatalf("standby then primary: connected to port %d (%v), want the primary's %d", got, err, primary.Port)
	}
	if got, err := connect(standby.Port); err == nil {
		t.Fatalf("the standby alone: connected to port %d, want a refusal", got)
	}
}
