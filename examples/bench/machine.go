package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

// machine is what a benchmark runs with: the binaries and the OS user PostgreSQL runs as.
type machine struct {
	bin, plugins, pgBin string
	// cred switches children to the postgres OS user when the benchmark runs as root; nil
	// otherwise (everything runs as the current user).
	cred     *syscall.Credential
	uid, gid int
}

func newMachine(bin, plugins, pgBin string) (*machine, error) {
	m := &machine{uid: -1, gid: -1}
	var err error
	if m.bin, err = filepath.Abs(bin); err != nil {
		return nil, err
	}
	if m.plugins, err = filepath.Abs(plugins); err != nil {
		return nil, err
	}
	if _, err := os.Stat(m.bin); err != nil {
		return nil, fmt.Errorf("while looking for pgimaged: %w (run make build first)", err)
	}
	if _, err := os.Stat(m.plugins); err != nil {
		return nil, fmt.Errorf("while looking for the plugins: %w (run make build first)", err)
	}
	m.pgBin = pgBin
	if m.pgBin == "" {
		m.pgBin = newestPGBin()
	}
	if _, err := os.Stat(filepath.Join(m.pgBin, "initdb")); err != nil {
		return nil, fmt.Errorf("PostgreSQL server binaries not found (install postgresql, or pass -pgbin): %w", err)
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root, PostgreSQL needs the postgres OS user: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		m.uid, m.gid = uid, gid
		m.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	return m, nil
}

// newestPGBin is the bin directory of the newest /usr/lib/postgresql/<major>.
func newestPGBin() string {
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	best, bestV := "", -1.0
	for _, m := range matches {
		v, err := strconv.ParseFloat(filepath.Base(filepath.Dir(filepath.Dir(m))), 64)
		if err == nil && v > bestV {
			best, bestV = filepath.Dir(m), v
		}
	}
	return best
}

func (m *machine) pg(name string) string { return filepath.Join(m.pgBin, name) }

// command prepares a child that runs as the PostgreSQL OS user in a process group of its own,
// killed if the benchmark dies.
func (m *machine) command(ctx context.Context, env []string, argv ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL, Credential: m.cred}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	return cmd
}

// run runs a child to completion and returns its standard output; its output is in the error
// when it fails.
func (m *machine) run(ctx context.Context, env []string, stdin string, argv ...string) (string, error) {
	cmd := m.command(ctx, env, argv...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("while running %s: %w\n%s", strings.Join(argv, " "), err, tail(out.String()+errb.String(), 20))
	}
	return out.String(), nil
}

// timed runs a child and returns how long it took from start to exit.
func (m *machine) timed(ctx context.Context, env []string, argv ...string) (time.Duration, error) {
	cmd := m.command(ctx, env, argv...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	if err != nil {
		return d, fmt.Errorf("while running %s: %w\n%s", strings.Join(argv, " "), err, tail(out.String(), 20))
	}
	return d, nil
}

// workDir makes a fresh directory the PostgreSQL OS user owns and may traverse.
func (m *machine) workDir(prefix string) (string, error) {
	d, err := os.MkdirTemp("", prefix)
	if err != nil {
		return "", err
	}
	if err := os.Chmod(d, 0o755); err != nil {
		return "", err
	}
	return d, m.own(d)
}

// mkdir makes a directory (0700) that the PostgreSQL OS user owns.
func (m *machine) mkdir(path string) error {
	if err := os.MkdirAll(path, 0o700); err != nil {
		return err
	}
	return m.own(path)
}

// writeFile writes a file (0600) that the PostgreSQL OS user owns.
func (m *machine) writeFile(path, content string) error {
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		return err
	}
	return m.own(path)
}

func (m *machine) own(path string) error {
	if m.cred == nil {
		return nil
	}
	return os.Chown(path, m.uid, m.gid)
}

// stopServer stops a PostgreSQL left running in dataDir (immediate): cleanup after a run.
func (m *machine) stopServer(dataDir string) {
	if _, err := os.Stat(filepath.Join(dataDir, "postmaster.pid")); err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, _ = m.run(ctx, nil, "", m.pg("pg_ctl"), "stop", "-D", dataDir, "-m", "immediate", "-w")
}

// freePort returns a loopback TCP port that nothing listens on now, never the same one twice.
func freePort() (int, error) {
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		if !usedPorts[port] {
			usedPorts[port] = true
			return port, nil
		}
	}
	return 0, fmt.Errorf("no free loopback port found")
}

var usedPorts = map[int]bool{}

func password() string {
	b := make([]byte, 15)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// median of ds.
func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	ds = slices.Clone(ds)
	slices.Sort(ds)
	if len(ds)%2 == 1 {
		return ds[len(ds)/2]
	}
	return (ds[len(ds)/2-1] + ds[len(ds)/2]) / 2
}

func seconds(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}

func runsOf(ds []time.Duration) string {
	var s []string
	for _, d := range ds {
		s = append(s, fmt.Sprintf("%.2f", d.Seconds()))
	}
	return strings.Join(s, " ")
}

// table prints rows aligned in columns.
func table(w io.Writer, rows [][]string) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	_ = tw.Flush()
}

// cleanups runs registered functions in reverse order, like deferred calls, once.
type cleanups []func()

func (c *cleanups) add(f func()) { *c = append(*c, f) }

func (c *cleanups) run() {
	for i := len(*c) - 1; i >= 0; i-- {
		(*c)[i]()
	}
	*c = nil
}
