package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pgimaged/pgimaged/core/pg"
	"github.com/pgimaged/pgimaged/internal/pgtest"
	"github.com/pgimaged/pgimaged/internal/testenv"
	"github.com/pgimaged/pgimaged/sdk"
	"github.com/pgimaged/pgimaged/sdk/plugintest"
)

const mib = 1 << 20

// world is a real primary whose WAL the stand-in archives (wal-push) into a storage directory
// holding a pg_basebackup made after the primary started.
type world struct {
	user       testenv.PGUser
	walE, walG string
	primary    *pgtest.Primary
	pgpass     string
	storage    string // WALE_S3_PREFIX=file://<storage>
	backup     string // the plain backup in storage
}

func newWorld(t *testing.T) *world {
	t.Helper()
	testenv.RequirePostgresUser(t)
	w := &world{user: testenv.PostgresUser(t)}
	w.walE, w.walG = standIn(t)
	w.storage = w.storageDir(t)
	w.primary = pgtest.StartPrimary(t, pgtest.Options{Parameters: map[string]string{
		"archive_mode":    "on",
		"archive_command": fmt.Sprintf("WALE_S3_PREFIX=file://%s %s wal-push %%p", w.storage, w.walE),
	}})
	w.pgpass = w.primary.WritePgpass(t)
	w.backup = filepath.Join(w.storage, "basebackups_005", "full")
	w.primary.Basebackup(t, w.backup)
	return w
}

// storageDir is an empty storage for the stand-in.
func (w *world) storageDir(t *testing.T) string {
	t.Helper()
	d := w.user.TempDir(t)
	for _, sub := range []string{"basebackups_005", "wal_005"} {
		if err := os.Mkdir(filepath.Join(d, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	w.user.Chown(t, d)
	return d
}

// connString is the source as pgimaged hands it to methods: no password, PGPASSFILE in Env.
func (w *world) connString() string { return w.primary.ReplConn().DSN() }

// distance is the WAL between the backup's start (from its backup_label) and the primary's position.
func (w *world) distance(t *testing.T) int64 {
	t.Helper()
	label, err := os.ReadFile(filepath.Join(w.backup, "backup_label"))
	if err != nil {
		t.Fatal(err)
	}
	var lsn string
	for _, line := range strings.Split(string(label), "\n") {
		if rest, ok := strings.CutPrefix(line, "START WAL LOCATION: "); ok {
			lsn, _, _ = strings.Cut(rest, " ")
		}
	}
	d, err := strconv.ParseInt(w.primary.QueryString(t, "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1::pg_lsn)::bigint::text", lsn), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// backupSize is the backup's expanded size as wal-e backup-list reports it.
func (w *world) backupSize(t *testing.T) int64 {
	t.Helper()
	cmd := exec.Command(w.walE, "backup-list", "--detail", "LATEST")
	cmd.Env = append(os.Environ(), "WALE_S3_PREFIX=file://"+w.storage)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("wal-e backup-list: %v", err)
	}
	b, err := parseWALEList(string(out))
	if err != nil {
		t.Fatal(err)
	}
	return b.Size
}

// switchAndArchive ends the current WAL segment and waits until the primary has archived it.
func (w *world) switchAndArchive(t *testing.T) { w.primary.SwitchAndArchive(t) }

// envdir is a directory of variables, one file each, as envdir(8) reads them.
func (w *world) envdir(t *testing.T, vars map[string]string) string {
	t.Helper()
	dir := w.user.TempDir(t)
	for name, value := range vars {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(value+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	w.user.Chown(t, dir)
	return dir
}

func (w *world) env(extra ...string) map[string]string {
	env := map[string]string{"PGPASSFILE": w.pgpass}
	for _, kv := range extra {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	return env
}

func (w *world) cluster(dir string) sdk.Cluster {
	return sdk.Cluster{Scope: "batman", Name: "node2", DataDir: dir, BinDir: w.primary.BinDir}
}

func f(v float64) string { return strconv.FormatFloat(v, 'f', 6, 64) }

func TestClone(t *testing.T) {
	w := newWorld(t)
	// Move the primary well past the backup: the WAL to replay must be measurable in megabytes.
	w.primary.Exec(t, "CREATE TABLE filler AS SELECT g, repeat('x', 200) AS pad FROM generate_series(1, 100000) g")
	w.switchAndArchive(t)
	size := w.backupSize(t)
	if d := w.distance(t); d < 8*mib || size < 8*mib {
		t.Fatalf("the fixture is too small to tell thresholds apart: %d bytes of WAL, a backup of %d bytes", d, size)
	}
	c := plugintest.Connect(t, &Plugin{RetryWait: 10 * time.Millisecond, ProgressEvery: 50 * time.Millisecond})
	ctx := context.Background()

	// Thresholds are set around the distance measured just before each clone, a megabyte or
	// two on either side (the primary writes a little WAL of its own meanwhile).
	type limits func(distance, size int64) []string
	tests := []struct {
		name     string
		limits   limits
		exceeded string // the threshold the clone must refuse to pass, "" when it must succeed
	}{
		{name: "below both thresholds", limits: func(d, s int64) []string {
			return []string{"threshold_megabytes=" + f(float64(d+2*mib)/mib), "threshold_backup_size_percentage=" + f(float64(d+2*mib)*100/float64(s))}
		}},
		{name: "above threshold_megabytes", exceeded: optThresholdMB, limits: func(d, s int64) []string {
			return []string{"threshold_megabytes=" + f(float64(d-mib)/mib), "threshold_backup_size_percentage=100000"}
		}},
		{name: "below threshold_megabytes", limits: func(d, s int64) []string {
			return []string{"threshold_megabytes=" + f(float64(d+2*mib)/mib), "threshold_backup_size_percentage=100000"}
		}},
		{name: "above threshold_backup_size_percentage", exceeded: optThresholdPct, limits: func(d, s int64) []string {
			return []string{"threshold_backup_size_percentage=" + f(float64(d-mib)*100/float64(s))}
		}},
		{name: "below threshold_backup_size_percentage", limits: func(d, s int64) []string {
			return []string{"threshold_backup_size_percentage=" + f(float64(d+2*mib)*100/float64(s))}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := w.user.DataDir(t)
			log := filepath.Join(w.user.TempDir(t), "calls")
			o := plugintest.Options(append(tc.limits(w.distance(t), size), "tool_path="+w.walE)...)
			req := sdk.CloneRequest{Method: "wal_e", Options: o, Cluster: w.cluster(dir), ConnString: w.connString(),
				Env: w.env("WALE_S3_PREFIX=file://"+w.storage, "FAKEWAL_LOG="+log)}
			if tc.exceeded == "" {
				res, rec := plugintest.AssertClone(t, c, req)
				checkClone(t, dir, res, true)
				checkFetchProgress(t, rec, size)
				return
			}
			_, err := c.Clone(ctx, req, &plugintest.Recorder{})
			if !errors.Is(err, sdk.ErrMethodFailed) {
				t.Fatalf("Clone returned %v, want an sdk.ErrMethodFailed so that the next method runs", err)
			}
			if !strings.Contains(err.Error(), "WAL to replay") || !strings.Contains(err.Error(), tc.exceeded) {
				t.Errorf("error %q does not name the threshold %s", err, tc.exceeded)
			}
			for _, call := range standInLog(t, log) {
				if strings.HasPrefix(call[2], "backup-fetch") {
					t.Errorf("the backup was fetched although it is too old: %q", call)
				}
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("the refused clone left %d entries in the data directory", len(entries))
			}
		})
	}

	t.Run("no source: the comparison is skipped", func(t *testing.T) {
		dir := w.user.DataDir(t)
		// Thresholds of zero refuse any backup that is compared.
		res, rec := plugintest.AssertClone(t, c, sdk.CloneRequest{Method: "wal_e", Cluster: w.cluster(dir),
			Options: plugintest.Options("tool_path="+w.walE, "threshold_megabytes=0", "threshold_backup_size_percentage=0"),
			Env:     w.env("WALE_S3_PREFIX=file://" + w.storage)})
		checkClone(t, dir, res, true)
		if !logged(rec, "no running source") {
			t.Error("nothing says the comparison was skipped")
		}
	})

	t.Run("a PGPASSWORD in the environment does not stand in for the pgpass file", func(t *testing.T) {
		t.Setenv("PGPASSWORD", "not-the-password")
		dir := w.user.DataDir(t)
		res, _ := plugintest.AssertClone(t, c, sdk.CloneRequest{Method: "wal_e", Cluster: w.cluster(dir), ConnString: w.connString(),
			Options: plugintest.Options("tool_path="+w.walE, "threshold_backup_size_percentage=100000"),
			Env:     w.env("WALE_S3_PREFIX=file://" + w.storage)})
		checkClone(t, dir, res, true)
	})

	t.Run("unreachable source", func(t *testing.T) {
		dir := w.user.DataDir(t)
		conn := fmt.Sprintf("host=127.0.0.1 port=%d user=replicator dbname=postgres connect_timeout=5", pgtest.FreePort(t))
		_, err := c.Clone(ctx, sdk.CloneRequest{Method: "wal_e", Cluster: w.cluster(dir), ConnString: conn,
			Options: plugintest.Options("tool_path="+w.walE, "retries=1"), Env: w.env("WALE_S3_PREFIX=file://" + w.storage)}, nil)
		if !errors.Is(err, sdk.ErrMethodFailed) || !strings.Contains(err.Error(), "while connecting to the source") ||
			!strings.Contains(err.Error(), "2 attempt(s)") {
			t.Errorf("Clone returned %v, want a method failure after 2 attempts to connect", err)
		}
	})

	t.Run("WAL-G", func(t *testing.T) {
		storage := w.storageDir(t)
		w.primary.Basebackup(t, filepath.Join(storage, "basebackups_005", "tarball"), "--format=tar")
		dir := w.user.DataDir(t)
		log := filepath.Join(w.user.TempDir(t), "calls")
		res, _ := plugintest.AssertClone(t, c, sdk.CloneRequest{Method: "wal_g", Cluster: w.cluster(dir), ConnString: w.connString(),
			Options: plugintest.Options("tool=wal-g", "tool_path="+w.walG, "threshold_backup_size_percentage=100000"),
			Env:     w.env("WALG_FILE_PREFIX="+storage, "FAKEWAL_LOG="+log)})
		checkClone(t, dir, res, true)
		if want := w.walG + ` wal-fetch "%f" "%p"`; res.RecoverySettings["restore_command"] != want {
			t.Errorf("restore_command %q, want %q", res.RecoverySettings["restore_command"], want)
		}
		calls := standInLog(t, log)
		if len(calls) != 2 || calls[0][0] != "wal-g" || calls[0][2] != "backup-list --detail --json" ||
			calls[1][2] != "backup-fetch "+dir+" LATEST" {
			t.Errorf("the stand-in saw %q, want wal-g backup-list --detail --json, then backup-fetch", calls)
		}
	})

	t.Run("envdir and use_iam", func(t *testing.T) {
		envdir := w.envdir(t, map[string]string{"WALE_S3_PREFIX": "file://" + w.storage, "AWS_SECRET_ACCESS_KEY": "s3cr3t-from-envdir"})
		dir := w.user.DataDir(t)
		log := filepath.Join(w.user.TempDir(t), "calls")
		res, rec := plugintest.AssertClone(t, c, sdk.CloneRequest{Method: "wal_e", Cluster: w.cluster(dir),
			Options: plugintest.Options("tool_path="+w.walE, "envdir="+envdir, "use_iam=1"),
			Env:     w.env("FAKEWAL_LOG="+log, "FAKEWAL_ECHO_ENV=AWS_SECRET_ACCESS_KEY")})
		checkClone(t, dir, res, true)
		plugintest.AssertNoSecret(t, rec, "s3cr3t-from-envdir")
		if !logged(rec, "AWS_SECRET_ACCESS_KEY="+sdk.Mask) {
			t.Error("the tool's line showing the secret was not logged masked")
		}
		calls := standInLog(t, log)
		if len(calls) != 2 {
			t.Fatalf("the stand-in saw %q, want backup-list and backup-fetch", calls)
		}
		for _, call := range calls {
			if call[1] != "--aws-instance-profile" || call[3] != w.storage {
				t.Errorf("call %q: want --aws-instance-profile and the storage named in the envdir", call)
			}
		}
		rc := res.RecoverySettings["restore_command"]
		if !strings.Contains(rc, " envdir "+envdir+" "+w.walE+" --aws-instance-profile wal-fetch") {
			t.Errorf("restore_command %q does not run the tool under the envdir", rc)
		}

		t.Run("restore_command fetches WAL as PostgreSQL runs it", func(t *testing.T) {
			seg := filepath.Base(firstArchived(t, w.storage))
			dest := filepath.Join(w.user.TempDir(t), "RECOVERYXLOG")
			cmd := strings.NewReplacer("%f", seg, "%p", dest, "%%", "%").Replace(rc)
			out, err := exec.Command("/bin/sh", "-c", cmd).CombinedOutput()
			if err != nil {
				t.Fatalf("%s: %v\n%s", cmd, err, out)
			}
			if fi, err := os.Stat(dest); err != nil || fi.Size() != 16*mib {
				t.Errorf("restore_command fetched %v (%v), want a 16 MB segment", fi, err)
			}
		})

		t.Run("the replica starts as a standby and replays the archive", func(t *testing.T) {
			w.primary.Exec(t, "CREATE TABLE after_clone AS SELECT 42 AS answer")
			w.switchAndArchive(t)
			s := startRestored(t, w, dir, res)
			pgtest.WaitFor(t, s, "SELECT count(*) FROM pg_class WHERE relname = 'after_clone' AND pg_is_in_recovery()", "1")
		})
	})

	t.Run("backup-fetch is retried", func(t *testing.T) {
		tests := []struct {
			name     string
			retries  string
			failures int
			fetches  int
			ok       bool
		}{
			{name: "one failure, one retry", retries: "1", failures: 1, fetches: 2, ok: true},
			{name: "one failure, no retry", retries: "0", failures: 1, fetches: 1},
			{name: "two failures, the default two retries", failures: 2, fetches: 3, ok: true},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				dir := w.user.DataDir(t)
				state := w.user.TempDir(t)
				o := plugintest.Options("tool_path=" + w.walE)
				if tc.retries != "" {
					o = append(o, plugintest.Options("retries="+tc.retries)...)
				}
				req := sdk.CloneRequest{Method: "wal_e", Cluster: w.cluster(dir), Options: o,
					Env: w.env("WALE_S3_PREFIX=file://"+w.storage, "FAKEWAL_STATE="+state, "FAKEWAL_FETCH_FAILURES="+strconv.Itoa(tc.failures))}
				if tc.ok {
					res, _ := plugintest.AssertClone(t, c, req)
					checkClone(t, dir, res, true)
					if _, err := os.Stat(filepath.Join(dir, "partial-fetch")); err == nil {
						t.Error("what the failed attempt left was not cleared")
					}
				} else {
					_, err := c.Clone(ctx, req, nil)
					if !errors.Is(err, sdk.ErrMethodFailed) || !strings.Contains(err.Error(), "injected failure") {
						t.Errorf("Clone returned %v, want a method failure carrying the tool's last line", err)
					}
				}
				b, _ := os.ReadFile(filepath.Join(state, "backup-fetch.count"))
				if got := strings.TrimSpace(string(b)); got != strconv.Itoa(tc.fetches) {
					t.Errorf("backup-fetch ran %s times, want %d", got, tc.fetches)
				}
			})
		}
	})

	t.Run("pg_wal", func(t *testing.T) {
		broken := w.storageDir(t)
		waldir := filepath.Join(w.user.TempDir(t), "wal")
		w.primary.Basebackup(t, filepath.Join(broken, "basebackups_005", "linked"), "--waldir="+waldir)
		if err := os.RemoveAll(waldir); err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name    string
			storage string
			env     []string
		}{
			{name: "a broken symbolic link becomes a directory", storage: broken},
			{name: "a missing pg_wal is created", storage: w.storage, env: []string{"FAKEWAL_SKIP_WAL=1"}},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				dir := w.user.DataDir(t)
				res, _ := plugintest.AssertClone(t, c, sdk.CloneRequest{Method: "wal_e", Cluster: w.cluster(dir),
					Options: plugintest.Options("tool_path=" + w.walE), Env: w.env(append(tc.env, "WALE_S3_PREFIX=file://"+tc.storage)...)})
				checkClone(t, dir, res, true)
				fi, err := os.Lstat(filepath.Join(dir, "pg_wal"))
				if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
					t.Errorf("pg_wal is %v (%v), want a directory with mode 0700", fi, err)
				}
			})
		}
	})

	t.Run("failures", func(t *testing.T) {
		empty := w.storageDir(t)
		tests := []struct {
			name   string
			opts   sdk.Options
			env    []string
			expect string
		}{
			{name: "wal-e finds no backup", opts: plugintest.Options("tool_path=" + w.walE), env: []string{"WALE_S3_PREFIX=file://" + empty}, expect: "no base backup"},
			{name: "wal-g finds no backup", opts: plugintest.Options("tool=wal-g", "tool_path="+w.walG), env: []string{"WALG_FILE_PREFIX=" + empty}, expect: "no base backup"},
			{name: "the tool fails", opts: plugintest.Options("tool_path="+w.walE, "retries=1"), expect: "no storage prefix defined"},
			{name: "the tool is missing", opts: plugintest.Options("tool_path="+filepath.Join(empty, "wal-e"), "retries=0"), expect: "while listing the latest backup"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				_, err := c.Clone(ctx, sdk.CloneRequest{Method: "wal_e", Cluster: w.cluster(w.user.DataDir(t)), Options: tc.opts,
					ConnString: w.connString(), Env: w.env(tc.env...)}, nil)
				if !errors.Is(err, sdk.ErrMethodFailed) || !strings.Contains(err.Error(), tc.expect) {
					t.Errorf("Clone returned %v, want an sdk.ErrMethodFailed mentioning %q", err, tc.expect)
				}
			})
		}
	})
}

func TestBootstrap(t *testing.T) {
	w := newWorld(t)
	w.primary.Exec(t, "CREATE TABLE after_backup AS SELECT 7 AS answer")
	w.switchAndArchive(t)
	c := plugintest.Connect(t, New())
	dir := w.user.DataDir(t)
	// PostgreSQL runs restore_command without the plugin's environment: the envdir carries the storage.
	envdir := w.envdir(t, map[string]string{"WALE_S3_PREFIX": "file://" + w.storage})
	res, _ := plugintest.AssertBootstrap(t, c, sdk.BootstrapRequest{Method: "from_wale", Cluster: w.cluster(dir),
		Options: plugintest.Options("tool_path="+w.walE, "envdir="+envdir), Env: w.env()})
	checkClone(t, dir, res, false)

	// As pgimaged does: recovery settings, then start; the archive is replayed to its end and
	// the new cluster promotes itself.
	s := startRestored(t, w, dir, res)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := s.WaitPromoted(ctx); err != nil {
		t.Fatal(err)
	}
	pgtest.WaitFor(t, s, "SELECT answer FROM after_backup", "7")
}

func checkClone(t *testing.T, dir string, res sdk.Result, standby bool) {
	t.Helper()
	if res.Standby != standby || res.KeepExistingRecovery {
		t.Errorf("result %+v: want Standby %v and recovery settings for pgimaged to write", res, standby)
	}
	if rc := res.RecoverySettings["restore_command"]; !strings.Contains(rc, `wal-fetch "%f" "%p"`) {
		t.Errorf("restore_command %q does not run wal-fetch", rc)
	}
	for _, f := range []string{"PG_VERSION", "global/pg_control", "backup_label"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("the restored data directory lacks %s: %v", f, err)
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, "pg_wal")); err != nil || !fi.IsDir() {
		t.Errorf("the restored data directory has no pg_wal directory: %v", err)
	}
}

func checkFetchProgress(t *testing.T, rec *plugintest.Recorder, size int64) {
	t.Helper()
	var fetch []sdk.Progress
	for _, p := range rec.ProgressEvents() {
		if p.Phase == PhaseBackupFetch {
			fetch = append(fetch, p)
		}
	}
	if len(fetch) < 2 || fetch[0].Done != 0 || fetch[len(fetch)-1] != (sdk.Progress{Phase: PhaseBackupFetch, Done: size, Total: size}) {
		t.Errorf("backup-fetch progress %+v, want 0 to %d of %d", fetch, size, size)
	}
}

func logged(rec *plugintest.Recorder, s string) bool {
	for _, l := range rec.Logs() {
		if strings.Contains(l.Message, s) {
			return true
		}
	}
	return false
}

func firstArchived(t *testing.T, storage string) string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(storage, "wal_005"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if len(e.Name()) == 24 {
			return filepath.Join(storage, "wal_005", e.Name())
		}
	}
	t.Fatal("nothing archived")
	return ""
}

// startRestored writes the result's recovery settings as pgimaged does, starts the cluster on a
// free port with archiving off, and stops it when the test ends.
func startRestored(t *testing.T, w *world, dir string, res sdk.Result) *pg.Server {
	t.Helper()
	if err := pg.WriteRecovery(dir, 15, pg.Recovery{Settings: res.RecoverySettings, Standby: res.Standby}); err != nil {
		t.Fatal(err)
	}
	return w.primary.StartCopy(t, dir)
}
