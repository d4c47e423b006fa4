package engine_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgimaged/pgimaged/core/config"
	"github.com/pgimaged/pgimaged/core/engine"
	"github.com/pgimaged/pgimaged/core/pg"
	"github.com/pgimaged/pgimaged/core/plugin"
	"github.com/pgimaged/pgimaged/internal/testenv"
)

// These tests run the engine on real directories with the real script and basebackup plugins,
// built once into a private plugin directory. The "clusters" a method copies are the
// PostgreSQL 15 fixture of core/pg (PG_VERSION and a valid pg_control): enough for everything
// pgimaged reads of a data directory before it starts a server.

// pluginsEnv hands the directory of the plugins built by TestMain to the tests, which may run
// re-executed as the PostgreSQL account.
const pluginsEnv = "PGIMAGED_ENGINE_TEST_PLUGINS"

func TestMain(m *testing.M) {
	built := ""
	if os.Getenv(pluginsEnv) == "" {
		// Built as the invoking user, before the tests switch to the PostgreSQL account (whose
		// Go caches may not exist).
		dir, err := buildPlugins()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		built = dir
		os.Setenv(pluginsEnv, dir)
	}
	code := testenv.RunAsPostgres(m)
	if built != "" {
		_ = os.RemoveAll(built)
	}
	os.Exit(code)
}

func buildPlugins() (string, error) {
	dir, err := testenv.NewBinDir("pgimaged-engine-plugins-")
	if err != nil {
		return "", err
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		return "", err
	}
	for _, name := range []string{"script", "basebackup", "initdb"} {
		if err := testenv.GoBuild(root, filepath.Join(dir, plugin.Prefix+name), "./plugins/"+name); err != nil {
			_ = os.RemoveAll(dir)
			return "", err
		}
	}
	return dir, nil
}

func pluginDir(t testing.TB) string {
	t.Helper()
	return os.Getenv(pluginsEnv)
}

// fixture is a directory holding a PostgreSQL 15 cluster's PG_VERSION and pg_control.
func fixture(t testing.TB) string {
	t.Helper()
	p, err := filepath.Abs("../pg/testdata/pg15-cluster")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// fixtureSysid is the fixture's system identifier.
func fixtureSysid(t testing.TB) uint64 {
	t.Helper()
	id, err := pg.SystemIdentifier(fixture(t))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// placeCluster copies the fixture into dir, which then holds a cluster.
func placeCluster(t testing.TB, dir string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "global"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"PG_VERSION", "global/pg_control"} {
		b, err := os.ReadFile(filepath.Join(fixture(t), f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if !pg.HasCluster(dir) {
		t.Fatalf("%s holds no cluster after copying the fixture", dir)
	}
}

// loadNode parses a configuration (so that diagnostics carry places) with dataDir and body,
// and makes a node over the built plugins.
func loadNode(t *testing.T, dataDir, body string) *engine.Node {
	t.Helper()
	src := fmt.Sprintf("scope    = \"batman\"\nname     = \"node1\"\ndata_dir = %q\n%s\n", dataDir, body)
	file := filepath.Join(t.TempDir(), "node1.hcl")
	if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, diags := config.Parse(file, []byte(src))
	if diags.HasErrors() {
		t.Fatalf("configuration does not parse: %v\n%s", diags, src)
	}
	return &engine.Node{Config: cfg, Catalog: &plugin.Catalog{Dir: pluginDir(t)}}
}

// copyScript writes a replica method script that records in log whether the data directory
// already held a cluster when it started ("over-leftovers" or "fresh") and the PGPASSFILE it
// got, copies the fixture into the data directory, and exits 0 only once the file ok exists.
func copyScript(t *testing.T, dir string) (script, log, ok string) {
	t.Helper()
	log = filepath.Join(dir, "runs.log")
	ok = filepath.Join(dir, "ok")
	script = filepath.Join(dir, "copy.sh")
	body := fmt.Sprintf(`#!/bin/sh
for a in "$@"; do case "$a" in --datadir=*) D="${a#--datadir=}";; esac; done
if [ -e "$D/PG_VERSION" ]; then echo over-leftovers >> %[1]q; else echo fresh >> %[1]q; fi
echo "pgpassfile=$PGPASSFILE" >> %[1]q
cp -a %[2]q/. "$D/"
[ -e %[3]q ] && exit 0
echo "copied, then failed" >&2
exit 1
`, log, fixture(t), ok)
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return script, log, ok
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

// TestKeepDataLeftoversAreNeverAdopted: a keep_data method that copies a whole cluster and then
// fails leaves a directory that looks complete. It stays marked, is handed to the next attempt
// (the method runs over it again) and is never adoptable until a method succeeds.
func TestKeepDataLeftoversAreNeverAdopted(t *testing.T) {
	work := t.TempDir()
	dataDir := filepath.Join(work, "pg", "data")
	script, log, ok := copyScript(t, work)
	n := loadNode(t, dataDir, fmt.Sprintf(`
postgresql { create_replica_methods = ["copy"] }
method "copy" {
  command   = %q
  keep_data = true
  no_master = true
}`, script))
	ctx := context.Background()

	if _, err := n.Clone(ctx, engine.CloneOptions{ImageOnly: true}); err == nil {
		t.Fatal("a failing method made a replica")
	}
	if !pg.HasCluster(dataDir) {
		t.Fatal("the keep_data method's leftovers are gone")
	}
	if n.Adoptable() {
		t.Fatal("the leftovers of a failed method are adoptable: the next cycle would start them as a cluster")
	}
	method, keep, marked := n.Leftover()
	if !marked || !keep || method != "copy" {
		t.Errorf("Leftover() = (%q, keep %v, marked %v), want (\"copy\", true, true)", method, keep, marked)
	}

	// The next attempt gets the leftovers, not an empty directory, and still fails.
	if _, err := n.Clone(ctx, engine.CloneOptions{ImageOnly: true}); err == nil {
		t.Fatal("a failing method made a replica")
	}
	if got := readLines(t, log); len(got) < 4 || got[0] != "fresh" || got[2] != "over-leftovers" {
		t.Errorf("the second attempt did not run over the leftovers: %q", got)
	}
	if n.Adoptable() {
		t.Fatal("the leftovers are adoptable after the second failure")
	}

	// The agent's cleaning of a marked directory keeps them too: a bootstrap-free restart.
	if err := os.WriteFile(ok, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	res, err := n.Clone(ctx, engine.CloneOptions{ImageOnly: true})
	if err != nil {
		t.Fatalf("the method succeeded but the clone failed: %v", err)
	}
	if res.SystemIdentifier != fixtureSysid(t) {
		t.Errorf("system identifier %d, want the fixture's %d", res.SystemIdentifier, fixtureSysid(t))
	}
	if !n.Adoptable() || n.Incomplete() {
		t.Errorf("after a successful method the directory is not complete (adoptable %v, marked %v)", n.Adoptable(), n.Incomplete())
	}
}

// TestFailedMethodWithoutKeepDataLeavesNothing: the leftovers of a method without keep_data are
// removed with the mark; the directory itself goes only if the attempt created it.
func TestFailedMethodWithoutKeepDataLeavesNothing(t *testing.T) {
	for _, existed := range []bool{false, true} {
		t.Run(fmt.Sprintf("existed=%v", existed), func(t *testing.T) {
			work := t.TempDir()
			dataDir := filepath.Join(work, "data")
			if existed {
				if err := os.Mkdir(dataDir, 0o750); err != nil {
					t.Fatal(err)
				}
			}
			script, _, _ := copyScript(t, work)
			n := loadNode(t, dataDir, fmt.Sprintf(`
postgresql { create_replica_methods = ["copy"] }
method "copy" {
  command   = %q
  no_master = true
}`, script))
			if _, err := n.Clone(context.Background(), engine.CloneOptions{ImageOnly: true}); err == nil {
				t.Fatal("a failing method made a replica")
			}
			if n.Incomplete() {
				t.Error("the mark stays after the leftovers were removed")
			}
			empty, exists, err := pg.IsEmptyDir(dataDir)
			if err != nil {
				t.Fatal(err)
			}
			if exists != existed || !empty {
				t.Errorf("after the failure: exists %v (before: %v), empty %v", exists, existed, empty)
			}
		})
	}
}

// snapshot lists every path below dir with its content (directories as "/").
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if fi.IsDir() {
			out[rel] = "/"
			return nil
		}
		b, err := os.ReadFile(p)
		out[rel] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sameSnapshot(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestRefusesDirectoriesItDidNotMark: a non-empty directory pgimaged did not mark (with a
// cluster below it, or only an operator's file) is refused by clone and bootstrap alike, with
// or without keep_data, and nothing in it or beside it changes. So is a directory inside
// another cluster's.
func TestRefusesDirectoriesItDidNotMark(t *testing.T) {
	type layout struct {
		name    string
		setup   func(t *testing.T, work string) (dataDir string)
		wantErr error
	}
	layouts := []layout{
		{"parent of a cluster", func(t *testing.T, work string) string {
			p := filepath.Join(work, "pg")
			placeCluster(t, filepath.Join(p, "15", "main"))
			if err := os.WriteFile(filepath.Join(p, "operator.txt"), []byte("mine"), 0o600); err != nil {
				t.Fatal(err)
			}
			return p
		}, engine.ErrDataDirNotEmpty},
		{"an operator's file", func(t *testing.T, work string) string {
			p := filepath.Join(work, "data")
			if err := os.Mkdir(p, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(p, ".keep"), []byte("mine"), 0o600); err != nil {
				t.Fatal(err)
			}
			return p
		}, engine.ErrDataDirNotEmpty},
		{"inside a cluster", func(t *testing.T, work string) string {
			c := filepath.Join(work, "main")
			placeCluster(t, c)
			return filepath.Join(c, "nested", "data")
		}, engine.ErrInsideCluster},
	}
	for _, l := range layouts {
		for _, keep := range []bool{false, true} {
			for _, op := range []string{"clone", "bootstrap"} {
				if op == "bootstrap" && keep {
					continue
				}
				t.Run(fmt.Sprintf("%s/%s/keep_data=%v", l.name, op, keep), func(t *testing.T) {
					work := t.TempDir()
					scripts := t.TempDir()
					dataDir := l.setup(t, work)
					script, log, ok := copyScript(t, scripts)
					if err := os.WriteFile(ok, nil, 0o600); err != nil {
						t.Fatal(err)
					}
					n := loadNode(t, dataDir, fmt.Sprintf(`
postgresql { create_replica_methods = ["copy"] }
bootstrap { method = "copy" }
method "copy" {
  command   = %q
  keep_data = %v
  no_master = true
}`, script, keep))
					before := snapshot(t, work)
					var err error
					if op == "clone" {
						_, err = n.Clone(context.Background(), engine.CloneOptions{ImageOnly: true})
					} else {
						_, err = n.Bootstrap(context.Background(), engine.BootstrapOptions{ImageOnly: true})
					}
					if !errors.Is(err, l.wantErr) {
						t.Fatalf("%s: error %v, want %v", op, err, l.wantErr)
					}
					if after := snapshot(t, work); !sameSnapshot(before, after) {
						t.Errorf("the refused %s changed files:\nbefore %v\nafter  %v", op, before, after)
					}
					if _, err := os.Stat(log); err == nil {
						t.Errorf("the method ran: %q", readLines(t, log))
					}
				})
			}
		}
	}
}

// TestClonePgpassBesideDataDir: the methods get the source's password in the pgpass file beside
// the data directory (the one primary_conninfo names), never under the temporary directory; it
// stays after a success and goes after a failure.
func TestClonePgpassBesideDataDir(t *testing.T) {
	for _, succeed := range []bool{true, false} {
		t.Run(fmt.Sprintf("succeed=%v", succeed), func(t *testing.T) {
			work := t.TempDir()
			dataDir := filepath.Join(work, "data")
			script, log, ok := copyScript(t, work)
			if succeed {
				if err := os.WriteFile(ok, nil, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			n := loadNode(t, dataDir, fmt.Sprintf(`
postgresql { create_replica_methods = ["copy"] }
method "copy" { command = %q }`, script))
			tmpBefore, _ := filepath.Glob(filepath.Join(os.TempDir(), "pgimaged-pgpass-*"))
			src := &engine.Source{Conn: pg.Conn{Host: "127.0.0.1", Port: 1, User: "repl:user", Database: "postgres"}, Password: "pa:ss-w0rd"}
			_, err := n.Clone(context.Background(), engine.CloneOptions{Source: src, ImageOnly: true, ExpectSystemID: fixtureSysid(t)})
			if succeed != (err == nil) {
				t.Fatalf("clone error %v, want success %v", err, succeed)
			}
			var got string
			for _, l := range readLines(t, log) {
				if v, found := strings.CutPrefix(l, "pgpassfile="); found {
					got = v
				}
			}
			if got != n.PgpassPath() {
				t.Errorf("the method got PGPASSFILE=%q, want the pgpass file beside the data directory %q", got, n.PgpassPath())
			}
			tmpAfter, _ := filepath.Glob(filepath.Join(os.TempDir(), "pgimaged-pgpass-*"))
			if len(tmpAfter) > len(tmpBefore) {
				t.Errorf("pgpass directories left under %s: %v", os.TempDir(), tmpAfter)
			}
			fi, err := os.Stat(n.PgpassPath())
			if !succeed {
				if err == nil {
					t.Error("the pgpass file with the password stays after a failed clone")
				}
				return
			}
			if err != nil {
				t.Fatalf("the pgpass file is gone after a successful clone: %v", err)
			}
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("pgpass mode %v, want 0600", fi.Mode().Perm())
			}
			if b, _ := os.ReadFile(n.PgpassPath()); string(b) != `127.0.0.1:1:*:repl\:user:pa\:ss-w0rd`+"\n" {
				t.Errorf("pgpass content %q", b)
			}
		})
	}
}

// TestKilledCloneLeavesNoPassword: what a pgimaged killed mid-clone leaves (the mark, a
// half-filled directory, the pgpass file beside it) is removed by the next attempt, which then
// fails without writing a password anywhere.
func TestKilledCloneLeavesNoPassword(t *testing.T) {
	work := t.TempDir()
	dataDir := filepath.Join(work, "data")
	placeCluster(t, dataDir)
	n := loadNode(t, dataDir, `postgresql { create_replica_methods = ["basebackup"] }`)
	if err := os.WriteFile(n.IncompletePath(), []byte("clone started 2026-01-01T00:00:00Z by pid 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(n.PgpassPath(), []byte("*:*:*:replicator:secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if n.Adoptable() {
		t.Fatal("a marked directory is adoptable")
	}
	_, err := n.Clone(context.Background(), engine.CloneOptions{ImageOnly: true})
	if !errors.Is(err, engine.ErrNoMethodCanRun) {
		t.Fatalf("clone without a source and without no_master methods: %v", err)
	}
	if _, err := os.Stat(n.PgpassPath()); err == nil {
		t.Error("the pgpass file a killed run left is still there")
	}
	if _, err := os.Stat(dataDir); err == nil {
		if empty, _, _ := pg.IsEmptyDir(dataDir); !empty {
			t.Error("the half-made directory a killed run left is still filled")
		}
	}
	if n.Incomplete() {
		t.Error("the mark stays although nothing is left")
	}
}

// TestValidateNoMasterNeedsSource: no_master (or no_leader) on a method whose plugin needs a
// source is an error at the attribute; on one that can work without a source it is fine.
func TestValidateNoMasterNeedsSource(t *testing.T) {
	cases := []struct {
		name, body string
		wantLine   int // 0: no diagnostic
		wantCol    int
	}{
		{"basebackup no_master", "postgresql { create_replica_methods = [\"basebackup\"] }\nmethod \"basebackup\" {\n  checkpoint = \"fast\"\n    no_master = true\n}", 7, 5},
		{"basebackup no_leader", "postgresql { create_replica_methods = [\"basebackup\"] }\nmethod \"basebackup\" {\n  no_leader = true\n}", 6, 3},
		{"plugin = basebackup", "postgresql { create_replica_methods = [\"fast\"] }\nmethod \"fast\" {\n  plugin    = \"basebackup\"\n  no_master = true\n}", 7, 3},
		{"script no_master", "postgresql { create_replica_methods = [\"restore\"] }\nmethod \"restore\" {\n  command   = \"/bin/true\"\n  no_master = true\n}", 0, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := loadNode(t, filepath.Join(t.TempDir(), "data"), tc.body)
			diags := n.Validate(context.Background())
			var found []string
			for _, d := range diags {
				if d.Summary == "Method cannot work without a source" {
					found = append(found, fmt.Sprintf("%s:%d:%d", filepath.Base(d.Subject.Filename), d.Subject.Start.Line, d.Subject.Start.Column))
				}
			}
			if tc.wantLine == 0 {
				if len(diags) != 0 {
					t.Errorf("unexpected diagnostics: %v", diags)
				}
				return
			}
			want := fmt.Sprintf("node1.hcl:%d:%d", tc.wantLine, tc.wantCol)
			if len(found) != 1 || found[0] != want {
				t.Errorf("no_master diagnostics at %v, want one at %s (all: %v)", found, want, diags)
			}
		})
	}
}

// TestValidateDataDirPlacement: a data_dir inside another cluster, or holding one at any depth,
// is an error at data_dir; a cluster's own directory, an empty one and a missing one are fine.
func TestValidateDataDirPlacement(t *testing.T) {
	cases := []struct {
		name    string
		setup   func(t *testing.T, work string) string
		summary string // "": no diagnostic
	}{
		{"missing", func(t *testing.T, work string) string { return filepath.Join(work, "data") }, ""},
		{"the cluster itself", func(t *testing.T, work string) string {
			placeCluster(t, filepath.Join(work, "data"))
			return filepath.Join(work, "data")
		}, ""},
		{"inside a cluster", func(t *testing.T, work string) string {
			placeCluster(t, filepath.Join(work, "main"))
			return filepath.Join(work, "main", "base", "data")
		}, "Data directory inside another cluster"},
		{"a cluster deep below", func(t *testing.T, work string) string {
			placeCluster(t, filepath.Join(work, "srv", "pg", "15", "main"))
			return filepath.Join(work, "srv")
		}, "Data directory holds another cluster"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dataDir := tc.setup(t, t.TempDir())
			n := loadNode(t, dataDir, "")
			diags := n.ValidateDataDir()
			if tc.summary == "" {
				if len(diags) != 0 {
					t.Errorf("unexpected diagnostics: %v", diags)
				}
				return
			}
			if len(diags) != 1 || diags[0].Summary != tc.summary {
				t.Fatalf("diagnostics %v, want one %q", diags, tc.summary)
			}
			if r := diags[0].Subject; filepath.Base(r.Filename) != "node1.hcl" || r.Start.Line != 3 || r.Start.Column != 12 {
				t.Errorf("the diagnostic points at %s, want node1.hcl:3:12 (the data_dir value)", r)
			}
			if full := n.Validate(context.Background()); len(full) != 1 {
				t.Errorf("Validate does not report the data directory: %v", full)
			}
		})
	}
}
