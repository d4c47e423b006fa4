package main_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgimaged/pgimaged/core/pg"
	"github.com/pgimaged/pgimaged/internal/testenv"
)

// binEnv names the directory with the binaries built for this test run.
const binEnv = "PGIMAGED_TEST_BIN"

// TestMain builds pgimaged and its plugins once, then runs the tests as the PostgreSQL OS user
// (PostgreSQL refuses root), so that every pgimaged these tests start runs as that user too.
func TestMain(m *testing.M) {
	var built string
	if os.Getenv(binEnv) == "" {
		dir, err := buildAll()
		if err != nil {
			fmt.Fprintln(os.Stderr, "building pgimaged for the tests:", err)
			os.Exit(2)
		}
		built = dir
		os.Setenv(binEnv, dir)
	}
	unmount := mountFaultTmpfs() // the disk-full case of TestFaults needs root to mount it
	code := testenv.RunAsPostgres(m)
	unmount()
	if built != "" {
		_ = os.RemoveAll(built)
	}
	os.Exit(code)
}

func buildAll() (string, error) {
	dir, err := testenv.NewBinDir("pgimaged-bin-")
	if err != nil {
		return "", err
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Join(dir, "plugins"), 0o755); err != nil {
		return "", err
	}
	build := func(out, pkg string) error { return testenv.GoBuild(root, out, pkg) }
	if err := build(filepath.Join(dir, "pgimaged"), "./cmd/pgimaged"); err != nil {
		return "", err
	}
	// The stand-in for WAL-E (WAL-E itself cannot be installed here), named so that it acts as wal-e.
	if err := build(filepath.Join(dir, "wal-e"), "./plugins/wale/testdata/fakewal"); err != nil {
		return "", err
	}
	entries, err := os.ReadDir(filepath.Join(root, "plugins"))
	if err != nil {
		return "", err
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		if gos, _ := filepath.Glob(filepath.Join(root, "plugins", e.Name(), "*.go")); len(gos) == 0 {
			continue
		}
		if err := build(filepath.Join(dir, "plugins", "pgimaged-plugin-"+e.Name()), "./plugins/"+e.Name()); err != nil {
			return "", err
		}
	}
	return dir, nil
}

func binDir(t testing.TB) string {
	t.Helper()
	d := os.Getenv(binEnv)
	if d == "" {
		t.Fatal("binaries were not built")
	}
	return d
}

func pgimagedBin(t testing.TB) string { return filepath.Join(binDir(t), "pgimaged") }
func pluginDir(t testing.TB) string   { return filepath.Join(binDir(t), "plugins") }

// workDir is a fresh directory for one test, owned by the user the tests run as.
func workDir(t testing.TB) string {
	t.Helper()
	return testenv.PostgresUser(t).TempDir(t)
}

// result is one finished pgimaged run.
type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\n--- stdout\n%s\n--- stderr\n%s", r.code, r.stdout, r.stderr)
}

// run runs pgimaged to completion with extra environment variables.
func run(t testing.TB, env []string, args ...string) result {
	t.Helper()
	return runPgimaged(t, "", 10*time.Minute, env, args...)
}

// runPgimaged runs pgimaged in dir (this test's directory when empty) with extra environment
// variables, and fails the test when it has not finished within limit (it is killed then).
func runPgimaged(t testing.TB, dir string, limit time.Duration, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, pgimagedBin(t), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("pgimaged %v did not finish within %s:\n--- stdout\n%s\n--- stderr\n%s", args, limit, out.String(), errb.String())
	}
	code := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("running pgimaged %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return result{stdout: out.String(), stderr: errb.String(), code: code}
}

// writeFile writes content to dir/name (0600) and returns the path.
func writeFile(t testing.TB, dir, name, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	return p
}

// stopServerAtCleanup makes sure no PostgreSQL is left running in dataDir when the test ends.
func stopServerAtCleanup(t testing.TB, dataDir string) {
	t.Helper()
	bin := testenv.PGBinDir(t)
	t.Cleanup(func() {
		s := &pg.Server{BinDir: bin, DataDir: dataDir}
		if _, ok := s.Running(); ok {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			_ = s.Stop(ctx, "immediate")
		}
	})
}

// connectTCP logs in over TCP with a password.
func connectTCP(t testing.TB, port int, user, password, db string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg, err := pgx.ParseConfig(fmt.Sprintf("host=127.0.0.1 port=%d user=%s dbname=%s sslmode=disable", port, user, db))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Password = password
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("logging in as %s on port %d: %v", user, port, err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

func queryString(t testing.TB, conn *pgx.Conn, sql string, args ...any) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var s string
	if err := conn.QueryRow(ctx, sql, args...).Scan(&s); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return s
}

// eventually polls cond until it holds or the deadline passes (a failure, not a timing claim:
// the deadline is far beyond what the step needs).
func eventually(t testing.TB, deadline time.Duration, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(deadline)
	for time.Now().Before(end) {
		if cond() {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("gave up waiting: %s", what)
}

// pgProcessesIn lists live processes whose command line or working directory refers to dir.
func pgProcessesIn(dir string) []string {
	var out []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid := e.Name()
		if pid[0] < '0' || pid[0] > '9' {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", pid, "cmdline"))
		if err != nil {
			continue
		}
		cmdline := strings.ReplaceAll(string(b), "\x00", " ")
		if st, err := os.ReadFile(filepath.Join("/proc", pid, "stat")); err == nil && strings.Contains(string(st), ") Z ") {
			continue
		}
		if strings.Contains(cmdline, dir) {
			out = append(out, pid+": "+cmdline)
		}
	}
	return out
}

// allCmdlines snapshots every process's argv, for secret checks while something runs.
type argvWatcher struct {
	mu    sync.Mutex
	seen  map[string]bool
	stop  chan struct{}
	done  chan struct{}
	match []string
}

func watchArgv(secrets ...string) *argvWatcher {
	w := &argvWatcher{seen: map[string]bool{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			ents, _ := os.ReadDir("/proc")
			for _, e := range ents {
				b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
				if err != nil || len(b) == 0 {
					continue
				}
				s := strings.ReplaceAll(string(b), "\x00", " ")
				w.mu.Lock()
				if !w.seen[s] {
					w.seen[s] = true
					for _, sec := range secrets {
						if sec != "" && strings.Contains(s, sec) {
							w.match = append(w.match, s)
						}
					}
				}
				w.mu.Unlock()
			}
			select {
			case <-w.stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	return w
}

// Stop ends the watch and returns the command lines that held a secret, and how many distinct
// command lines were seen.
func (w *argvWatcher) Stop() ([]string, int) {
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.match, len(w.seen)
}

func (w *argvWatcher) sawArgvContaining(sub string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for s := range w.seen {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// agentProc is a `pgimaged run` in the background.
type agentProc struct {
	cmd    *exec.Cmd
	out    *syncBuffer
	done   chan struct{}
	err    error
	config string
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startAgent starts `pgimaged run -config cfg`; the test's cleanup stops it with SIGTERM.
func startAgent(t testing.TB, cfg string, env ...string) *agentProc {
	t.Helper()
	a := launch(t, "", cfg, env, "run", "-config", cfg)
	t.Cleanup(func() {
		a.terminate(t)
		if t.Failed() {
			t.Logf("agent %s output:\n%s", cfg, a.out.String())
		}
	})
	return a
}

// launch starts pgimaged with args in dir (this test's directory when empty), in a process group
// of its own, its output collected; config names the run in messages. The caller stops it.
func launch(t testing.TB, dir, config string, env []string, args ...string) *agentProc {
	t.Helper()
	cmd := exec.Command(pgimagedBin(t), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	a := &agentProc{cmd: cmd, out: &syncBuffer{}, done: make(chan struct{}), config: config}
	cmd.Stdout, cmd.Stderr = a.out, a.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		a.err = cmd.Wait()
		close(a.done)
	}()
	return a
}

func (a *agentProc) exited() bool {
	select {
	case <-a.done:
		return true
	default:
		return false
	}
}

// terminate sends SIGTERM and waits for a clean exit.
func (a *agentProc) terminate(t testing.TB) {
	if a.exited() {
		return
	}
	_ = a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-a.done:
	case <-time.After(3 * time.Minute):
		_ = syscall.Kill(-a.cmd.Process.Pid, syscall.SIGKILL)
		<-a.done
		t.Errorf("agent %s did not stop on SIGTERM", a.config)
	}
}

// kill sends SIGKILL to the agent (and its plugin processes, which die with it).
func (a *agentProc) kill() {
	_ = a.cmd.Process.Signal(syscall.SIGKILL)
	<-a.done
}

// binDirWith makes dir/bin: PostgreSQL's bin directory with program replaced by script (a
// shell script, made executable), every other program a link to the real one. It returns the
// directory, for a member's bin_dir.
func binDirWith(t *testing.T, dir, program, script string) string {
	t.Helper()
	real := testenv.PGBinDir(t)
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(real)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Name() != program {
			if err := os.Symlink(filepath.Join(real, e.Name()), filepath.Join(bin, e.Name())); err != nil {
				t.Fatal(err)
			}
		}
	}
	writeFile(t, bin, program, script, 0o755)
	return bin
}
