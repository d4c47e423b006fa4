package main_test

import (
	"fmt"
	"io/fs"
	"path/filepath"
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

// TestStandbyClusterRestoreCommandFails: the second site's restore_command always fails (a
// stanza the repository does not have). The standby leader restored from the repository cannot
// replay the archive: its member publishes that it cannot restore WAL, with the command's
// reason from PostgreSQL's log, and tries again; nothing bootstraps a cluster of its own,
// nothing is writable, the repository is left as it was and no password shows in a log. Its
// server runs with the logging collector, whose file holds the messages and the command's output.
func TestStandbyClusterRestoreCommandFails(t *testing.T) {
	repo := pgtest.NewBackRest(t)
	a := repo.Primary
	a.Exec(t, "CREATE TABLE t (id int)")
	repo.SwitchAndArchive(t)

	b := backend{kind: "file"}.cluster(t, "site-b")
	b.superPass, b.replPass = a.SuperPass, a.ReplPass
	b.shared = fmt.Sprintf("method \"pgbackrest\" {\n  config = %q\n  stanza = %q\n}\n", repo.Config, repo.Stanza)
	b1 := b.member(t, "b1", fmt.Sprintf("standby_cluster {\n  restore_command        = %q\n  create_replica_methods = [\"pgbackrest\"]\n}\n",
		fmt.Sprintf("%s --config=%s --stanza=nowhere --pg1-path=DATADIR archive-get %%f \"%%p\"", repo.Bin, repo.Config)))
	editConfig(t, b1, "--pg1-path=DATADIR", "--pg1-path="+b1.dataDir)
	editConfig(t, b1, "max_connections = 30", `max_connections = 30, logging_collector = "on"`)
	repoDir := filepath.Join(filepath.Dir(repo.Config), "repo")
	before := treeOf(t, repoDir)
	siteB := []*agentProc{b1.start(t)}
	stopAllAtCleanup(t, siteB...)

	sysid := fmt.Sprint(a.SystemIdentifier(t))
	var last string
	waitFor(t, guard, "b1 publishing that it cannot restore WAL", siteB, func() bool {
		st, err := status(t, b1)
		if err != nil {
			return false
		}
		if st.Initialize != nil && *st.Initialize != "" && *st.Initialize != sysid {
			t.Fatalf("initialize holds %s, the first site is %s: a cluster was bootstrapped", *st.Initialize, sysid)
		}
		m, ok := st.member("b1")
		if !ok || m.PGImaged == nil {
			return false
		}
		if m.Role == "primary" || m.Role == "master" {
			t.Fatalf("b1 runs as a primary")
		}
		last = m.PGImaged.LastError
		return strings.Contains(last, "restore_command") && strings.Contains(last, "nowhere")
	})
	t.Logf("b1 publishes: %s", last)
	r := run(t, b1.env, "status", "-config", b1.config)
	if !strings.Contains(r.stdout, "restore_command fails") {
		t.Errorf("status does not say that the standby leader cannot restore WAL:\n%s", r.stdout)
	}
	waitFor(t, guard, "b1 trying again", siteB, func() bool {
		return strings.Count(siteB[0].out.String(), "cannot restore WAL") >= 2
	})
	out := siteB[0].out.String()
	if strings.Contains(out, "running /usr/lib/postgresql/15/bin/initdb") || strings.Contains(out, "bootstrapped") {
		t.Errorf("b1 bootstrapped a cluster of its own:\n%s", out)
	}
	for _, secret := range []string{a.SuperPass, a.ReplPass} {
		if strings.Contains(out, secret) || strings.Contains(r.stdout, secret) {
			t.Errorf("a password shows in b1's log or status")
		}
	}
	if after := treeOf(t, repoDir); after != before {
		t.Errorf("the repository changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// treeOf lists the files under dir with their sizes and modification times, one a line.
func treeOf(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s %d %s\n", path, info.Size(), info.ModTime())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}
