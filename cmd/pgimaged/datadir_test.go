package main_test

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgimaged/pgimaged/core/pg"
	"github.com/pgimaged/pgimaged/internal/pgtest"
	"github.com/pgimaged/pgimaged/internal/testenv"
)

// The tests of this file check what pgimaged does with data directories it did not make, and
// with what a failed method leaves, through the built binary against real PostgreSQL. Their
// configurations are written the way users write them: a replication role of their own name,
// non-default ports, a data_dir relative to where pgimaged runs.

// userSpec is one member's configuration as a user would write it.
type userSpec struct {
	name     string
	dataDir  string // as written in the configuration: absolute, or relative to dir
	dir      string // the configuration's directory, where pgimaged runs
	port     int
	replUser string
	top      string // dcs block, loop_wait
	methods  string // create_replica_methods value, "" for the default
	extra    string // method blocks
	superPw  string
	replPw   string
}

// writeUserConfig writes spec's configuration into spec.dir and returns its path. The
// passwords come through env() (superuser) and file() (replication).
func writeUserConfig(t *testing.T, s userSpec) string {
	t.Helper()
	return memberHCL{scope: "keepers", name: s.name, dataDir: s.dataDir, top: s.top, listen: fmt.Sprintf("127.0.0.1:%d", s.port),
		superEnv: "KEEPERS_SUPERUSER_PASSWORD", repl: s.replUser, replFile: s.name + ".pw", methods: s.methods, extra: s.extra,
	}.write(t, s.dir, s.replPw)
}

// runIn runs pgimaged to completion in dir.
func runIn(t *testing.T, dir string, env []string, args ...string) result {
	t.Helper()
	return runPgimaged(t, dir, 10*time.Minute, env, args...)
}

// passwordFilesUnder lists the files below root (not below any of skip) whose content holds
// secret: what a crash or a careless cleanup would leave readable on disk.
func passwordFilesUnder(root, secret string, skip ...string) []string {
	var found []string
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if d != nil && d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		for _, s := range skip {
			if p == s {
				return filepath.SkipDir
			}
		}
		if d.IsDir() {
			if strings.Count(strings.TrimPrefix(p, root), string(filepath.Separator)) > 3 {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		if fi, err := d.Info(); err != nil || fi.Size() > 1<<16 {
			return nil
		}
		if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, []byte(secret)) {
			found = append(found, p)
		}
		return nil
	})
	return found
}

// TestCloneRefusesParentOfRunningCluster: data_dir names the parent of a running cluster's data
// directory, beside an operator's file. The clone refuses with exit code 4 and touches nothing:
// the cluster keeps running with all its files, the operator's file stays.
func TestCloneRefusesParentOfRunningCluster(t *testing.T) {
	p := pgtest.StartPrimary(t, pgtest.Options{ReplUser: "clone_refused"})
	parent := filepath.Dir(p.DataDir)
	operator := writeFile(t, parent, "operator-notes.txt", "do not delete", 0o600)
	var before []string
	_ = filepath.WalkDir(p.DataDir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && (d.IsDir() || strings.HasPrefix(d.Name(), "PG_") || strings.HasSuffix(d.Name(), ".conf") || d.Name() == "pg_control") {
			before = append(before, path)
		}
		return nil
	})
	work := workDir(t)
	cfg := writeUserConfig(t, userSpec{
		name: "intruder", dataDir: parent, dir: work, port: pgtest.FreePort(t), replUser: p.ReplUser,
		superPw: p.SuperPass, replPw: p.ReplPass, extra: `method "basebackup" { checkpoint = "fast" }`,
	})
	env := []string{"KEEPERS_SUPERUSER_PASSWORD=" + p.SuperPass}
	for _, extra := range [][]string{nil, {"--image-only"}} {
		args := append([]string{"clone", "-config", cfg, "--connstring", p.ConnURL()}, extra...)
		r := runIn(t, work, env, args...)
		if r.code != 4 {
			t.Fatalf("clone %v into the parent of a running cluster's data directory: exit %d, want 4 (refused)\n%s", extra, r.code, r)
		}
		if !strings.Contains(r.stderr, "not empty") || !strings.Contains(r.stderr, p.DataDir) {
			t.Errorf("the refusal does not name the cluster it found:\n%s", r.stderr)
		}
	}
	if b, err := os.ReadFile(operator); err != nil || string(b) != "do not delete" {
		t.Errorf("the operator's file was touched: %q, %v", b, err)
	}
	for _, path := range before {
		if _, err := os.Lstat(path); err != nil {
			t.Errorf("the running cluster lost %s: %v", path, err)
		}
	}
	if got := p.QueryString(t, "SELECT pg_is_in_recovery()::text"); got != "false" {
		t.Errorf("the cluster answers pg_is_in_recovery() = %s", got)
	}
	for _, beside := range []string{"." + filepath.Base(parent) + ".pgimaged-incomplete", filepath.Base(parent) + ".pgpass"} {
		if _, err := os.Stat(filepath.Join(filepath.Dir(parent), beside)); err == nil {
			t.Errorf("the refused clone wrote %s beside the directory", beside)
		}
	}
	r := runIn(t, work, env, "validate", "-config", cfg)
	if r.code != 3 || !strings.Contains(r.stderr, "intruder.hcl:3:") || !strings.Contains(r.stderr, p.DataDir) {
		t.Errorf("validate does not point at data_dir holding another cluster: %s", r)
	}
}

// methodScript writes an executable replica method dir/name: a shell script that finds the
// data directory in $D and the connection string in $C, then runs body.
func methodScript(t *testing.T, dir, name, body string) string {
	t.Helper()
	return writeFile(t, dir, name, `#!/bin/sh
for a in "$@"; do
	case "$a" in
	--datadir=*) D="${a#--datadir=}";;
	--connstring=*) C="${a#--connstring=}";;
	esac
done
`+body, 0o755)
}

// copyThenFail is a replica method that does the copy itself with pg_basebackup, as a user's
// script would, then exits 1: its data directory looks complete (PG_VERSION, pg_control) but
// the method failed.
func copyThenFail(t *testing.T, dir string) string {
	t.Helper()
	return methodScript(t, dir, "copy_then_fail.sh", fmt.Sprintf(`%q/pg_basebackup --pgdata="$D" -X stream --checkpoint=fast --dbname="$C" || echo "pg_basebackup failed" >&2
echo "copied, but the post-copy step failed" >&2
exit 1
`, testenv.PGBinDir(t)))
}

// TestAgentNeverAdoptsKeepDataLeftovers: a member whose only replica method (keep_data) copies
// a whole data directory and then fails must never start that copy, let alone as a second
// primary: the leftovers stay marked and go to the next attempt, cycle after cycle.
func TestAgentNeverAdoptsKeepDataLeftovers(t *testing.T) {
	work := workDir(t)
	superPw, replPw := "Sup3r-"+randomHex(t), "Keep-"+randomHex(t)
	dcsBlock := fmt.Sprintf("dcs \"file\" { path = %q }\nloop_wait = \"1s\"", filepath.Join(work, "dcs"))
	env := []string{"KEEPERS_SUPERUSER_PASSWORD=" + superPw}
	mk := func(name, methods, extra string) (string, string, int) {
		dir := filepath.Join(work, name)
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		port := pgtest.FreePort(t)
		dataDir := filepath.Join(dir, "pgdata")
		stopServerAtCleanup(t, dataDir)
		return writeUserConfig(t, userSpec{name: name, dataDir: dataDir, dir: dir, port: port, replUser: "keep_repl",
			top: dcsBlock, methods: methods, extra: extra, superPw: superPw, replPw: replPw}), dataDir, port
	}
	cfg1, _, port1 := mk("alpha", "", `method "basebackup" { checkpoint = "fast" }`)
	a1 := startAgent(t, cfg1, env...)
	n1 := &node{config: cfg1, port: port1, superPass: superPw, env: env}
	waitCluster(t, n1, []*agentProc{a1}, "alpha")

	script := copyThenFail(t, work)
	cfg2, data2, port2 := mk("beta", `["copy"]`, fmt.Sprintf(`
method "copy" {
  command   = %q
  keep_data = true
}`, script))
	a2 := startAgent(t, cfg2, env...)
	stopAllAtCleanup(t, a1, a2)

	// Let the member fail its method several times: every cycle after the first finds the
	// leftovers of the one before. Starting them ends the wait at once (and fails below).
	waitFor(t, guard, "beta's method failing three times", []*agentProc{a1, a2}, func() bool {
		out := a2.out.String()
		return strings.Count(out, "creating the replica failed") >= 3 || strings.Contains(out, logStartExisting)
	})
	out := a2.out.String()
	if strings.Contains(out, logStartExisting) {
		t.Errorf("beta started the leftovers of its failed method:\n%s", out)
	}
	if !pg.HasCluster(data2) {
		t.Errorf("the keep_data method's leftovers are gone from %s", data2)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(data2), ".pgdata.pgimaged-incomplete")); err != nil {
		t.Errorf("the leftovers are not marked incomplete: %v", err)
	}
	if procs := pgProcessesIn(data2); len(procs) > 0 {
		t.Errorf("something runs in beta's data directory: %q", procs)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s := &pg.Server{BinDir: testenv.PGBinDir(t), DataDir: data2, SocketDir: data2, Port: port2}
	if _, running := s.Running(); running {
		t.Errorf("a PostgreSQL runs in beta's leftovers")
	}
	if c, err := s.Connect(ctx); err == nil {
		_ = c.Close(ctx)
		t.Errorf("beta's port answers: a second server is up")
	}
	st, err := status(t, n1)
	if err != nil {
		t.Fatal(err)
	}
	if ps := st.withRole("primary"); len(ps) != 1 || ps[0].Name != "alpha" {
		t.Errorf("primaries: %+v, want only alpha\n%s", ps, st)
	}
	if m, ok := st.member("beta"); ok && m.State == "running" {
		t.Errorf("beta is published as running:\n%s", st)
	}
	if files := passwordFilesUnder(os.TempDir(), replPw, work); len(files) > 0 {
		t.Errorf("the replication password is on disk under %s: %v", os.TempDir(), files)
	}
}

// TestKeepDataBasebackupWithR: a keep_data method that runs `pg_basebackup -R` and succeeds.
// The primary_conninfo it writes names the pgpass file it was given; that file must still be
// there afterwards (the copy alone, --image-only, as Patroni starts it), and a full clone must
// stream. No password is left under the temporary directory either way.
func TestKeepDataBasebackupWithR(t *testing.T) {
	p := pgtest.StartPrimary(t, pgtest.Options{ReplUser: "standby_feed"})
	work := workDir(t)
	script := methodScript(t, work, "basebackup_r.sh", fmt.Sprintf(`exec %q/pg_basebackup --pgdata="$D" -X stream -R --checkpoint=fast --dbname="$C"
`, testenv.PGBinDir(t)))
	env := []string{"KEEPERS_SUPERUSER_PASSWORD=" + p.SuperPass}
	for _, imageOnly := range []bool{true, false} {
		t.Run(fmt.Sprintf("image-only=%v", imageOnly), func(t *testing.T) {
			dir := filepath.Join(work, fmt.Sprintf("member-%v", imageOnly))
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			name := "gamma"
			if imageOnly {
				name = "delta"
			}
			dataDir := filepath.Join(dir, "pgdata")
			stopServerAtCleanup(t, dataDir)
			port := pgtest.FreePort(t)
			// The copy alone is what Patroni asks for, from where it runs; a relative data_dir
			// is read against that directory (which is also the configuration's).
			written := dataDir
			if imageOnly {
				written = "pgdata"
			}
			cfg := writeUserConfig(t, userSpec{
				name: name, dataDir: written, dir: dir, port: port, replUser: p.ReplUser,
				superPw: p.SuperPass, replPw: p.ReplPass, methods: `["restore_r"]`,
				extra: fmt.Sprintf("method \"restore_r\" {\n  command   = %q\n  keep_data = true\n}", script),
			})
			args := []string{"clone", "-config", cfg, "--connstring", p.ConnURL()}
			if imageOnly {
				args = append(args, "--image-only")
			}
			r := runIn(t, dir, env, args...)
			if r.code != 0 {
				t.Fatalf("clone failed: %s", r)
			}
			if files := passwordFilesUnder(os.TempDir(), p.ReplPass, work, filepath.Dir(p.DataDir)); len(files) > 0 {
				t.Errorf("the replication password is left on disk under %s: %v", os.TempDir(), files)
			}
			if imageOnly {
				auto, err := os.ReadFile(filepath.Join(dataDir, "postgresql.auto.conf"))
				if err != nil {
					t.Fatal(err)
				}
				i := strings.Index(string(auto), "passfile=")
				if i < 0 {
					t.Fatalf("pg_basebackup -R wrote no passfile into primary_conninfo:\n%s", auto)
				}
				pf := strings.Fields(strings.Trim(string(auto)[i+len("passfile="):], "'"))[0]
				pf = strings.Trim(pf, "'\\")
				if _, err := os.Stat(pf); err != nil {
					t.Errorf("primary_conninfo names passfile %s, which is gone: %v", pf, err)
				}
				if strings.HasPrefix(pf, os.TempDir()) && !strings.HasPrefix(pf, dir) {
					t.Errorf("primary_conninfo names a passfile in the temporary directory: %s", pf)
				}
				return
			}
			conn := connectTCP(t, port, p.Superuser, p.SuperPass, "postgres")
			if v := queryString(t, conn, "SELECT pg_is_in_recovery()::text"); v != "true" {
				t.Errorf("the clone is not in recovery: pg_is_in_recovery() = %s", v)
			}
			primary := p.Connect(t)
			eventually(t, guard, "the clone streaming in pg_stat_replication on the primary", func() bool {
				return queryString(t, primary, "SELECT count(*)::text FROM pg_stat_replication WHERE application_name = $1 AND state = 'streaming' AND usename = $2", name, p.ReplUser) == "1"
			})
			p.Exec(t, "CREATE TABLE IF NOT EXISTS after_clone (id int)")
			p.Exec(t, "INSERT INTO after_clone VALUES (1)")
			eventually(t, guard, "a row written after the clone arriving", func() bool {
				var n string
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				if err := conn.QueryRow(ctx, "SELECT count(*)::text FROM after_clone").Scan(&n); err != nil {
					return false
				}
				return n == "1"
			})
		})
	}
}

// TestValidateNoMasterNeedsASource: no_master on basebackup (which cannot copy without a
// running member) is a configuration error at the attribute. (run and the one-shot commands
// call the same validation before they do anything.)
func TestValidateNoMasterNeedsASource(t *testing.T) {
	n := newNode(t, "replica", "method \"basebackup\" {\n  checkpoint = \"fast\"\n  no_master  = true\n}", "")
	b, err := os.ReadFile(n.config)
	if err != nil {
		t.Fatal(err)
	}
	line := 0
	for i, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, "no_master") {
			line = i + 1
		}
	}
	want := fmt.Sprintf("replica.hcl:%d:3", line)
	for _, cmd := range []string{"validate"} {
		r := run(t, n.env, cmd, "-config", n.config)
		if r.code != 3 {
			t.Errorf("%s with no_master on basebackup: exit %d, want 3\n%s", cmd, r.code, r)
			continue
		}
		if !strings.Contains(r.stderr, want) || !strings.Contains(r.stderr, "without a source") {
			t.Errorf("%s: the diagnostic does not point at no_master (%s):\n%s", cmd, want, r.stderr)
		}
	}
}

// TestAgentRefusesDirectoryItDidNotMake: `pgimaged run` on a data directory that holds an
// operator's file neither bootstraps nor clones into it: it exits with code 4, the file intact,
// without taking initialize.
func TestAgentRefusesDirectoryItDidNotMake(t *testing.T) {
	c := fileCluster(t)
	n := c.member(t, "node1", "")
	if err := os.MkdirAll(n.dataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	keep := writeFile(t, n.dataDir, "restore-in-progress.txt", "an operator's", 0o600)
	a := n.start(t)
	waitFor(t, guard, "the agent refusing the data directory", nil, func() bool {
		return a.exited() || strings.Count(a.out.String(), logReleased) >= 2
	})
	if !a.exited() || exitCode(a) != 4 {
		t.Errorf("the agent goes on (exited %v, code %d), want exit code 4:\n%s", a.exited(), exitCode(a), a.out.String())
	}
	if strings.Contains(a.out.String(), logWon) {
		t.Errorf("the agent raced for initialize with a data directory it must not fill")
	}
	if b, err := os.ReadFile(keep); err != nil || string(b) != "an operator's" {
		t.Errorf("the operator's file was touched: %q, %v", b, err)
	}
	if !strings.Contains(a.out.String(), "not empty") {
		t.Errorf("the agent does not say why:\n%s", a.out.String())
	}
}
