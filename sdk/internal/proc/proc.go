// Package proc reads the processes of a Linux system from /proc, for [sdk.Run], which follows
// and ends what a method's child started. pgimaged reads /proc with a package of its own.
//
// A process is named by its pid and its start time (clock ticks since boot, field 22 of
// /proc/<pid>/stat), so that a pid the kernel has since given to another program is never
// mistaken for the one that was seen.
package proc

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Process is one process as /proc shows it.
type Process struct {
	PID   int
	Start uint64
	Comm  string
	PPID  int
	PGID  int
	SID   int
	State byte
}

// Running reports whether the process still runs: a zombie has ended and only waits to be reaped.
func (p Process) Running() bool { return p.State != 'Z' && p.State != 'X' }

// Read reads /proc/<pid>/stat; ok is false when there is no such process.
func Read(pid int) (p Process, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return Process{}, false
	}
	return ParseStat(pid, string(b))
}

// ParseStat parses the content of /proc/<pid>/stat; ok is false when it is cut short.
func ParseStat(pid int, s string) (p Process, ok bool) {
	open := strings.IndexByte(s, '(')
	closing := strings.LastIndexByte(s, ')')
	if open < 0 || closing < open {
		return Process{}, false
	}
	f := strings.Fields(s[closing+1:])
	// f[0] is field 3 (state); field n is f[n-3].
	if len(f) < 20 || len(f[0]) != 1 {
		return Process{}, false
	}
	p = Process{PID: pid, Comm: s[open+1 : closing], State: f[0][0]}
	p.PPID, _ = strconv.Atoi(f[1])
	p.PGID, _ = strconv.Atoi(f[2])
	p.SID, _ = strconv.Atoi(f[3])
	p.Start, _ = strconv.ParseUint(f[19], 10, 64)
	return p, true
}

// Scan reads every process of the system, by pid.
func Scan() map[int]Process {
	out := map[int]Process{}
	des, err := os.ReadDir("/proc")
	if err != nil {
		return out
	}
	for _, de := range des {
		pid, err := strconv.Atoi(de.Name())
		if err != nil || pid <= 0 {
			continue
		}
		if p, ok := Read(pid); ok {
			out[pid] = p
		}
	}
	return out
}

// Alive reports whether the process named by pid and start time still runs, and returns it as
// it is now.
func Alive(pid int, start uint64) (Process, bool) {
	p, ok := Read(pid)
	if !ok || p.Start != start || !p.Running() {
		return p, false
	}
	return p, true
}

// Children lists the children of pid from /proc/<pid>/task/*/children; ok is false when the
// kernel does not offer those files. A process that has gone has no children.
func Children(pid int) (children []int, ok bool) {
	dir := "/proc/" + strconv.Itoa(pid) + "/task/"
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return nil, true // gone
	}
	for _, task := range tasks {
		b, err := os.ReadFile(dir + task.Name() + "/children")
		if errors.Is(err, os.ErrNotExist) {
			if _, serr := os.Stat(dir + task.Name()); serr == nil {
				return nil, false
			}
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if c, err := strconv.Atoi(f); err == nil {
				children = append(children, c)
			}
		}
	}
	return children, true
}

// Walk returns the roots (pid → start time) that still run and their running descendants,
// found through the children files: it costs in proportion to the tree rather than to the
// system. ok is false when the kernel lacks those files; then read the whole system with Scan.
func Walk(roots map[int]uint64) (set map[int]Process, ok bool) {
	set = map[int]Process{}
	var queue []int
	for pid, start := range roots {
		if p, alive := Alive(pid, start); alive {
			set[pid] = p
			queue = append(queue, pid)
		}
	}
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		children, ok := Children(pid)
		if !ok {
			return nil, false
		}
		for _, c := range children {
			if _, seen := set[c]; seen {
				continue
			}
			if p, alive := Read(c); alive && p.Running() {
				set[c] = p
				queue = append(queue, c)
			}
		}
	}
	return set, true
}

// Watch calls look every interval until the returned function is called, with full set every
// tenth time: a cheap walk of a tree most times and, now and then, a read of the whole system
// (see Walk and Scan). stop waits for a call in progress to return.
func Watch(interval time.Duration, look func(full bool)) (stop func()) {
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for n := 1; ; n++ {
			select {
			case <-quit:
				return
			case <-t.C:
				look(n%10 == 0)
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(quit); <-done }) }
}
