package plugin

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"syscall"
	"time"

	hostproc "github.com/pgimaged/pgimaged/core/plugin/host/proc"
)

// What a method started is found by reading /proc (see package proc of the SDK's host side):
// the plugin process and what it started, named by pid and start time.

// protected are processes never to be signalled: this process, its ancestors and init.
func protected(procs map[int]hostproc.Process) map[int]bool {
	out := map[int]bool{0: true, 1: true}
	for pid := os.Getpid(); pid > 1 && !out[pid]; {
		out[pid] = true
		p, ok := procs[pid]
		if !ok {
			p, ok = hostproc.Read(pid)
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
func treeOf(procs map[int]hostproc.Process, roots map[int]uint64) map[int]hostproc.Process {
	guard := protected(procs)
	set := map[int]hostproc.Process{}
	for pid, start := range roots {
		if p, ok := procs[pid]; ok && p.Start == start && p.Running() && !guard[pid] {
			set[pid] = p
		}
	}
	in := func(pid int) bool { _, ok := set[pid]; return ok }
	grow(set, procs, guard, func(p hostproc.Process) bool { return in(p.PPID) || in(p.PGID) || in(p.SID) })
	// A group or session led by a root that has exited still counts, unless its pid now names
	// another process (then the group or session may be that one's).
	deadLeader := func(id int) bool {
		if _, ok := roots[id]; !ok || guard[id] {
			return false
		}
		_, exists := procs[id]
		return !exists
	}
	grow(set, procs, guard, func(p hostproc.Process) bool {
		return in(p.PPID) || deadLeader(p.PGID) || deadLeader(p.SID)
	})
	return set
}

// grow adds to set every running process of procs outside guard that joins says belongs,
// again and again until no more joins.
func grow(set, procs map[int]hostproc.Process, guard map[int]bool, joins func(hostproc.Process) bool) {
	for changed := true; changed; {
		changed = false
		for pid, p := range procs {
			if _, in := set[pid]; in || guard[pid] || !p.Running() {
				continue
			}
			if joins(p) {
				set[pid] = p
				changed = true
			}
		}
	}
}

// ErrSurvivors means processes of a method were still there after being killed.
var ErrSurvivors = errors.New("processes of the method survived SIGKILL")

// endWait bounds how long endTree waits for killed processes to go.
var endWait = 10 * time.Second

// endTree ends every process that belongs to roots (see treeOf) except those in spare: it
// stops them all with SIGSTOP, scanning again until no new process appears (a stopped process
// cannot fork), then sends SIGKILL and waits until each is gone, at most endWait. It returns
// the processes it killed; the error names those still there.
func endTree(roots map[int]uint64, spare map[int]bool) ([]hostproc.Process, error) {
	frozen := map[int]hostproc.Process{}
	all := map[int]uint64{}
	for pid, start := range roots {
		all[pid] = start
	}
	for round := 0; round < 100; round++ {
		fresh := 0
		for pid, p := range treeOf(hostproc.Scan(), all) {
			if _, seen := frozen[pid]; seen || spare[pid] {
				all[pid] = p.Start
				continue
			}
			if _, ok := hostproc.Alive(pid, p.Start); !ok {
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
	killed := make([]hostproc.Process, 0, len(frozen))
	for pid, p := range frozen {
		if _, ok := hostproc.Alive(pid, p.Start); ok {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		killed = append(killed, p)
	}
	sort.Slice(killed, func(a, b int) bool { return killed[a].PID < killed[b].PID })
	deadline := time.Now().Add(endWait)
	for {
		var left []string
		for _, p := range killed {
			if now, ok := hostproc.Alive(p.PID, p.Start); ok {
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
