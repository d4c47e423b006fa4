package engine_test

import (
	"strings"
	"testing"

	"github.com/pgimaged/pgimaged/core/config"
	"github.com/pgimaged/pgimaged/core/dcs"
	"github.com/pgimaged/pgimaged/core/engine"
	"github.com/pgimaged/pgimaged/core/pg"
)

// TestSourcesCarryReplicationTLS: a member chosen as source, and a standby cluster's remote,
// are reached with the replication role's TLS settings, which win over the member's conn_url;
// the key's passphrase stays out of the DSN and of Describe.
func TestSourcesCarryReplicationTLS(t *testing.T) {
	n := testNode("node2")
	n.Config.PostgreSQL.Replication.TLS = pg.TLS{Mode: "verify-full", RootCert: "/etc/pgimaged/ca.crt", Cert: "/etc/pgimaged/c.crt", Key: "/etc/pgimaged/c.key", Password: "key-passphrase"}
	cl := dcs.Cluster{Leader: "node1", Members: []dcs.Member{
		member("node1", "running", "primary", "postgres://10.0.0.1:5432/postgres?sslmode=disable", false),
	}}
	src := engine.CloneSource(n, cl)
	if src == nil {
		t.Fatal("no source")
	}
	want := "host=10.0.0.1 port=5432 user=replicator dbname=postgres sslcert=/etc/pgimaged/c.crt sslkey=/etc/pgimaged/c.key sslmode=verify-full sslrootcert=/etc/pgimaged/ca.crt"
	if got := src.Conn.DSN(); got != want {
		t.Errorf("source DSN = %q\nwant %q", got, want)
	}
	if src.Password != "repl-secret" || src.Conn.SSLPassword != "key-passphrase" {
		t.Errorf("source credentials: password %t, passphrase %t", src.Password == "repl-secret", src.Conn.SSLPassword == "key-passphrase")
	}
	if d := src.Describe(); strings.Contains(d, "key-passphrase") || strings.Contains(d, "repl-secret") {
		t.Errorf("Describe shows a secret: %s", d)
	}

	if engine.RemoteSource(n) != nil {
		t.Error("a remote source without a standby_cluster block")
	}
	n.Config.StandbyCluster = &config.StandbyCluster{Host: "10.1.0.5,10.1.0.6", Ports: []int{5432, 5433}}
	remote := engine.RemoteSource(n)
	if remote == nil {
		t.Fatal("no remote source")
	}
	if got, want := remote.Conn.DSN(), "host=10.1.0.5,10.1.0.6 port=5432,5433 user=replicator dbname=postgres sslcert=/etc/pgimaged/c.crt sslkey=/etc/pgimaged/c.key sslmode=verify-full sslrootcert=/etc/pgimaged/ca.crt target_session_attrs=read-write"; got != want {
		t.Errorf("remote DSN (several hosts: the one that accepts writes) = %q\nwant %q", got, want)
	}
	if remote.Member != "" || remote.Password != "repl-secret" {
		t.Errorf("remote = %+v", remote)
	}
	n.Config.StandbyCluster = &config.StandbyCluster{RestoreCommand: "cp /archive/%f %p"}
	if engine.RemoteSource(n) != nil {
		t.Error("an archive-only standby cluster has a remote source")
	}
}
