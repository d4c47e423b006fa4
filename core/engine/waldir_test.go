package engine_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"

	"github.com/pgimaged/pgimaged/core/config"
	"github.com/pgimaged/pgimaged/core/dcs"
	"github.com/pgimaged/pgimaged/core/engine"
	"github.com/pgimaged/pgimaged/core/pg"
	"github.com/pgimaged/pgimaged/internal/pgtest"
	"github.com/pgimaged/pgimaged/internal/testenv"
)

// These tests run real initdb, pg_basebackup and PostgreSQL with pg_wal in a directory of its
// own (the methods' waldir), which the data directory only links to.

// walNode is a node whose data directory and WAL directory lie in a fresh work directory,
// PostgreSQL on a free port; body is added to its configuration (%[1]s in it is the WAL
// directory, %[2]s the listen address).
func walNode(t *testing.T, body string) (n *engine.Node, dataDir, walDir string) {
	t.Helper()
	testenv.RequirePostgresUser(t)
	work := t.TempDir()
	dataDir, walDir = filepath.Join(work, "data"), filepath.Join(work, "wal")
	listen := fmt.Sprintf("127.0.0.1:%d", pgtest.FreePort(t))
	n = loadNode(t, dataDir, fmt.Sprintf(body, walDir, listen))
	t.Cleanup(func() { stopServer(t, n) })
	return n, dataDir, walDir
}

// stopServer stops whatever PostgreSQL runs in the node's data directory.
func stopServer(t *testing.T, n *engine.Node) {
	t.Helper()
	srv := &pg.Server{BinDir: n.Config.PostgreSQL.BinDir, DataDir: n.Config.DataDir}
	if _, ok := srv.Running(); ok {
		_ = srv.Stop(context.Background(), "immediate")
	}
}

// walLink checks that the data directory's pg_wal links to walDir and that WAL is there.
func walLink(t *testing.T, dataDir, walDir string) {
	t.Helper()
	target, err := os.Readlink(filepath.Join(dataDir, "pg_wal"))
	if err != nil || filepath.Clean(target) != walDir {
		t.Fatalf("pg_wal is not a link to %s: %q, %v", walDir, target, err)
	}
	if empty, _, _ := pg.IsEmptyDir(walDir); empty {
		t.Fatalf("the WAL directory %s holds no WAL", walDir)
	}
}

// gone checks that a directory the attempt created is gone, or that one that existed (empty)
// before is there and empty again.
func gone(t *testing.T, what, dir string, existed bool) {
	t.Helper()
	empty, exists, err := pg.IsEmptyDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if exists != existed || !empty {
		names, _ := os.ReadDir(dir)
		t.Errorf("after the failed attempt the %s %s: exists %v (before: %v), empty %v (%v)", what, dir, exists, existed, empty, names)
	}
}

func mkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
}

// A bootstrap with initdb's waldir whose server cannot start (a bad parameter) removes what it
// put into the WAL directory too, not only the data directory, and says why PostgreSQL did not
// start; once the parameter is fixed the
// next bootstrap works, and its pg_wal is in the WAL directory.
func TestBootstrapWalDirFailedStartLeavesNothing(t *testing.T) {
	for _, existed := range []bool{false, true} {
		t.Run(fmt.Sprintf("existed=%v", existed), func(t *testing.T) {
			n, dataDir, walDir := walNode(t, `
bootstrap { initdb = [{ waldir = %[1]q }] }
postgresql {
  bin_dir    = "`+testenv.PGBinDir(t)+`"
  listen     = %[2]q
  parameters = { max_connections = "lots" }
}`)
			if existed {
				mkdir(t, walDir)
			}
			_, err := n.Bootstrap(context.Background(), engine.BootstrapOptions{})
			if err == nil {
				t.Fatal("a server with max_connections = lots started")
			}
			if first := strings.SplitN(err.Error(), "\n", 2)[0]; !strings.Contains(first, `invalid value for parameter "max_connections"`) {
				t.Errorf("the error's first line does not give PostgreSQL's reason:\n%v", err)
			}
			gone(t, "data directory", dataDir, false)
			gone(t, "WAL directory", walDir, existed)
			if n.Incomplete() {
				t.Error("the incomplete mark stays after the attempt was undone")
			}

			delete(n.Config.PostgreSQL.Parameters, "max_connections")
			res, err := n.Bootstrap(context.Background(), engine.BootstrapOptions{})
			if err != nil {
				t.Fatalf("the bootstrap after the fix: %v", err)
			}
			if !res.Running {
				t.Fatal("the bootstrap after the fix left no running server")
			}
			walLink(t, dataDir, walDir)
		})
	}
}

// A clone with pg_basebackup's waldir: a wrong password fails without leaving anything in the
// WAL directory; a copy whose server cannot start (its port is taken) removes the WAL it copied
// too, and the error gives PostgreSQL's own reason first; with the port free the next clone
// works.
func TestCloneWalDirFailuresLeaveNothing(t *testing.T) {
	p := pgtest.StartPrimary(t, pgtest.Options{})
	n, dataDir, walDir := walNode(t, `
postgresql {
  bin_dir = "`+testenv.PGBinDir(t)+`"
  listen  = %[2]q
}
method "basebackup" {
  waldir   = %[1]q
  no-clean = true
  attempts = 1
}`)
	mkdir(t, walDir)
	want := p.SystemIdentifier(t)
	clone := func(password string) (engine.CloneResult, error) {
		return n.Clone(context.Background(), engine.CloneOptions{
			Source:         &engine.Source{Conn: p.ReplConn(), Password: password},
			ExpectSystemID: want,
		})
	}

	if _, err := clone("wrong-" + p.ReplPass); err == nil {
		t.Fatal("a clone with a wrong password succeeded")
	}
	gone(t, "data directory", dataDir, false)
	gone(t, "WAL directory", walDir, true)

	taken, err := net.Listen("tcp", n.Config.PostgreSQL.Listen)
	if err != nil {
		t.Fatal(err)
	}
	_, err = clone(p.ReplPass)
	_ = taken.Close()
	if err == nil {
		t.Fatal("a replica whose port is taken started")
	}
	if !strings.Contains(strings.SplitN(err.Error(), "\n", 2)[0], "Address already in use") {
		t.Errorf("the error's first line does not give PostgreSQL's reason:\n%v", err)
	}
	gone(t, "data directory", dataDir, false)
	gone(t, "WAL directory", walDir, true)

	res, err := clone(p.ReplPass)
	if err != nil {
		t.Fatalf("the clone with the port free: %v", err)
	}
	if !res.Running {
		t.Fatal("the clone left no running server")
	}
	walLink(t, dataDir, walDir)

	// A reinit replaces the cluster's WAL too: the WAL directory pg_wal links to is the
	// cluster's, and the new copy needs it empty.
	n.Config.PostgreSQL.Replication = config.Credentials{Username: p.ReplUser, Password: p.ReplPass}
	sysid := strconv.FormatUint(want, 10)
	cl := dcs.Cluster{Initialize: &sysid, Leader: "primary", Members: []dcs.Member{
		{Name: "primary", State: dcs.StateRunning, Role: dcs.RolePrimary, ConnURL: p.ConnURL()},
	}}
	if _, err := n.Reinit(context.Background(), cl, engine.ReinitOptions{}); err != nil {
		t.Fatalf("reinit: %v", err)
	}
	walLink(t, dataDir, walDir)
}

// A bootstrap killed before it was recorded leaves its marked data directory and its WAL: the
// next bootstrap removes both, as the marker records the WAL directory as the attempt's, and
// initdb then finds the WAL directory empty.
func TestKilledBootstrapLeavesWalDirToTheNext(t *testing.T) {
	n, dataDir, walDir := walNode(t, `
bootstrap { initdb = [{ waldir = %[1]q }] }
postgresql {
  bin_dir = "`+testenv.PGBinDir(t)+`"
  listen  = %[2]q
}`)
	// KeepMarker: the marker stays, as it does until the agent records the new cluster.
	if _, err := n.Bootstrap(context.Background(), engine.BootstrapOptions{ImageOnly: true, KeepMarker: true}); err != nil {
		t.Fatal(err)
	}
	walLink(t, dataDir, walDir)
	if !n.Incomplete() {
		t.Fatal("the bootstrap did not leave its marker")
	}
	if _, err := n.Bootstrap(context.Background(), engine.BootstrapOptions{ImageOnly: true}); err != nil {
		t.Fatalf("the bootstrap over the killed one's leftovers: %v", err)
	}
	walLink(t, dataDir, walDir)
}

// A WAL directory that holds someone else's file is refused before anything is touched, naming
// it: by a bootstrap and a clone alike, and by validate. The file stays as it was and no data
// directory appears.
func TestWalDirHoldingForeignFileIsRefused(t *testing.T) {
	for _, path := range []string{"bootstrap", "clone"} {
		t.Run(path, func(t *testing.T) {
			n, dataDir, walDir := walNode(t, `
bootstrap { initdb = [{ waldir = %[1]q }] }
postgresql {
  bin_dir = "`+testenv.PGBinDir(t)+`"
  listen  = %[2]q
}
method "basebackup" { waldir = %[1]q }`)
			mkdir(t, walDir)
			foreign := filepath.Join(walDir, "000000010000000000000001")
			if err := os.WriteFile(foreign, []byte("not pgimaged's"), 0o600); err != nil {
				t.Fatal(err)
			}
			var err error
			if path == "bootstrap" {
				_, err = n.Bootstrap(context.Background(), engine.BootstrapOptions{})
			} else {
				_, err = n.Clone(context.Background(), engine.CloneOptions{
					Source: &engine.Source{Conn: pg.Conn{Host: "127.0.0.1", Port: 1, User: "replicator"}},
				})
			}
			if !errors.Is(err, engine.ErrWalDirNotEmpty) || !engine.IsRefusal(err) || !strings.Contains(err.Error(), walDir) {
				t.Fatalf("want a refusal naming %s, got %v", walDir, err)
			}
			if b, rerr := os.ReadFile(foreign); rerr != nil || string(b) != "not pgimaged's" {
				t.Errorf("the foreign file changed: %q, %v", b, rerr)
			}
			if _, serr := os.Stat(dataDir); !errors.Is(serr, os.ErrNotExist) {
				t.Errorf("the refused attempt created the data directory: %v", serr)
			}
			if n.Incomplete() {
				t.Error("the refused attempt left an incomplete mark")
			}
			diags := n.Validate(context.Background())
			if !hasDiag(diags, hcl.DiagError, "WAL directory not empty", walDir) {
				t.Errorf("validate does not refuse the WAL directory: %v", diags)
			}
		})
	}
}

// validate and plan name a usable separate WAL directory, and validate refuses a relative one.
func TestValidateAndPlanNameTheWalDir(t *testing.T) {
	n, _, walDir := walNode(t, `
bootstrap { initdb = [{ waldir = %[1]q }] }
postgresql {
  bin_dir = "`+testenv.PGBinDir(t)+`"
  listen  = %[2]q
}`)
	diags := n.Validate(context.Background())
	if diags.HasErrors() {
		t.Fatalf("validate: %v", diags)
	}
	if !hasDiag(diags, hcl.DiagWarning, "Separate WAL directory", walDir) {
		t.Errorf("validate does not name the WAL directory: %v", diags)
	}
	p := n.Plan(context.Background(), nil, errors.New("no DCS"))
	found := false
	for _, m := range p.Methods {
		found = found || m.Method == "initdb" && m.WalDir == walDir && strings.Contains(strings.Join(m.Notes, " "), walDir)
	}
	if !found {
		t.Errorf("plan does not name the WAL directory: %+v", p.Methods)
	}

	n.Config.Bootstrap.Initdb[0].Map = nil
	n.Config.Bootstrap.Initdb[0].Value = "wal"
	if d := n.Validate(context.Background()); !hasDiag(d, hcl.DiagError, "Unusable WAL directory", "absolute") {
		t.Errorf("validate takes a relative waldir: %v", d)
	}
}

func hasDiag(diags hcl.Diagnostics, sev hcl.DiagnosticSeverity, summary, in string) bool {
	for _, d := range diags {
		if d.Severity == sev && d.Summary == summary && strings.Contains(d.Detail, in) && d.Subject != nil && d.Subject.Filename != "" {
			return true
		}
	}
	return false
}
