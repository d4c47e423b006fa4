package plugin

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// What a method started is found by reading /proc: no cgroup or service manager is needed. A
// process is named by its pid and its start time (clock ticks since boot, field 22 of
// /proc/<pid>/stat), so that a pid the kernel has since given to another program is never
// mistaken for the one that was seen.

// proc is one process as /proc shows it.
type proc struct {
	PID   int    `json:"pid"`
	Start uint64 `json:"start"`
	Comm  string `json:"comm"`
	PPID  int    `json:"-"`
	PGID  int    `json:"-"`
	SID   int    `json:"-"`
	State byte   `json:"-"`
}

// running reports whether the process still runs: a zombie has ended and only waits to be reaped.
func (p proc) running() bool { return p.State != 'Z' && p.State != 'X' }

func (p proc) String() string {
	return fmt.Sprintf("pid %d (%s, state %c)", p.PID, p.Comm, p.State)
}

// readProc reads /proc/<pid>/stat.
func readProc(pid int) (proc, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return proc{}, false
	}
	return parseStat(pid, string(b))
}

func parseStat(pid int, s string) (proc, bool) {
	open := strings.IndexByte(s, '(')
	closing := strings.LastIndexByte(s, ')')
	if open < 0 || closing < open {
		return proc{}, false
	}
	f := strings.Fields(s[closing+1:])
	// f[0] is field 3 (state); field n is f[n-3].
	if len(f) < 20 || len(f[0]) != 1 {
		return proc{}, false
	}
	p := proc{PID: pid, Comm: s[open+1 : closing], State: f[0][0]}
	p.PPID, _ = strconv.Atoi(f[1])
	p.PGID, _ = strconv.Atoi(f[2])
	p.SID, _ = strconv.Atoi(f[3])
	p.Start, _ = strconv.ParseUint(f[19], 10, 64)
	return p, true
}

// scanProcs reads every process of the system.
func scanProcs() map[int]proc {
	out := map[int]proc{}
	des, err := os.ReadDir("/proc")
	if err != nil {
		return out
	}
	for _, de := range des {
		pid, err := strconv.Atoi(de.Name())
		if err != nil || pid <= 0 {
			continue
		}
		if p, ok := readProc(pid); ok {
			out[pid] = p
		}
	}
	return out
}

// stillThere reports whether the process named by pid and start time still runs.
func stillThere(pid int, start uint64) (proc, bool) {
	p, ok := readProc(pid)
	if !ok || p.Start != start || !p.running() {
		return p, false
	}
	return p, true
}

// protected are processes never to be signalled: this process, its ancestors and init.
func protected(procs map[int]proc) map[int]bool {
	out := map[int]bool{0: true, 1: true}
	for pid := os.Getpid(); pid > 1 && !out[pid]; {
		out[pid] = true
		p, ok := procs[pid]
		if !ok {
			p, ok = readProc(pid)
		}
		if !ok {
			break
		}
		pid = p.PPID
	}
	return out
}

// treeOf returns the running processes that belong to roots (pid → start time): the roots
// themselves while their start time matches, their descendants, and every member of a process
// group or session led by one of them (which finds what left the tree by a double fork and
// setsid while the tree was not being watched).
func treeOf(procs map[int]proc, roots map[int]uint64) map[int]proc {
	guard := protected(procs)
	set := map[int]proc{}
	for pid, start := range roots {
		if p, ok := procs[pid]; ok && p.Start == start && p.running() && !guard[pid] {
			set[pid] = p
		}
	}
	for changed := true; changed; {
		changed = false
		for pid, p := range procs {
			if _, in := set[pid]; in || guard[pid] || !p.running() {
				continue
			}
			_, byParent := set[p.PPID]
			_, byGroup := set[p.PGID]
			_, bySession := set[p.SID]
			if byParent || byGroup || bySession {
				set[pid] = p
				changed = true
			}
		}
	}
	// A group or session led by a root that has exited still counts, unless its pid now names
	// another process (then the group or session may be that one's).
	deadLeader := func(id int) bool {
		if _, ok := roots[id]; !ok || guard[id] {
			return false
		}
		_, exists := procs[id]
		return !exists
	}
	for changed := true; changed; {
		changed = false
		for pid, p := range procs {
			if _, in := set[pid]; in || guard[pid] || !p.running() {
				continue
			}
			_, byParent := set[p.PPID]
			if byParent || deadLeader(p.PGID) || deadLeader(p.SID) {
				set[pid] = p
				changed = true
			}
		}
	}
	return set
}

// childrenOf lists the children of pid from /proc/<pid>/task/*/children; ok is false when the
// kernel does not offer those files.
func childrenOf(pid int) (children []int, ok bool) {
	tasks, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task")
	if err != nil {
		return nil, true // gone
	}
	for _, task := range tasks {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/task/" + task.Name() + "/children")
		if errors.Is(err, os.ErrNotExist) {
			if _, serr := os.Stat("/proc/" + strconv.Itoa(pid) + "/task/" + task.Name()); serr == nil {
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

// walkTree is treeOf without reading every process of the system: the roots that still run
// and their descendants, found through the children files. ok is false when the kernel lacks
// them; then use treeOf.
func walkTree(roots map[int]uint64) (set map[int]proc, ok bool) {
	set = map[int]proc{}
	var queue []int
	for pid, start := range roots {
		if p, alive := readProc(pid); alive && p.Start == start && p.running() {
			set[pid] = p
			queue = append(queue, pid)
		}
	}
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		children, ok := childrenOf(pid)
		if !ok {
			return nil, false
		}
		for _, c := range children {
			if _, seen := set[c]; seen {
				continue
			}
			if p, alive := readProc(c); alive && p.running() {
				set[c] = p
				queue = append(queue, c)
			}
		}
	}
	return set, true
}

// ErrSurvivors means processes of a method were still there after being killed.
var ErrSurvivors = errors.New("processes of the method survived SIGKILL")

// endWait bounds how long endTree waits for killed processes to go.
var endWait = 10 * time.Second

// endTree ends every process that belongs to roots (see treeOf) except those in spare: it
// stops them all with SIGSTOP, scanning again until no new process appears (a stopped process
// cannot fork), then sends SIGKILL and waits until each is gone, at most endWait. It returns
// the processes it killed; the error names those still there.
func endTree(roots map[int]uint64, spare map[int]bool) ([]proc, error) {
	frozen := map[int]proc{}
	all := map[int]uint64{}
	for pid, start := range roots {
		all[pid] = start
	}
	for round := 0; round < 100; round++ {
		fresh := 0
		for pid, p := range treeOf(scanProcs(), all) {
			if _, seen := frozen[pid]; seen || spare[pid] {
				all[pid] = p.Start
				continue
			}
			if _, ok := stillThere(pid, p.Start); !ok {
				continue
			}
			_ = syscall.Kill(pid, syscall.SIGSTOP)
			frozen[pid] = p
			all[pid] = p.Start
			fresh++
		}
		if fresh == 0 {
			break
		}
	}
	killed := make([]proc, 0, len(frozen))
	for pid, p := range frozen {
		if _, ok := stillThere(pid, p.Start); ok {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		killed = append(killed, p)
	}
	sort.Slice(killed, func(a, b int) bool { return killed[a].PID < killed[b].PID })
	deadline := time.Now().Add(endWait)
	for {
		var left []string
		for _, p := range killed {
			if now, ok := stillThere(p.PID, p.Start); ok {
				left = append(left, now.String())
			}
		}
		if len(left) == 0 {
			return killed, nil
		}
		if time.Now().After(deadline) {
			return killed, fmt.Errorf("%w: %s still there %s after SIGKILL", ErrSurvivors, strings.Join(left, ", "), endWait)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// bootID identifies this boot of the machine: pids and start times of another boot mean nothing.
func bootID() string {
	b, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	return strings.TrimSpace(string(b))
}
