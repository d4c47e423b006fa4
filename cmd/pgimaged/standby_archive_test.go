package main_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/pgimaged/pgimaged/internal/pgtest"
)

// TestStandbyClusterFromPgBackRestArchive is a second site that never connects to the first:
// the first site's primary archives its WAL into a pgBackRest repository (archive_command) that
// holds a full backup, and the second site's standby_cluster block has no host, only a
// restore_command (pgbackrest archive-get) and create_replica_methods = ["pgbackrest"]. Its
// leader is restored from the repository and replays the archive as the standby leader, with
// the remote's system identifier in initialize; its other member cascades from it. A row
// written on the first site reaches both members once its WAL segment is switched and
// archived; neither is writable.
func TestStandbyClusterFromPgBackRestArchive(t *testing.T) {
	repo := pgtest.NewBackRest(t)
	a := repo.Primary
	a.Exec(t, "CREATE TABLE t (id int)")
	a.Exec(t, "INSERT INTO t VALUES (1)")
	repo.SwitchAndArchive(t)

	b := backend{kind: "file"}.cluster(t, "site-b")
	b.superPass, b.replPass = a.SuperPass, a.ReplPass // the first site's roles
	b.shared = fmt.Sprintf("method \"pgbackrest\" {\n  config = %q\n  stanza = %q\n}\n", repo.Config, repo.Stanza)
	// The repository's configuration names the first site's data directory: each member's
	// archive-get names its own, as pgbackrest.conf on a host of the second site would.
	member := func(name string) *node {
		n := b.member(t, name, fmt.Sprintf("standby_cluster {\n  restore_command        = %q\n  create_replica_methods = [\"pgbackrest\"]\n}\n",
			fmt.Sprintf("%s --config=%s --stanza=%s --pg1-path=DATADIR archive-get %%f \"%%p\"", repo.Bin, repo.Config, repo.Stanza)))
		editConfig(t, n, "--pg1-path=DATADIR", "--pg1-path="+n.dataDir)
		return n
	}
	b1, b2 := member("b1"), member("b2")
	if r := run(t, b1.env, "validate", "-config", b1.config); r.code != 0 || !strings.Contains(r.stdout, "no remote primary") {
		t.Fatalf("validate of the archive-only standby cluster: %s", r)
	}
	if p, r := plan(t, b1); p.Path != "bootstrap" || p.Source != "none" || len(p.Methods) != 1 || p.Methods[0].Skipped != "" || len(p.Methods[0].Commands) == 0 {
		t.Fatalf("plan of the first member: want a restore from the repository, without a source:\n%s", r)
	}

	ag1 := b1.start(t)
	waitStandbyCluster(t, b1, []*agentProc{ag1}, "b1")
	siteB := []*agentProc{ag1, b2.start(t)}
	stopAllAtCleanup(t, siteB[1])
	st := waitStandbyCluster(t, b1, siteB, "b1", "b2")
	sysid := fmt.Sprint(a.SystemIdentifier(t))
	if got := sysidOf(t, b1); got != sysid {
		t.Fatalf("the standby leader has system identifier %s, the first site %s", got, sysid)
	}
	if st.Initialize == nil || *st.Initialize != sysid {
		t.Errorf("initialize of the standby cluster holds %v, want the first site's %s", st.Initialize, sysid)
	}
	waitStreaming(t, b1, "b2")
	waitRows(t, b1, 1)
	waitRows(t, b2, 1)

	a.Exec(t, "INSERT INTO t VALUES (2)")
	a.Exec(t, "SELECT pg_switch_wal()")
	for _, n := range []*node{b1, b2} {
		waitRows(t, n, 2)
		conn := connectTCP(t, n.port, "postgres", n.superPass, "postgres")
		if got := queryString(t, conn, "SELECT pg_is_in_recovery()::text"); got != "true" {
			t.Errorf("%s is not in recovery: it is a writable primary", n.name)
		}
		_ = conn.Close(t.Context())
	}
	if out := siteB[0].out.String(); strings.Contains(out, "running /usr/lib/postgresql/15/bin/initdb") {
		t.Errorf("the standby leader ran initdb:\n%s", out)
	}
}
