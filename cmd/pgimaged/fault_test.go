package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgimaged/pgimaged/core/pg"
	"github.com/pgimaged/pgimaged/internal/pgtest"
	"github.com/pgimaged/pgimaged/internal/testenv"
)

// TestFaults is the fault suite: real PostgreSQL, pg_basebackup, etcd and the real pgimaged
// binary, each case a fault an operator meets (a source killed mid-copy, a full disk, a SIGKILL
// of pgimaged, an etcd outage, a plugin swapped under a pin, the same configuration started
// twice, hostile configuration files...) and the outcome it must have. It ends with one line:
//
//	faults: N tried, N survived, N data lost, N processes left
//
// A case survives when every assertion of it held. "Data lost" counts cases in which a file
// pgimaged did not create vanished or a good copy was deleted. "Processes left" counts the
// processes still running after a case whose command line or working directory names the
// case's own directory (every process a case starts runs there or names it); they are killed
// once counted.
//
// The suite shares what it safely can between cases: one primary holding ~200 MB (for faults
// that need a copy that lasts), one small cluster run by pgimaged on the file DCS, one run on
// etcd. Each case has a deadline: a regression fails it instead of hanging the suite.
func TestFaults(t *testing.T) {
	s := &faultSuite{parent: t}
	began := time.Now()

	// Hostile configuration files (issue case 11).
	s.run(t, "config nested 100000 deep", 45*time.Second, s.caseConfigNested)
	s.run(t, "config with 4000 errors", 45*time.Second, s.caseConfigManyErrors)

	// A plugin removed or replaced between runs.
	s.run(t, "plugin removed between runs", time.Minute, s.casePluginRemoved)
	s.run(t, "plugin replaced under a sha256 pin", time.Minute, s.casePluginReplaced)

	// Faults during a long copy from the primary with data.
	s.run(t, "disk full mid-clone", 2*time.Minute, s.caseDiskFull)
	s.run(t, "agent SIGKILLed mid-clone and restarted", 3*time.Minute, s.caseAgentKilled)
	s.run(t, "source killed mid-clone", 2*time.Minute, s.caseSourceKilled)

	// The numbered cases of the safety issue.
	s.run(t, "(1) keep_data copy then exit 1 under run", 2*time.Minute, s.caseKeepDataFailedCopy)
	s.run(t, "(2) unix_socket_directories as users set it", 45*time.Second, s.caseSocketDirectories)
	s.run(t, "(3) SIGTERM-proof method with timeout", 90*time.Second, s.caseStubbornMethod)
	s.run(t, "(5) point-in-time bootstrap whose recovery pauses", 2*time.Minute, s.casePausedRecovery)
	s.run(t, "(6) clone into the parent of a running cluster", time.Minute, s.caseCloneIntoParent)
	s.run(t, "(9) method prints non-UTF-8 after a good copy", time.Minute, s.caseNonUTF8)
	s.run(t, "(10) keep_data method runs pg_basebackup -R", time.Minute, s.caseBasebackupR)

	// Two agents on one configuration.
	s.run(t, "two agents, one data directory", 45*time.Second, s.caseTwoAgents)

	// etcd outages.
	s.run(t, "etcd stopped 20s in steady state", 3*time.Minute, s.caseEtcdSteady)
	s.run(t, "etcd stopped 20s during a clone", 3*time.Minute, s.caseEtcdDuringClone)

	line := fmt.Sprintf("faults: %d tried, %d survived, %d data lost, %d processes left", s.tried, s.survived, s.dataLost, s.procsLeft)
	t.Logf("%s (in %s)", line, time.Since(began).Round(time.Second))
	fmt.Println(line)
}

// faultSuite counts the outcome of the cases and holds the fixtures they share.
type faultSuite struct {
	parent *testing.T

	tried, survived, dataLost, procsLeft int

	bigPrimary      shared[pgtest.Primary]
	smallFC, etcdFC shared[faultCluster]
}

// shared is a fixture the cases share, made by the first case that needs it.
type shared[T any] struct {
	once sync.Once
	v    *T
}

// get makes the fixture with build on the first call, and returns it; what names it for the
// cases that come after a failed build.
func (sh *shared[T]) get(s *faultSuite, c *faultCase, what string, build func(f *fixtureTB) *T) *T {
	c.t.Helper()
	sh.once.Do(func() {
		f := s.fixture(c.t)
		defer f.built() // also when building fails: the cleanups then report to the parent
		sh.v = build(f)
	})
	if sh.v == nil {
		c.t.Fatalf("%s could not be made (see the first case that needed it)", what)
	}
	return sh.v
}

// faultCase is one case while it runs.
type faultCase struct {
	t   *testing.T
	s   *faultSuite
	dir string          // the case's own directory: every process of the case names it or runs in it
	ctx context.Context // the case's deadline
	// markers are more paths that identify the case's processes (a data directory elsewhere).
	markers []string
	lost    []string
	// pids are processes of the case outside its directory (a victim cluster) that must be gone
	// when it ends.
	pids map[int]string
	// killed counts leftovers the case found and killed before it ended.
	killed int
}

// run runs one case as a subtest and counts its outcome.
func (s *faultSuite) run(t *testing.T, name string, deadline time.Duration, body func(c *faultCase)) {
	t.Helper()
	var c *faultCase
	ok := t.Run(name, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		c = &faultCase{t: t, s: s, dir: workDir(t), ctx: ctx, pids: map[int]string{}}
		// Registered first, so it runs last: after the case's agents and servers were stopped.
		t.Cleanup(func() {
			cancel()
			c.countLeftovers()
		})
		body(c)
	})
	if c == nil {
		return // not selected by -run
	}
	s.tried++
	if ok {
		s.survived++
	}
	if len(c.lost) > 0 {
		s.dataLost++
	}
}

// loseData records that a file pgimaged did not create vanished, or a good copy was deleted.
func (c *faultCase) loseData(format string, args ...any) {
	c.t.Helper()
	msg := fmt.Sprintf(format, args...)
	c.lost = append(c.lost, msg)
	c.t.Errorf("DATA LOST: %s", msg)
}

// kill counts processes of the case found running when they should not, and kills them at
// once (so that the case can go on: a leftover copy holds a walsender on the source).
func (c *faultCase) kill(procs map[int]string) {
	for pid := range procs {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	c.killed += len(procs)
}

// countLeftovers finds the case's processes still running, counts and kills them.
func (c *faultCase) countLeftovers() {
	c.s.procsLeft += c.killed
	left := processesOf(append([]string{c.dir}, c.markers...)...)
	for pid, cmd := range c.pids {
		if alive(pid, cmd) {
			left[pid] = cmd
		}
	}
	if len(left) == 0 {
		return
	}
	c.s.procsLeft += len(left)
	var lines []string
	for pid, cmd := range left {
		lines = append(lines, fmt.Sprintf("%d: %s", pid, cmd))
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	slices.Sort(lines)
	c.t.Errorf("%d processes of the case were still running after it ended (now killed):\n  %s", len(left), strings.Join(lines, "\n  "))
}

// processesOf lists live processes (not zombies) whose command line names one of dirs or whose
// working directory is inside one of them: pid → command line.
func processesOf(dirs ...string) map[int]string {
	out := map[int]string{}
	self := os.Getpid()
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		st, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		if i := bytes.LastIndexByte(st, ')'); i >= 0 && i+2 < len(st) && st[i+2] == 'Z' {
			continue
		}
		b, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		cmdline := strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
		cwd, _ := os.Readlink(filepath.Join("/proc", e.Name(), "cwd"))
		for _, d := range dirs {
			if d == "" {
				continue
			}
			if strings.Contains(cmdline, d) || cwd == d || strings.HasPrefix(cwd, d+"/") {
				out[pid] = cmdline
				break
			}
		}
	}
	return out
}

// environOf reads one variable of a process's environment ("" when unreadable or unset).
func environOf(pid int, name string) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		return ""
	}
	for _, kv := range strings.Split(string(b), "\x00") {
		if v, ok := strings.CutPrefix(kv, name+"="); ok {
			return v
		}
	}
	return ""
}

// filesHolding lists files in the system's temporary directories (two levels down) that contain
// secret, leaving out the directories in skip (a case's own files, which hold it by design).
func filesHolding(secret string, skip ...string) []string {
	var out []string
	roots := []string{"/tmp"}
	if d := os.TempDir(); d != "/tmp" {
		roots = append(roots, d)
	}
	for _, root := range roots {
		_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if d != nil && d.IsDir() {
					return fs.SkipDir
				}
				return nil
			}
			for _, s := range skip {
				if p == s || strings.HasPrefix(p, s+"/") {
					return fs.SkipDir
				}
			}
			depth := strings.Count(strings.TrimPrefix(p, root), "/")
			if d.IsDir() {
				if depth >= 2 {
					return fs.SkipDir
				}
				return nil
			}
			if !d.Type().IsRegular() {
				return nil
			}
			if fi, err := d.Info(); err != nil || fi.Size() > 64<<10 {
				return nil
			}
			if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, []byte(secret)) {
				out = append(out, p)
			}
			return nil
		})
	}
	return out
}

// noSecretOnDisk fails the case when a file in the temporary directories holds secret, and
// removes such files.
func (c *faultCase) noSecretOnDisk(secret string, skip ...string) {
	c.t.Helper()
	if files := filesHolding(secret, append([]string{c.dir}, skip...)...); len(files) > 0 {
		c.t.Errorf("files under the temporary directory hold the replication password: %q", files)
		for _, f := range files {
			_ = os.Remove(f)
		}
	}
}

// fixtureTB builds a fixture shared by several cases: failures while it is built belong to the
// case that builds it (in that case's goroutine); its cleanups run when TestFaults ends.
type fixtureTB struct {
	testing.TB // the parent test: Cleanup, TempDir
	mu         sync.Mutex
	cur        testing.TB
}

func (s *faultSuite) fixture(t *testing.T) *fixtureTB { return &fixtureTB{TB: s.parent, cur: t} }

// built hands failures over to the parent test, for the fixture's cleanups.
func (f *fixtureTB) built() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cur = f.TB
}

func (f *fixtureTB) now() testing.TB {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cur
}

func (f *fixtureTB) Helper()                        {}
func (f *fixtureTB) Error(args ...any)              { f.now().Error(args...) }
func (f *fixtureTB) Errorf(format string, a ...any) { f.now().Errorf(format, a...) }
func (f *fixtureTB) Fatal(args ...any)              { f.now().Fatal(args...) }
func (f *fixtureTB) Fatalf(format string, a ...any) { f.now().Fatalf(format, a...) }
func (f *fixtureTB) FailNow()                       { f.now().FailNow() }
func (f *fixtureTB) Fail()                          { f.now().Fail() }
func (f *fixtureTB) Log(args ...any)                { f.now().Log(args...) }
func (f *fixtureTB) Logf(format string, a ...any)   { f.now().Logf(format, a...) }
func (f *fixtureTB) Skip(args ...any)               { f.now().Skip(args...) }
func (f *fixtureTB) Skipf(format string, a ...any)  { f.now().Skipf(format, a...) }
func (f *fixtureTB) SkipNow()                       { f.now().SkipNow() }
func (f *fixtureTB) Failed() bool                   { return f.now().Failed() }

// --- configurations -------------------------------------------------------------------------

// faultCreds are a cluster's roles and passwords.
type faultCreds struct {
	super, superPass string
	repl, replPass   string
}

// memberSpec is one member's configuration; the zero value of a field takes the usual default.
type memberSpec struct {
	scope, name string
	dir         string // where the configuration and the data directory go
	dataDir     string // default <dir>/data
	top         string // top-level HCL: dcs block, loop_wait, ttl, tags
	listenHost  string // default 127.0.0.1
	params      string // more postgresql parameters, each as ", name = value"
	methods     string // create_replica_methods, as an HCL list
	extra       string // blocks after postgresql: bootstrap, methods, plugin pins
	pluginDir   string
	creds       faultCreds
}

// writeMember writes one member's configuration into spec.dir (created): its own port, the
// superuser's password through env(), the replication password through file() relative to the
// configuration, password logins and replication from 127.0.0.1.
func writeMember(t testing.TB, spec memberSpec) *node {
	t.Helper()
	if err := os.MkdirAll(spec.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	n := &node{name: spec.name, dir: spec.dir, port: pgtest.FreePort(t), superPass: spec.creds.superPass, replPass: spec.creds.replPass}
	n.dataDir = spec.dataDir
	if n.dataDir == "" {
		n.dataDir = filepath.Join(spec.dir, "data")
	}
	host := spec.listenHost
	if host == "" {
		host = "127.0.0.1"
	}
	n.env = []string{"FAULT_SUPERUSER_PASSWORD=" + spec.creds.superPass}
	n.config = memberHCL{scope: spec.scope, name: spec.name, dataDir: n.dataDir, pluginDir: spec.pluginDir, top: spec.top,
		listen: fmt.Sprintf("%s:%d", host, n.port), connect: fmt.Sprintf("127.0.0.1:%d", n.port), params: spec.params,
		super: spec.creds.super, superEnv: "FAULT_SUPERUSER_PASSWORD", repl: spec.creds.repl, replFile: "repl.pw",
		methods: spec.methods, extra: spec.extra,
	}.write(t, spec.dir, spec.creds.replPass)
	stopServerAtCleanup(t, n.dataDir)
	return n
}

// script copies a testdata/fault script into the case's directory (so that its path, in every
// command line it runs, names the case) and returns its path.
func (c *faultCase) script(name string) string {
	c.t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "fault", name))
	if err != nil {
		c.t.Fatal(err)
	}
	return writeFile(c.t, c.dir, name, string(b), 0o755)
}

// --- running pgimaged -----------------------------------------------------------------------

// startIn starts pgimaged with args in dir (its working directory, inherited by its plugins and
// their children); tb's cleanup stops it with SIGTERM, and kills its process group if it does
// not stop within a minute.
func startIn(tb testing.TB, dir string, env []string, args ...string) *agentProc {
	tb.Helper()
	a := launch(tb, dir, strings.Join(args, " "), env, args...)
	cmd := a.cmd
	tb.Cleanup(func() {
		if a.exited() {
			return
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-a.done:
		case <-time.After(time.Minute):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-a.done
			tb.Errorf("pgimaged %s did not stop within a minute of SIGTERM", a.config)
		}
	})
	return a
}

func (c *faultCase) start(env []string, args ...string) *agentProc {
	c.t.Helper()
	return startIn(c.t, c.dir, env, args...)
}

// faultRun is one finished pgimaged run.
type faultRun struct {
	result
	maxRSSKB int64
	elapsed  time.Duration
	timedOut bool
}

// pgimaged runs pgimaged to completion in the case's directory, within the case's deadline
// (a run still going then is killed with its process group, and the case fails).
func (c *faultCase) pgimaged(env []string, args ...string) faultRun {
	c.t.Helper()
	if c.ctx.Err() != nil {
		c.t.Errorf("the case's deadline passed before pgimaged %q could run", args)
		return faultRun{result: result{code: -1}, timedOut: true}
	}
	cmd := exec.CommandContext(c.ctx, pgimagedBin(c.t), args...)
	cmd.Dir = c.dir
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	began := time.Now()
	err := cmd.Run()
	r := faultRun{result: result{stdout: out.String(), stderr: errb.String()}, elapsed: time.Since(began)}
	if cmd.ProcessState != nil {
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			r.maxRSSKB = ru.Maxrss
		}
		r.code = cmd.ProcessState.ExitCode()
	}
	if c.ctx.Err() != nil {
		r.timedOut = true
		c.t.Errorf("pgimaged %q still ran when the case's deadline passed (%s); killed", args, r.elapsed.Round(time.Second))
	} else if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			c.t.Fatalf("running pgimaged %q: %v", args, err)
		}
	}
	return r
}

// --- PostgreSQL helpers ---------------------------------------------------------------------

// dial logs in over TCP with a password, giving up after a few seconds.
func dial(ctx context.Context, port int, user, password string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(fmt.Sprintf("host=127.0.0.1 port=%d user=%s dbname=postgres sslmode=disable connect_timeout=3", port, user))
	if err != nil {
		return nil, err
	}
	cfg.Password = password
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return pgx.ConnectConfig(cctx, cfg)
}

// queryOne runs sql on a fresh TCP connection and returns the first column as text.
func queryOne(ctx context.Context, port int, user, password, sql string) (string, error) {
	conn, err := dial(ctx, port, user, password)
	if err != nil {
		return "", err
	}
	defer conn.Close(context.Background())
	qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var v *string
	if err := conn.QueryRow(qctx, sql).Scan(&v); err != nil {
		return "", err
	}
	if v == nil {
		return "", nil
	}
	return *v, nil
}

// execSQL runs sql on a fresh TCP connection.
func execSQL(ctx context.Context, port int, user, password, sql string) error {
	conn, err := dial(ctx, port, user, password)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

// primaries lists the nodes whose server answers pg_is_in_recovery() = false.
func primaries(ctx context.Context, creds faultCreds, nodes map[string]*node) []string {
	var out []string
	for name, n := range nodes {
		if v, err := queryOne(ctx, n.port, creds.super, creds.superPass, "SELECT pg_is_in_recovery()::text"); err == nil && v == "false" {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// watchPrimaries polls the nodes until stop is closed and returns the largest set of servers
// that answered as primaries at the same time.
func watchPrimaries(ctx context.Context, creds faultCreds, nodes map[string]*node, stop <-chan struct{}) <-chan []string {
	res := make(chan []string, 1)
	go func() {
		var worst []string
		for {
			if p := primaries(ctx, creds, nodes); len(p) > len(worst) {
				worst = p
			}
			select {
			case <-stop:
				res <- worst
				return
			case <-ctx.Done():
				res <- worst
				return
			case <-time.After(300 * time.Millisecond):
			}
		}
	}()
	return res
}

// until polls cond every 250ms until it holds (true) or the case's deadline passes (false).
func (c *faultCase) until(cond func() bool) bool { return until(c.ctx, cond) }

// until polls cond every 250ms until it holds (true) or ctx ends (false).
func until(ctx context.Context, cond func() bool) bool {
	for {
		if cond() {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// streaming reports whether pg_stat_replication on leader shows every named replica streaming.
func streaming(ctx context.Context, leader *node, creds faultCreds, names ...string) bool {
	conn, err := dial(ctx, leader.port, creds.super, creds.superPass)
	if err != nil {
		return false
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, "SELECT application_name FROM pg_stat_replication WHERE state = 'streaming'")
	if err != nil {
		return false
	}
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return false
	}
	for _, n := range names {
		if !slices.Contains(got, n) {
			return false
		}
	}
	return true
}

// dirSize sums the sizes of the regular files below dir.
func dirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// emptyOrGone reports whether dir is absent or holds nothing.
func emptyOrGone(dir string) bool {
	ents, err := os.ReadDir(dir)
	return errors.Is(err, fs.ErrNotExist) || (err == nil && len(ents) == 0)
}

// --- fixtures -------------------------------------------------------------------------------

// bigRows makes the primary's table about 200 MB: a copy of it lasts seconds when throttled,
// and overflows a 64 MB file system.
const bigRows = 800000

// big is a primary (not run by pgimaged) holding ~200 MB, with a superuser and a replication
// role of non-default names.
func (s *faultSuite) big(c *faultCase) *pgtest.Primary {
	c.t.Helper()
	return s.bigPrimary.get(s, c, "the primary with data", func(f *fixtureTB) *pgtest.Primary {
		began := time.Now()
		p := pgtest.StartPrimary(f, pgtest.Options{Superuser: "admin", ReplUser: "standby_copy",
			Parameters: map[string]string{"max_wal_size": "1GB", "checkpoint_timeout": "30min"}})
		p.Exec(f, fmt.Sprintf("CREATE TABLE filler AS SELECT g AS id, repeat(md5(g::text), 6) AS pad FROM generate_series(1, %d) g", bigRows))
		p.Exec(f, "CHECKPOINT")
		c.t.Logf("primary with %s of data made in %s", p.QueryString(f, "SELECT pg_size_pretty(pg_database_size('postgres'))"), time.Since(began).Round(100*time.Millisecond))
		return p
	})
}

func bigCreds(p *pgtest.Primary) faultCreds {
	return faultCreds{super: p.Superuser, superPass: p.SuperPass, repl: p.ReplUser, replPass: p.ReplPass}
}

// faultCluster is a cluster run by pgimaged: its leader's agent and what members share.
type faultCluster struct {
	scope  string
	top    string // the dcs block and loop timing
	creds  faultCreds
	dir    string
	nodes  map[string]*node
	agents map[string]*agentProc
	etcd   *faultEtcd
}

// leader is the member that bootstrapped.
func (fc *faultCluster) leader() *node { return fc.nodes["alpha"] }

// member writes a member configuration of this cluster in dir.
func (fc *faultCluster) member(t testing.TB, dir, name string, spec memberSpec) *node {
	t.Helper()
	spec.scope, spec.name, spec.dir, spec.creds = fc.scope, name, dir, fc.creds
	spec.top = fc.top + "\n" + spec.top
	return writeMember(t, spec)
}

// bootCluster starts member alpha (listening on "*") and waits until it runs as the primary.
func bootCluster(c *faultCase, f *fixtureTB, fc *faultCluster) {
	c.t.Helper()
	fc.nodes, fc.agents = map[string]*node{}, map[string]*agentProc{}
	n := fc.member(f, filepath.Join(fc.dir, "alpha"), "alpha", memberSpec{listenHost: "*",
		extra: "method \"basebackup\" { checkpoint = \"fast\" }"})
	fc.nodes["alpha"] = n
	fc.agents["alpha"] = startIn(f, fc.dir, n.env, "run", "-config", n.config)
	if !c.waitRole(n, fc.agents["alpha"], "alpha", "primary") {
		c.t.Fatalf("the cluster's first member did not come up as primary:\n%s", fc.agents["alpha"].out.String())
	}
}

// waitRole waits until `status` through n shows member name running with role.
func (c *faultCase) waitRole(via *node, a *agentProc, name, role string) bool {
	c.t.Helper()
	return c.until(func() bool {
		if a != nil && a.exited() {
			return false
		}
		st, err := faultStatus(c, via)
		if err != nil {
			return false
		}
		m, ok := st.member(name)
		return ok && m.State == "running" && m.Role == role && (role != "primary" || st.Leader == name)
	})
}

func faultStatus(c *faultCase, n *node) (clusterStatus, error) {
	r := c.pgimaged(n.env, "status", "-json", "-config", n.config)
	var st clusterStatus
	if r.code != 0 {
		return st, fmt.Errorf("status failed: %s", r.result)
	}
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		return st, fmt.Errorf("status -json printed no JSON: %w", err)
	}
	return st, nil
}

// small is a cluster of one member on the file DCS, run by pgimaged, superuser "dba" and
// replication role "mirror".
func (s *faultSuite) small(c *faultCase) *faultCluster {
	c.t.Helper()
	return s.smallFC.get(s, c, "the small cluster", func(f *fixtureTB) *faultCluster {
		fc := &faultCluster{scope: "faults", dir: testenv.PostgresUser(f).TempDir(f),
			creds: faultCreds{super: "dba", superPass: "Dba-" + randomHex(f), repl: "mirror", replPass: "M1rr0r-" + randomHex(f)}}
		fc.top = fmt.Sprintf("dcs \"file\" { path = %q }\nloop_wait = \"1s\"", filepath.Join(fc.dir, "dcs"))
		bootCluster(c, f, fc)
		return fc
	})
}

// etcdCluster is a primary and a replica, both agents on an etcd of the suite's own.
func (s *faultSuite) etcdCluster(c *faultCase) *faultCluster {
	c.t.Helper()
	return s.etcdFC.get(s, c, "the etcd cluster", func(f *fixtureTB) *faultCluster {
		fc := &faultCluster{scope: "faults-etcd", dir: testenv.PostgresUser(f).TempDir(f),
			creds: faultCreds{super: "postgres", superPass: "Pg-" + randomHex(f), repl: "replication_agent", replPass: "Ra-" + randomHex(f)}}
		fc.etcd = newFaultEtcd(f, fc.dir)
		fc.etcd.start(f)
		fc.top = fmt.Sprintf("dcs \"etcd\" { endpoints = [%q] }\nttl       = \"5s\"\nloop_wait = \"1s\"", fc.etcd.endpoint)
		bootCluster(c, f, fc)
		n := fc.member(f, filepath.Join(fc.dir, "beta"), "beta", memberSpec{extra: "method \"basebackup\" { checkpoint = \"fast\" }"})
		fc.nodes["beta"] = n
		fc.agents["beta"] = startIn(f, fc.dir, n.env, "run", "-config", n.config)
		if !c.waitRole(fc.leader(), fc.agents["beta"], "beta", "replica") {
			c.t.Fatalf("beta did not become a replica:\n%s", fc.agents["beta"].out.String())
		}
		return fc
	})
}

// faultEtcd is an etcd that a case can stop and start again with its data.
type faultEtcd struct {
	bin, dir, dataDir  string
	clientURL, peerURL string
	endpoint           string
	mu                 sync.Mutex
	cmd                *exec.Cmd
	exited             chan struct{}
}

func newFaultEtcd(tb testing.TB, dir string) *faultEtcd {
	tb.Helper()
	e := &faultEtcd{bin: testenv.LookPath(tb, "etcd"), dir: dir}
	cp, pp := pgtest.FreePort(tb), pgtest.FreePort(tb)
	e.clientURL, e.peerURL = fmt.Sprintf("http://127.0.0.1:%d", cp), fmt.Sprintf("http://127.0.0.1:%d", pp)
	e.endpoint = fmt.Sprintf("127.0.0.1:%d", cp)
	e.dataDir = filepath.Join(dir, "etcd-data")
	// etcd syncs every write: on a busy disk a sync can outlast a lease. Its data goes to
	// memory where the machine offers a tmpfs.
	if shm, err := os.MkdirTemp("/dev/shm", "pgimaged-fault-etcd-"); err == nil {
		e.dataDir = shm
		tb.Cleanup(func() { _ = os.RemoveAll(shm) })
	}
	tb.Cleanup(e.stop)
	return e
}

func (e *faultEtcd) start(tb testing.TB) {
	tb.Helper()
	logFile, err := os.OpenFile(filepath.Join(e.dir, "etcd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		tb.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command(e.bin, "--name=fault", "--data-dir="+e.dataDir,
		"--listen-client-urls="+e.clientURL, "--advertise-client-urls="+e.clientURL,
		"--listen-peer-urls="+e.peerURL, "--initial-advertise-peer-urls="+e.peerURL,
		"--initial-cluster=fault="+e.peerURL, "--logger=zap", "--log-level=error")
	cmd.Dir = e.dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("starting etcd: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	e.mu.Lock()
	e.cmd, e.exited = cmd, exited
	e.mu.Unlock()
	end := time.Now().Add(time.Minute)
	for !etcdHealthy(e.clientURL) {
		select {
		case <-exited:
			out, _ := os.ReadFile(logFile.Name())
			tb.Fatalf("etcd exited:\n%s", out)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(end) {
			tb.Fatalf("etcd at %s is not healthy after a minute", e.clientURL)
		}
	}
}

// stop ends etcd (SIGTERM, then SIGKILL after 10s), keeping its data.
func (e *faultEtcd) stop() {
	e.mu.Lock()
	cmd, exited := e.cmd, e.exited
	e.cmd = nil
	e.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	}
}

// --- the cases ------------------------------------------------------------------------------

var goTrace = regexp.MustCompile(`goroutine \d+|runtime\.|stack overflow|fatal error:`)

// (11) A list nested 100,000 deep: a diagnostic and the configuration error's exit code, no Go
// stack trace, bounded memory.
func (s *faultSuite) caseConfigNested(c *faultCase) {
	const depth = 100000
	body := "scope    = \"s\"\nname     = \"n\"\ndata_dir = \"data\"\ntags     = { deep = " +
		strings.Repeat("[", depth) + strings.Repeat("]", depth) + " }\n"
	cfg := writeFile(c.t, c.dir, "nested.hcl", body, 0o600)
	r := c.pgimaged(nil, "validate", "-config", cfg)
	if r.timedOut {
		return
	}
	c.t.Logf("validate of a list nested %d deep: exit %d in %s, %d KB resident at most, %d bytes on stderr", depth, r.code, r.elapsed.Round(time.Millisecond), r.maxRSSKB, len(r.stderr))
	if r.code != 3 {
		c.t.Errorf("exit code %d, want 3 (a configuration error)", r.code)
	}
	if goTrace.MatchString(r.stderr) {
		c.t.Errorf("a Go stack trace instead of a diagnostic (%d bytes):\n%.600s", len(r.stderr), r.stderr)
	}
	if !goTrace.MatchString(r.stderr) && !strings.Contains(r.stderr, "nested.hcl:") {
		c.t.Errorf("no diagnostic at a place in nested.hcl:\n%.600s", r.stderr)
	}
	if r.maxRSSKB > 256<<10 {
		c.t.Errorf("validate used %d MB of memory on a %d KB file", r.maxRSSKB>>10, len(body)>>10)
	}
}

// (11) A configuration with 4,000 errors finishes and shows about a hundred of them.
func (s *faultSuite) caseConfigManyErrors(c *faultCase) {
	var b strings.Builder
	b.WriteString("scope    = \"s\"\nname     = \"n\"\ndata_dir = \"data\"\n")
	for i := range 4000 {
		fmt.Fprintf(&b, "unknown_setting_%d = \"x\"\n", i)
	}
	cfg := writeFile(c.t, c.dir, "errors.hcl", b.String(), 0o600)
	ctx, cancel := context.WithTimeout(c.ctx, 20*time.Second)
	defer cancel()
	c.ctx = ctx
	r := c.pgimaged(nil, "validate", "-config", cfg)
	if r.timedOut {
		return
	}
	shown := strings.Count(r.stderr, "Error: ")
	c.t.Logf("validate of 4000 errors: exit %d in %s, %d diagnostics shown", r.code, r.elapsed.Round(time.Millisecond), shown)
	if r.code != 3 {
		c.t.Errorf("exit code %d, want 3 (a configuration error)", r.code)
	}
	if shown == 0 || shown > 110 {
		c.t.Errorf("%d diagnostics shown, want at most about 100 (then a count)", shown)
	}
}

// pluginCopy copies the suite's plugins into dir (0755), for a case that changes them.
func pluginCopy(c *faultCase, dir string) string {
	c.t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		c.t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		c.t.Fatal(err)
	}
	ents, err := os.ReadDir(pluginDir(c.t))
	if err != nil {
		c.t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(pluginDir(c.t), e.Name()))
		if err != nil {
			c.t.Fatal(err)
		}
		writeFile(c.t, dir, e.Name(), string(b), 0o755)
	}
	return dir
}

// checkUntouched fails the case when the data directory was created or the operator's file
// beside it changed.
func (c *faultCase) checkUntouched(n *node, note string) {
	c.t.Helper()
	if _, err := os.Stat(n.dataDir); !errors.Is(err, fs.ErrNotExist) {
		c.t.Errorf("the refused run created or touched the data directory (%v)", err)
	}
	if b, err := os.ReadFile(note); err != nil || string(b) != "the operator's note\n" {
		c.loseData("the operator's file beside the data directory changed or vanished (%v)", err)
	}
}

// A plugin binary removed between runs: the next run refuses the method, says why, and touches
// no data.
func (s *faultSuite) casePluginRemoved(c *faultCase) {
	fc := s.small(c)
	plugins := pluginCopy(c, filepath.Join(c.dir, "plugins"))
	n := fc.member(c.t, filepath.Join(c.dir, "m"), "removed", memberSpec{pluginDir: plugins,
		methods: `["basebackup"]`, extra: "method \"basebackup\" { attempts = 1 }"})
	note := writeFile(c.t, n.dir, "NOTE", "the operator's note\n", 0o600)
	if r := c.pgimaged(n.env, "validate", "-config", n.config); r.code != 0 {
		c.t.Fatalf("the configuration is not valid before the plugin goes: %s", r.result)
	}
	if err := os.Remove(filepath.Join(plugins, "pgimaged-plugin-basebackup")); err != nil {
		c.t.Fatal(err)
	}
	r := c.pgimaged(n.env, "clone", "-config", n.config, "--connstring", fc.leader().connURL())
	c.t.Logf("clone with the plugin removed: exit %d\n%s", r.code, r.stderr)
	if r.code == 0 {
		c.t.Errorf("the clone succeeded without its plugin")
	}
	if !strings.Contains(r.stderr, "basebackup") || !regexp.MustCompile(`(?i)not found|no plugin|not installed|missing`).MatchString(r.stderr) {
		c.t.Errorf("the refusal does not say that plugin basebackup is missing:\n%s", r.stderr)
	}
	if strings.Contains(r.stderr, "without a source") {
		c.t.Errorf("the refusal blames a missing source for a missing plugin:\n%s", r.stderr)
	}
	c.checkUntouched(n, note)
}

// A plugin replaced by a different binary while a sha256 pin names the old one: the next run
// refuses that method, names the plugin and the mismatch, and touches no data.
func (s *faultSuite) casePluginReplaced(c *faultCase) {
	fc := s.small(c)
	plugins := pluginCopy(c, filepath.Join(c.dir, "plugins"))
	path := filepath.Join(plugins, "pgimaged-plugin-basebackup")
	sum := fileSum(c.t, path)
	n := fc.member(c.t, filepath.Join(c.dir, "m"), "pinned", memberSpec{pluginDir: plugins,
		extra: fmt.Sprintf("method \"basebackup\" { attempts = 1 }\nplugin \"basebackup\" { sha256 = %q }", sum)})
	note := writeFile(c.t, n.dir, "NOTE", "the operator's note\n", 0o600)
	if r := c.pgimaged(n.env, "validate", "-config", n.config); r.code != 0 {
		c.t.Fatalf("the pinned configuration is not valid before the swap: %s", r.result)
	}
	other, err := os.ReadFile(filepath.Join(plugins, "pgimaged-plugin-script"))
	if err != nil {
		c.t.Fatal(err)
	}
	if err := os.Remove(path); err != nil {
		c.t.Fatal(err)
	}
	writeFile(c.t, plugins, "pgimaged-plugin-basebackup", string(other), 0o755)
	r := c.pgimaged(n.env, "clone", "-config", n.config, "--connstring", fc.leader().connURL())
	c.t.Logf("clone with the pinned plugin replaced: exit %d\n%s", r.code, r.stderr)
	if r.code == 0 {
		c.t.Errorf("the clone ran a plugin whose checksum does not match its pin")
	}
	if !strings.Contains(r.stderr, "basebackup") || !regexp.MustCompile(`(?i)checksum|sha256`).MatchString(r.stderr) {
		c.t.Errorf("the refusal does not name plugin basebackup and the checksum mismatch:\n%s", r.stderr)
	}
	c.checkUntouched(n, note)
}

func fileSum(t testing.TB, path string) string {
	t.Helper()
	out, err := exec.Command("sha256sum", path).Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(out))[0]
}

// connURL is how a member is reached, as the DCS publishes it.
func (n *node) connURL() string { return fmt.Sprintf("postgres://127.0.0.1:%d/postgres", n.port) }

// replicaOfBig writes the configuration of a replica of the primary with data.
func replicaOfBig(c *faultCase, p *pgtest.Primary, name, dataDir, basebackup string) *node {
	c.t.Helper()
	return writeMember(c.t, memberSpec{scope: "big", name: name, dir: filepath.Join(c.dir, name), dataDir: dataDir,
		creds: bigCreds(p), extra: "method \"basebackup\" {\n  checkpoint = \"fast\"\n  attempts   = 1\n" + basebackup + "}"})
}

// waitCopying waits until a clone has put at least min bytes into dataDir, or the agent ended.
func (c *faultCase) waitCopying(a *agentProc, dataDir string, min int64) bool {
	c.t.Helper()
	ok := c.until(func() bool { return a.exited() || dirSize(dataDir) >= min })
	return ok && !a.exited()
}

// noneRunning fails the case when a process of the case still runs (waiting a moment for
// signals already sent to arrive).
func (c *faultCase) noneRunning(what string) {
	c.t.Helper()
	var left map[int]string
	end := time.Now().Add(2 * time.Second)
	for {
		left = processesOf(append([]string{c.dir}, c.markers...)...)
		if len(left) == 0 || time.Now().After(end) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(left) > 0 {
		c.t.Errorf("%s, these still run: %v", what, left)
	}
}

// Disk full mid-clone: the data directory lives on a 64 MB tmpfs, smaller than the source.
func (s *faultSuite) caseDiskFull(c *faultCase) {
	mnt := os.Getenv(faultTmpfsEnv)
	if mnt == "" {
		testenv.Missing(c.t, "a small tmpfs for the disk-full case (mounted as root by TestMain): %s", os.Getenv(faultTmpfsErrEnv))
	}
	p := s.big(c)
	sub := filepath.Join(mnt, filepath.Base(c.dir))
	if err := os.Mkdir(sub, 0o700); err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { _ = os.RemoveAll(sub) })
	c.markers = append(c.markers, sub)
	n := replicaOfBig(c, p, "full", filepath.Join(sub, "data"), "")
	r := c.pgimaged(n.env, "clone", "-config", n.config, "--connstring", p.ConnURL())
	c.t.Logf("clone onto a 64 MB file system: exit %d in %s\n%s", r.code, r.elapsed.Round(time.Millisecond), r.stderr)
	if r.code == 0 {
		c.t.Fatalf("a ~200 MB clone onto a 64 MB file system succeeded")
	}
	if !strings.Contains(r.stderr, "No space left on device") {
		c.t.Errorf("the error does not say the disk is full:\n%s", r.stderr)
	}
	if !emptyOrGone(n.dataDir) {
		c.t.Errorf("the half copy is still there: %d bytes in %s", dirSize(n.dataDir), n.dataDir)
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(mnt, &st); err == nil {
		if used := int64(st.Blocks-st.Bfree) * st.Bsize; used > 1<<20 {
			c.t.Errorf("%d KB are still used on the small file system after the failed clone", used>>10)
		}
	}
	c.noneRunning("after the failed clone")
	c.noSecretOnDisk(p.ReplPass)
}

// The agent SIGKILLed mid-clone and started again: nothing of the killed run is left, here or on
// the source, and the new run makes the replica.
func (s *faultSuite) caseAgentKilled(c *faultCase) {
	p := s.big(c)
	began := time.Now()
	n := replicaOfBig(c, p, "phoenix", "", "  max-rate = \"32M\"\n")
	a := c.start(n.env, "clone", "-config", n.config, "--connstring", p.ConnURL())
	if !c.waitCopying(a, n.dataDir, 24<<20) {
		c.t.Fatalf("the clone did not get going:\n%s", a.out.String())
	}
	kids := descendants(a.cmd.Process.Pid)
	var sockDirs, passfiles []string
	for pid := range kids {
		if d := environOf(pid, "PLUGIN_UNIX_SOCKET_DIR"); d != "" && !slices.Contains(sockDirs, d) {
			sockDirs = append(sockDirs, d)
		}
		if f := environOf(pid, "PGPASSFILE"); f != "" && !slices.Contains(passfiles, f) {
			passfiles = append(passfiles, f)
		}
	}
	senders := walsenders(c, p, began)
	c.t.Logf("killing pgimaged (pid %d) with %d descendants, %d walsenders on the source, socket dirs %q, passfiles %q",
		a.cmd.Process.Pid, len(kids), len(senders), sockDirs, passfiles)
	if len(senders) == 0 {
		c.t.Errorf("no walsender on the source while the copy runs")
	}
	a.kill()

	again := c.pgimaged(n.env, "clone", "-config", n.config, "--connstring", p.ConnURL())
	c.t.Logf("the clone run again after the SIGKILL: exit %d in %s", again.code, again.elapsed.Round(time.Millisecond))
	if again.code != 0 {
		c.t.Errorf("the clone run again after the SIGKILL failed: %s", again.result)
	}
	left := map[int]string{}
	for pid, cmd := range kids {
		if alive(pid, cmd) {
			left[pid] = cmd
		}
	}
	if len(left) > 0 {
		c.t.Errorf("processes of the killed run still run after the restart finished (now killed): %v", left)
		c.kill(left)
	}
	// The source notices a walsender's client is gone when it next sends: wait for that, bounded.
	wctx, cancel := context.WithTimeout(c.ctx, 30*time.Second)
	defer cancel()
	var stale []int
	ok := until(wctx, func() bool {
		stale = stale[:0]
		now := walsenders(c, p, began)
		for _, pid := range senders {
			if slices.Contains(now, pid) {
				stale = append(stale, pid)
			}
		}
		return len(stale) == 0
	})
	if !ok {
		c.t.Errorf("walsenders %v of the killed copy still run on the source", stale)
		for _, pid := range stale {
			p.Exec(c.t, fmt.Sprintf("SELECT pg_terminate_backend(%d)", pid))
		}
	}
	for _, d := range sockDirs {
		if _, err := os.Stat(d); err == nil {
			c.t.Errorf("the killed run's plugin socket directory %s is still there", d)
			_ = os.RemoveAll(d)
		}
	}
	for _, f := range passfiles {
		if _, err := os.Stat(f); err == nil && !strings.HasPrefix(f, c.dir+"/") {
			c.t.Errorf("the killed run's pgpass file %s is still there", f)
		}
	}
	c.noSecretOnDisk(p.ReplPass)
	if again.code == 0 {
		if v, err := queryOne(c.ctx, n.port, p.Superuser, p.SuperPass, "SELECT COALESCE((SELECT status FROM pg_stat_wal_receiver), 'none')"); err != nil || v != "streaming" {
			c.t.Errorf("the replica made after the restart does not stream: %q (%v)", v, err)
		}
	}
}

// walsenders lists the walsender backends on the primary that started since.
func walsenders(c *faultCase, p *pgtest.Primary, since time.Time) []int {
	conn, err := dial(c.ctx, p.Port, p.Superuser, p.SuperPass)
	if err != nil {
		c.t.Errorf("connecting to the source: %v", err)
		return nil
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(c.ctx, "SELECT pid FROM pg_stat_activity WHERE backend_type = 'walsender' AND backend_start >= $1", since)
	if err != nil {
		c.t.Errorf("listing walsenders: %v", err)
		return nil
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		c.t.Errorf("listing walsenders: %v", err)
	}
	var out []int
	for _, p := range pids {
		out = append(out, int(p))
	}
	return out
}

// The source PostgreSQL killed (SIGKILL of the postmaster) mid-clone. It is the last case that
// uses the primary with data.
func (s *faultSuite) caseSourceKilled(c *faultCase) {
	p := s.big(c)
	n := replicaOfBig(c, p, "orphan", "", "  max-rate = \"32M\"\n")
	a := c.start(n.env, "clone", "-config", n.config, "--connstring", p.ConnURL())
	if !c.waitCopying(a, n.dataDir, 24<<20) {
		c.t.Fatalf("the clone did not get going:\n%s", a.out.String())
	}
	pid, ok := p.Server.Running()
	if !ok {
		c.t.Fatal("the source is not running")
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		c.t.Fatal(err)
	}
	s.bigPrimary.v = nil // the suite's primary is gone; later cases must not use it
	select {
	case <-a.done:
	case <-c.ctx.Done():
		c.t.Fatalf("the clone still runs after its source was killed:\n%s", a.out.String())
	}
	out := a.out.String()
	c.t.Logf("clone whose source was killed: %v\n%s", a.err, out)
	if exitCode(a) == 0 {
		c.t.Fatalf("the clone succeeded though its source was killed:\n%s", out)
	}
	if !strings.Contains(out, "clone failed") || !strings.Contains(out, "basebackup") ||
		!regexp.MustCompile(`(?i)connection|terminat|closed|could not`).MatchString(out) {
		c.t.Errorf("the error does not name the failed step and what happened to the source:\n%s", out)
	}
	if !emptyOrGone(n.dataDir) {
		c.t.Errorf("the half copy is still there: %d bytes in %s", dirSize(n.dataDir), n.dataDir)
	}
	c.noneRunning("after the failed clone")
	c.noSecretOnDisk(p.ReplPass)
}

// (1) A keep_data method that copies a full data directory and exits 1 is the member's only
// method, under `run` with a running primary: never a second primary.
func (s *faultSuite) caseKeepDataFailedCopy(c *faultCase) {
	fc := s.small(c)
	script := c.script("copy_then_fail.sh")
	n := fc.member(c.t, filepath.Join(c.dir, "m"), "liar", memberSpec{methods: `["copy_then_fail"]`,
		extra: fmt.Sprintf("method \"copy_then_fail\" {\n  command   = %q\n  keep_data = true\n  bin_dir   = %q\n}", script, testenv.PGBinDir(c.t))})
	nodes := map[string]*node{"alpha": fc.leader(), "liar": n}
	a := c.start(n.env, "run", "-config", n.config)
	// The chain fails. Whatever the agent then does with the leftover (hand it to the next
	// attempt, or set it aside for a reinit), it must never start it as a primary: watch for
	// two primaries until the method failed twice, or for 15s (several cycles) after it failed.
	const failed = "pgimaged: replica method failed"
	var both []string
	var failedAt time.Time
	c.until(func() bool {
		out := a.out.String()
		if p := primaries(c.ctx, fc.creds, nodes); len(p) > 1 {
			both = p
			return true
		}
		if failedAt.IsZero() && strings.Contains(out, failed) {
			failedAt = time.Now()
		}
		return a.exited() || strings.Count(out, failed) >= 2 || (!failedAt.IsZero() && time.Since(failedAt) > 15*time.Second)
	})
	if failedAt.IsZero() && len(both) == 0 {
		c.t.Errorf("the method never ran to its failure")
	}
	if len(both) > 1 {
		c.t.Errorf("two primaries at once: %v", both)
	}
	if st, err := faultStatus(c, fc.leader()); err == nil {
		var names []string
		for _, m := range st.withRole("primary") {
			names = append(names, m.Name)
		}
		if len(names) != 1 || st.Leader != "alpha" {
			c.t.Errorf("the DCS shows primaries %v and leader %q", names, st.Leader)
		}
	}
	if v, err := queryOne(c.ctx, n.port, fc.creds.super, fc.creds.superPass, "SELECT pg_is_in_recovery()::text"); err == nil && v == "false" {
		c.t.Errorf("the failed method's leftover runs as a primary")
	}
	if c.t.Failed() {
		c.t.Logf("agent output:\n%s", a.out.String())
	}
}

// (2) unix_socket_directories as users set it: bootstrap completes, and the server listens where
// the user said.
func (s *faultSuite) caseSocketDirectories(c *faultCase) {
	abs := filepath.Join(c.dir, "sockets")
	if err := os.Mkdir(abs, 0o700); err != nil {
		c.t.Fatal(err)
	}
	variants := []struct {
		name, value, listen string
		want                []string // directories that must hold the socket; "" = the data directory's parent
	}{
		{name: "relative", value: "..", listen: "*", want: []string{""}},
		{name: "absolute", value: abs, want: []string{abs}},
		{name: "list", value: abs + "-list, ..", want: []string{abs + "-list", ""}},
	}
	if err := os.Mkdir(abs+"-list", 0o700); err != nil {
		c.t.Fatal(err)
	}
	var wg sync.WaitGroup
	for _, v := range variants {
		creds := faultCreds{super: "postgres", superPass: "Sock-" + randomHex(c.t), repl: "replicator", replPass: "R-" + randomHex(c.t)}
		n := writeMember(c.t, memberSpec{scope: "sockets", name: "sock-" + v.name, dir: filepath.Join(c.dir, v.name),
			listenHost: v.listen, creds: creds, params: fmt.Sprintf(", unix_socket_directories = %q", v.value)})
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := c.pgimaged(n.env, "bootstrap", "-config", n.config)
			if r.timedOut {
				c.t.Errorf("%s (%q): bootstrap hangs", v.name, v.value)
				return
			}
			if r.code != 0 {
				c.t.Errorf("%s (%q): bootstrap failed: %s", v.name, v.value, r.result)
				return
			}
			for _, d := range v.want {
				if d == "" {
					d = filepath.Dir(n.dataDir)
				}
				sock := filepath.Join(d, fmt.Sprintf(".s.PGSQL.%d", n.port))
				if _, err := os.Stat(sock); err != nil {
					c.t.Errorf("%s (%q): no socket at %s: %v", v.name, v.value, sock, err)
				}
			}
		}()
	}
	wg.Wait()
}

// (3) A method that ignores SIGTERM, with children that ignore it too (one in a session of its
// own) and timeout = "3s": when the clone gives up, none of them remain.
func (s *faultSuite) caseStubbornMethod(c *faultCase) {
	fc := s.small(c)
	script := c.script("stubborn.sh")
	n := fc.member(c.t, filepath.Join(c.dir, "m"), "stubborn", memberSpec{methods: `["stubborn"]`,
		extra: fmt.Sprintf("method \"stubborn\" {\n  command  = %q\n  timeout  = \"3s\"\n  attempts = 1\n}", script)})
	r := c.pgimaged(n.env, "clone", "-config", n.config, "--connstring", fc.leader().connURL())
	c.t.Logf("clone with a stubborn method: exit %d in %s", r.code, r.elapsed.Round(100*time.Millisecond))
	if r.code == 0 {
		c.t.Errorf("the clone succeeded with a method that never finishes: %s", r.result)
	}
	if !strings.Contains(r.stderr, "timed out") {
		c.t.Errorf("the error does not say the method timed out:\n%s", r.stderr)
	}
	c.noneRunning("after the clone gave up on the method")
}

// (5) A point-in-time bootstrap whose recovery pauses (recovery_target_action not set) fails at
// once, well before recovery_timeout, and releases initialize.
func (s *faultSuite) casePausedRecovery(c *faultCase) {
	u := testenv.PostgresUser(c.t)
	archive := filepath.Join(c.dir, "archive")
	if err := os.Mkdir(archive, 0o700); err != nil {
		c.t.Fatal(err)
	}
	src := pgtest.StartPrimary(c.t, pgtest.Options{Superuser: "owner", Parameters: map[string]string{
		"archive_mode": "on", "archive_command": "test ! -f " + archive + "/%f && cp %p " + archive + "/%f",
	}})
	backup := filepath.Join(u.TempDir(c.t), "base")
	src.Basebackup(c.t, backup)
	src.Exec(c.t, "CREATE TABLE events (id int)")
	src.Exec(c.t, "INSERT INTO events VALUES (1)")
	src.Exec(c.t, "SELECT pg_create_restore_point('before_cleanup')")
	src.Exec(c.t, "INSERT INTO events VALUES (2)")
	src.SwitchAndArchive(c.t)
	restore, _ := filepath.Abs("../../examples/pitr/restore_from_basebackup.sh")

	creds := faultCreds{super: src.Superuser, superPass: src.SuperPass, repl: "replicator", replPass: "Pitr-" + randomHex(c.t)}
	n := writeMember(c.t, memberSpec{scope: "pitr", name: "restored", dir: filepath.Join(c.dir, "m"), creds: creds,
		top: fmt.Sprintf("dcs \"file\" { path = %q }\nloop_wait = \"1s\"", filepath.Join(c.dir, "dcs")),
		extra: fmt.Sprintf(`bootstrap {
  method           = "from_backup"
  recovery_timeout = "10m"
}
method "from_backup" {
  command = "%s --backup=%s"
  recovery_conf = {
    restore_command      = "cp %s/%%f %%p"
    recovery_target_name = "before_cleanup"
  }
}`, restore, backup, archive)})
	a := c.start(n.env, "run", "-config", n.config)
	var pausedAt time.Time
	released := c.until(func() bool {
		if strings.Contains(a.out.String(), logReleased) || a.exited() {
			return true
		}
		if pausedAt.IsZero() {
			if v, err := queryOne(c.ctx, n.port, creds.super, creds.superPass, "SELECT pg_get_wal_replay_pause_state()"); err == nil && v == "paused" {
				pausedAt = time.Now()
				c.t.Logf("recovery paused at its target")
			}
		} else if time.Since(pausedAt) > 20*time.Second {
			return true
		}
		return false
	})
	out := a.out.String()
	switch {
	case !released:
		c.t.Errorf("the bootstrap neither failed nor released initialize within the case's deadline:\n%s", out)
	case !strings.Contains(out, logReleased):
		c.t.Errorf("recovery paused %s ago and the bootstrap still waits (recovery_timeout is 10m); agent output:\n%s", time.Since(pausedAt).Round(time.Second), out)
	default:
		if !strings.Contains(strings.ToLower(out), "pause") {
			c.t.Errorf("the failure does not say that recovery paused:\n%s", out)
		}
		if st, err := faultStatus(c, n); err == nil && st.Initialize != nil && *st.Initialize != "" {
			c.t.Errorf("initialize holds %q after a failed bootstrap", *st.Initialize)
		}
	}
}

// (6) `clone` into the parent of a running cluster's data directory: refused with exit 4, and
// every file there intact.
func (s *faultSuite) caseCloneIntoParent(c *faultCase) {
	fc := s.small(c)
	var victimPid int
	var victimCmd string
	c.t.Cleanup(func() {
		if victimPid > 0 && alive(victimPid, victimCmd) {
			c.pids[victimPid] = victimCmd
		}
	})
	victim := pgtest.StartPrimary(c.t, pgtest.Options{})
	victimPid, _ = victim.Server.Running()
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", victimPid))
	victimCmd = strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
	parent := filepath.Dir(victim.DataDir)
	writeFile(c.t, parent, "operator-notes.txt", "do not delete\n", 0o600)
	before := map[string]bool{}
	_ = filepath.WalkDir(parent, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			before[p] = true
		}
		return nil
	})
	n := fc.member(c.t, filepath.Join(c.dir, "m"), "intruder", memberSpec{dataDir: parent})
	r := c.pgimaged(n.env, "clone", "-config", n.config, "--connstring", fc.leader().connURL())
	c.t.Logf("clone into the parent of a running cluster: exit %d\n%s", r.code, r.stderr)
	if r.code != 4 {
		c.t.Errorf("exit %d, want 4 (refused)", r.code)
	}
	var gone []string
	for p := range before {
		if _, err := os.Stat(p); err != nil {
			gone = append(gone, strings.TrimPrefix(p, parent+"/"))
		}
	}
	if b, err := os.ReadFile(filepath.Join(parent, "operator-notes.txt")); err != nil || string(b) != "do not delete\n" {
		gone = append(gone, "operator-notes.txt (changed)")
	}
	if len(gone) > 0 {
		slices.Sort(gone)
		if len(gone) > 10 {
			gone = append(gone[:10], fmt.Sprintf("... %d in all", len(gone)))
		}
		c.loseData("files of the running cluster and the operator vanished: %q", gone)
	}
	if !pg.HasCluster(victim.DataDir) {
		c.loseData("the running cluster's data directory is no longer a cluster")
	}
	if _, err := queryOne(c.ctx, victim.Port, victim.Superuser, victim.SuperPass, "SELECT 1::text"); err != nil {
		c.t.Errorf("the running cluster no longer answers: %v", err)
	}
	c.noSecretOnDisk(fc.creds.replPass, fc.dir)
}

// (9) A method that prints bytes that are not UTF-8 after a good copy: the replica is made.
func (s *faultSuite) caseNonUTF8(c *faultCase) {
	fc := s.small(c)
	script := c.script("copy_then_garbage.sh")
	flag := filepath.Join(c.dir, "copied")
	n := fc.member(c.t, filepath.Join(c.dir, "m"), "latin1", memberSpec{methods: `["latin1_copy"]`,
		extra: fmt.Sprintf("method \"latin1_copy\" {\n  command = %q\n  bin_dir = %q\n  flag    = %q\n  attempts = 1\n}", script, testenv.PGBinDir(c.t), flag)})
	r := c.pgimaged(n.env, "clone", "-config", n.config, "--connstring", fc.leader().connURL())
	c.t.Logf("clone with a method printing non-UTF-8: exit %d in %s", r.code, r.elapsed.Round(100*time.Millisecond))
	if r.code != 0 {
		c.t.Errorf("the clone failed: %s", r.result)
	}
	if _, err := os.Stat(flag); err == nil && !pg.HasCluster(n.dataDir) {
		c.loseData("the method's good copy was deleted")
	}
	if r.code == 0 {
		if v, err := queryOne(c.ctx, n.port, fc.creds.super, fc.creds.superPass, "SELECT pg_is_in_recovery()::text"); err != nil || v != "true" {
			c.t.Errorf("the replica does not run in recovery: %q (%v)", v, err)
		}
	}
}

// (10) A keep_data method that runs pg_basebackup -R: the replica streams.
func (s *faultSuite) caseBasebackupR(c *faultCase) {
	fc := s.small(c)
	script := c.script("copy_with_R.sh")
	n := fc.member(c.t, filepath.Join(c.dir, "m"), "withr", memberSpec{methods: `["copy_with_r"]`,
		extra: fmt.Sprintf("method \"copy_with_r\" {\n  command   = %q\n  keep_data = true\n  bin_dir   = %q\n}", script, testenv.PGBinDir(c.t))})
	a := c.start(n.env, "run", "-config", n.config)
	if !c.until(func() bool { return a.exited() || streaming(c.ctx, fc.leader(), fc.creds, "withr") }) || a.exited() {
		st, _ := faultStatus(c, fc.leader())
		c.t.Errorf("the replica made by pg_basebackup -R does not stream; status:\n%s\nagent output:\n%s", st, a.out.String())
	}
	c.noSecretOnDisk(fc.creds.replPass, fc.dir)
}

// Two agents on one configuration: exactly one keeps running, the other exits non-zero naming
// the holder of the data directory's lock, and a replica is made.
func (s *faultSuite) caseTwoAgents(c *faultCase) {
	fc := s.small(c)
	n := fc.member(c.t, filepath.Join(c.dir, "m"), "twin", memberSpec{extra: "method \"basebackup\" { checkpoint = \"fast\" }"})
	first := c.start(n.env, "run", "-config", n.config)
	second := c.start(n.env, "run", "-config", n.config)
	ctx, cancel := context.WithTimeout(c.ctx, 15*time.Second)
	defer cancel()
	for !first.exited() && !second.exited() && ctx.Err() == nil {
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second)
	var quit, kept *agentProc
	switch {
	case first.exited() && second.exited():
		c.t.Fatalf("both agents exited:\n--- first\n%s\n--- second\n%s", first.out.String(), second.out.String())
	case first.exited():
		quit, kept = first, second
	case second.exited():
		quit, kept = second, first
	default:
		c.t.Errorf("both agents on one data directory still run after 15s")
	}
	if quit != nil {
		holder := strconv.Itoa(kept.cmd.Process.Pid)
		if exitCode(quit) == 0 {
			c.t.Errorf("the refused agent exited 0")
		}
		if out := quit.out.String(); !strings.Contains(out, holder) || !strings.Contains(strings.ToLower(out), "lock") {
			c.t.Errorf("the refused agent does not name the lock's holder (pid %s):\n%s", holder, out)
		}
	}
	if !c.until(func() bool { return streaming(c.ctx, fc.leader(), fc.creds, "twin") }) {
		c.t.Errorf("no replica was made; first agent:\n%s\nsecond agent:\n%s", first.out.String(), second.out.String())
	}
}

// outage stops etcd for 20 s and watches the nodes meanwhile; it returns the largest set of
// simultaneous primaries seen from the stop until converge holds again (or the deadline).
func (c *faultCase) outage(fc *faultCluster, nodes map[string]*node, converged func() bool) []string {
	c.t.Helper()
	stop := make(chan struct{})
	worst := watchPrimaries(c.ctx, fc.creds, nodes, stop)
	fc.etcd.stop()
	c.t.Logf("etcd stopped")
	select {
	case <-time.After(20 * time.Second):
	case <-c.ctx.Done():
	}
	fc.etcd.start(c.t)
	c.t.Logf("etcd started again")
	began := time.Now()
	ok := c.until(converged)
	close(stop)
	both := <-worst
	if !ok {
		c.t.Errorf("the cluster did not converge after etcd came back")
	} else {
		c.t.Logf("converged %s after etcd came back", time.Since(began).Round(100*time.Millisecond))
	}
	return both
}

// etcd stopped for 20 s while a primary and a replica run: afterwards exactly one primary, the
// replica streams, the leader key is back.
func (s *faultSuite) caseEtcdSteady(c *faultCase) {
	fc := s.etcdCluster(c)
	nodes := map[string]*node{"alpha": fc.leader(), "beta": fc.nodes["beta"]}
	both := c.outage(fc, nodes, func() bool {
		st, err := faultStatus(c, fc.leader())
		return err == nil && clusterUp(st, []string{"alpha", "beta"}) && streaming(c.ctx, fc.leader(), fc.creds, "beta")
	})
	if len(both) > 1 {
		c.t.Errorf("two primaries at once: %v", both)
	}
	if p := primaries(c.ctx, fc.creds, nodes); len(p) != 1 {
		c.t.Errorf("primaries after the outage: %v, want exactly one", p)
	}
	for name, a := range fc.agents {
		if a.exited() {
			c.t.Errorf("agent %s exited during the outage:\n%s", name, a.out.String())
		}
	}
}

// etcd stopped for 20 s while a member clones: the clone completes or is retried, never two
// primaries, and the cluster converges once etcd is back.
func (s *faultSuite) caseEtcdDuringClone(c *faultCase) {
	fc := s.etcdCluster(c)
	leader := fc.leader()
	if err := execSQL(c.ctx, leader.port, fc.creds.super, fc.creds.superPass,
		"CREATE TABLE IF NOT EXISTS filler AS SELECT g AS id, repeat(md5(g::text), 6) AS pad FROM generate_series(1, 300000) g"); err != nil {
		c.t.Fatalf("filling the primary: %v", err)
	}
	n := fc.member(c.t, filepath.Join(c.dir, "gamma"), "gamma", memberSpec{extra: "method \"basebackup\" {\n  checkpoint = \"fast\"\n  max-rate   = \"8M\"\n}"})
	a := c.start(n.env, "run", "-config", n.config)
	if !c.waitCopying(a, n.dataDir, 8<<20) {
		c.t.Fatalf("the clone did not get going:\n%s", a.out.String())
	}
	nodes := map[string]*node{"alpha": leader, "beta": fc.nodes["beta"], "gamma": n}
	both := c.outage(fc, nodes, func() bool {
		if a.exited() {
			return true
		}
		st, err := faultStatus(c, leader)
		return err == nil && clusterUp(st, []string{"alpha", "beta", "gamma"}) && streaming(c.ctx, leader, fc.creds, "beta", "gamma")
	})
	if a.exited() {
		c.t.Errorf("the cloning agent exited:\n%s", a.out.String())
	}
	if len(both) > 1 {
		c.t.Errorf("two primaries at once: %v", both)
	}
	if p := primaries(c.ctx, fc.creds, nodes); len(p) != 1 {
		c.t.Errorf("primaries after the outage: %v, want exactly one", p)
	}
	if c.t.Failed() {
		c.t.Logf("cloning agent output:\n%s", a.out.String())
	}
}

// --- the small file system for the disk-full case ---------------------------------------------

const (
	faultTmpfsEnv    = "PGIMAGED_FAULT_TMPFS"
	faultTmpfsErrEnv = "PGIMAGED_FAULT_TMPFS_ERR"
)

// mountFaultTmpfs mounts a 64 MB tmpfs owned by the PostgreSQL OS user for the disk-full case,
// when the tests run as root and TestFaults is selected; it names it in PGIMAGED_FAULT_TMPFS for
// the tests (which run as that user and cannot mount) and returns what unmounts it.
func mountFaultTmpfs() func() {
	none := func() {}
	if os.Geteuid() != 0 || os.Getenv(testenv.ReexecEnv) == "1" || !runSelects("TestFaults") {
		return none
	}
	fail := func(err error) func() {
		os.Setenv(faultTmpfsErrEnv, err.Error())
		return none
	}
	name := os.Getenv("PGIMAGED_TEST_USER")
	if name == "" {
		name = "postgres"
	}
	u, err := user.Lookup(name)
	if err != nil {
		return fail(err)
	}
	dir, err := os.MkdirTemp("", "pgimaged-fault-tmpfs-")
	if err != nil {
		return fail(err)
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=64m,mode=0755,uid=%s,gid=%s", u.Uid, u.Gid), "pgimaged-fault", dir).CombinedOutput()
	if err != nil {
		_ = os.Remove(dir)
		return fail(fmt.Errorf("mount -t tmpfs: %v: %s", err, bytes.TrimSpace(out)))
	}
	os.Setenv(faultTmpfsEnv, dir)
	return func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "unmounting %s: %v: %s\n", dir, err, out)
			_ = exec.Command("umount", "-l", dir).Run()
		}
		_ = os.Remove(dir)
	}
}

// runSelects reports whether the -test.run pattern (if any) can select the top-level test name.
func runSelects(name string) bool {
	pattern := ""
	for i, a := range os.Args {
		if v, ok := strings.CutPrefix(a, "-test.run="); ok {
			pattern = v
		} else if a == "-test.run" && i+1 < len(os.Args) {
			pattern = os.Args[i+1]
		}
	}
	if pattern == "" {
		return true
	}
	top, _, _ := strings.Cut(pattern, "/")
	re, err := regexp.Compile(top)
	return err != nil || re.MatchString(name)
}
