package sdk

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Process is a child program a plugin runs: pg_basebackup, a backup tool, a user's script.
type Process struct {
	Argv []string
	// Env is added to the plugin's own environment.
	Env map[string]string
	Dir string
	// ExtraFiles are open files the child inherits as descriptors 3, 4, ... (for example a
	// password file it reads as /dev/fd/3, so that no secret sits on disk or in argv).
	ExtraFiles []*os.File
	// Secrets are masked wherever the process's output or argv is shown.
	Secrets []string
	// OnLine, if set, sees every output line (stdout and stderr, split on \n and \r) before it is
	// logged, for example to turn progress output into progress events. Returning false keeps the
	// line out of the log (but not out of the tail).
	OnLine func(stream, line string) bool
	// TailLines is how many last output lines an [ExitError] keeps; default 20.
	TailLines int
	// KillGrace is how long the process group has between SIGTERM and SIGKILL when the call is
	// cancelled; default 5s.
	KillGrace time.Duration
}

// Masker replaces secrets in text with [Mask].
type Masker []string

// Mask returns s with every secret replaced.
func (m Masker) Mask(s string) string {
	for _, sec := range m {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, Mask)
		}
	}
	return s
}

// MaskArgv returns a copy of argv with every secret replaced.
func (m Masker) MaskArgv(argv []string) []string {
	out := make([]string, len(argv))
	for i, a := range argv {
		out[i] = m.Mask(a)
	}
	return out
}

// Run starts p in its own process group, streams its output to rep as log lines with secrets
// masked (bytes that are not UTF-8 written as \xNN), and waits for it. Output lines are logged
// at [LevelInfo], except stderr lines that look like errors ("ERROR:", "FATAL:",
// "pg_basebackup: error: ...", at [LevelError]) or warnings ("WARNING:", at [LevelWarn]). When ctx ends,
// the whole group and every process it started elsewhere get SIGTERM, then the group SIGKILL
// after KillGrace. When the main process exits, everything it started and left running is
// killed and waited for, whatever process group or session it moved to (found through /proc,
// and through the plugin being their child subreaper, see [Serve]), so a method never leaves
// processes behind. In a plugin run by [Serve], a process re-parented to the plugin while the
// child ran is taken for one the child started: start every program a method runs with Run.
// The child gets SIGKILL if the plugin dies. A non-zero exit is an [*ExitError] carrying the
// last lines.
func Run(ctx context.Context, p Process, rep Reporter) error {
	if len(p.Argv) == 0 {
		return errors.New("no command to run")
	}
	if p.TailLines <= 0 {
		p.TailLines = 20
	}
	if p.KillGrace <= 0 {
		p.KillGrace = 5 * time.Second
	}
	mask := Masker(p.Secrets)
	cmd := exec.Command(p.Argv[0], p.Argv[1:]...)
	cmd.Dir = p.Dir
	cmd.ExtraFiles = p.ExtraFiles
	cmd.Env = mergeEnv(os.Environ(), p.Env)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Stdin = nil
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("while preparing %s: %w", p.Argv[0], err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return fmt.Errorf("while preparing %s: %w", p.Argv[0], err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if rep != nil {
		rep.Log(LevelInfo, "running "+strings.Join(mask.MaskArgv(p.Argv), " "))
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("while starting %s: %w", p.Argv[0], err)
	}
	pgid := cmd.Process.Pid
	runChildren.Store(pgid, struct{}{})
	defer runChildren.Delete(pgid)
	tree := newDescendants(pgid)
	stopWatch := tree.watch(200 * time.Millisecond)

	tail := newTail(p.TailLines)
	var wg sync.WaitGroup
	read := func(stream string, r io.Reader) {
		defer wg.Done()
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		sc.Split(scanLinesCR)
		for sc.Scan() {
			line := validUTF8(mask.Mask(sc.Text()))
			if strings.TrimSpace(line) == "" {
				continue
			}
			tail.add(line)
			if p.OnLine != nil && !p.OnLine(stream, line) {
				continue
			}
			if rep != nil {
				level := LevelInfo
				if stream == "stderr" {
					level = stderrLevel(line)
				}
				rep.Log(level, line, "stream", stream)
			}
		}
	}
	wg.Add(2)
	go read("stdout", stdout)
	go read("stderr", stderr)

	var canceled bool
	var cmu sync.Mutex
	stop := make(chan struct{})
	killed := make(chan struct{})
	go func() {
		defer close(killed)
		select {
		case <-stop:
			return
		case <-ctx.Done():
		}
		cmu.Lock()
		canceled = true
		cmu.Unlock()
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		tree.signal(syscall.SIGTERM) // also what left the group
		t := time.NewTimer(p.KillGrace)
		defer t.Stop()
		select {
		case <-stop:
		case <-t.C:
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
		}
	}()

	// Wait for the main process only (not for the pipes), then end everything it started,
	// whatever group or session it moved to, so that pipes held by leftovers close and nothing
	// lingers.
	state, werr := cmd.Process.Wait()
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	stopWatch()
	tree.end()
	close(stop)
	<-killed
	pipesDone := make(chan struct{})
	go func() { wg.Wait(); close(pipesDone) }()
	select {
	case <-pipesDone:
	case <-time.After(2 * time.Second):
		// Something outside the tree (handed the pipe by a descendant) still holds it open.
		_ = stdout.Close()
		_ = stderr.Close()
		<-pipesDone
	}
	if werr != nil {
		return fmt.Errorf("while waiting for %s: %w", p.Argv[0], werr)
	}
	cmu.Lock()
	wasCanceled := canceled
	cmu.Unlock()
	if state.Success() && !wasCanceled {
		return nil
	}
	ee := &ExitError{Argv0: p.Argv[0], Code: state.ExitCode(), Tail: tail.lines(), Canceled: wasCanceled}
	if ws, ok := state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		ee.Signal = ws.Signal().String()
	}
	if wasCanceled {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("%w: %w", ee, err)
		}
	}
	return ee
}

func mergeEnv(base []string, extra map[string]string) []string {
	if len(extra) == 0 {
		return base
	}
	out := make([]string, 0, len(base)+len(extra))
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		if _, over := extra[k]; !over {
			out = append(out, kv)
		}
	}
	keys := slices.Sorted(maps.Keys(extra))
	for _, k := range keys {
		out = append(out, k+"="+extra[k])
	}
	return out
}

// scanLinesCR splits on \n, \r\n and lone \r (progress meters redraw with \r).
func scanLinesCR(data []byte, atEOF bool) (advance int, token []byte, err error) {
	if atEOF && len(data) == 0 {
		return 0, nil, nil
	}
	if i := bytes.IndexAny(data, "\r\n"); i >= 0 {
		j := i + 1
		if data[i] == '\r' && j < len(data) && data[j] == '\n' {
			j++
		} else if data[i] == '\r' && j == len(data) && !atEOF {
			return 0, nil, nil // maybe a \r\n split across reads
		}
		return j, data[:i], nil
	}
	if atEOF {
		return len(data), data, nil
	}
	return 0, nil, nil
}

type tailBuf struct {
	mu  sync.Mutex
	n   int
	buf []string
}

func newTail(n int) *tailBuf { return &tailBuf{n: n} }

func (t *tailBuf) add(line string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, line)
	if len(t.buf) > t.n {
		t.buf = t.buf[len(t.buf)-t.n:]
	}
}

func (t *tailBuf) lines() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.buf...)
}
