package sdk

import (
	"os"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/pgimaged/pgimaged/sdk/internal/proc"
	"golang.org/x/sys/unix"
)

// What a child started is found by reading /proc (package proc): a process is named by its pid
// and start time, so that a pid given since to another program is left alone.

// runChildren are the main processes of the Run calls in progress, which a sweep by another
// Run must not take for its own orphans.
var runChildren sync.Map // pid → struct{}

// descendants follows a Run's child: what it starts, whatever group or session it moves to.
type descendants struct {
	mu    sync.Mutex
	child int
	start uint64 // the child's start time: orphans younger than it may be its own
	seen  map[int]uint64
}

func newDescendants(child int) *descendants {
	d := &descendants{child: child, seen: map[int]uint64{}}
	if p, ok := proc.Read(child); ok {
		d.start = p.Start
		d.seen[child] = p.Start
	}
	return d
}

// scan reads /proc and returns the running processes of the tree: those seen before (same
// start time), their descendants, members of groups and sessions they lead and, with orphans
// set, processes re-parented to this plugin (a child subreaper, see [Serve]) since the child
// started that no other Run owns.
func (d *descendants) scan(orphans bool) map[int]proc.Process {
	procs := proc.Scan()
	self := os.Getpid()
	d.mu.Lock()
	defer d.mu.Unlock()
	set := map[int]proc.Process{}
	for pid, start := range d.seen {
		if p, ok := procs[pid]; ok && p.Start == start && p.Running() {
			set[pid] = p
		}
	}
	if orphans && isSubreaper() {
		// Only a subreaper gets orphans; elsewhere a child of this process is someone's own.
		for pid, p := range procs {
			if _, other := runChildren.Load(pid); p.PPID == self && pid != d.child && !other && p.Start >= d.start && p.Running() {
				set[pid] = p
			}
		}
	}
	// A group or session counts when its leader is in the tree, or was and has exited without
	// its pid being given to another process since.
	leader := func(id int) bool {
		if _, in := set[id]; in {
			return true
		}
		_, was := d.seen[id]
		_, exists := procs[id]
		return was && !exists
	}
	for changed := true; changed; {
		changed = false
		for pid, p := range procs {
			if _, in := set[pid]; in || pid == self || pid <= 1 || !p.Running() {
				continue
			}
			if _, byParent := set[p.PPID]; byParent || leader(p.PGID) || leader(p.SID) {
				set[pid] = p
				changed = true
			}
		}
	}
	// Forget what has gone, unless it still names a group or session.
	ids := map[int]bool{}
	for _, p := range procs {
		ids[p.PGID], ids[p.SID] = true, true
	}
	for pid := range d.seen {
		if _, in := set[pid]; !in && !ids[pid] {
			delete(d.seen, pid)
		}
	}
	for pid, p := range set {
		d.seen[pid] = p.Start
	}
	return set
}

// walk adds to what was seen the descendants of what was seen, through the children files
// (/proc/<pid>/task/<tid>/children), which costs in proportion to the tree rather than to the
// system. It reports false when the kernel lacks those files.
func (d *descendants) walk() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	set, ok := proc.Walk(d.seen)
	if !ok {
		return false
	}
	for pid, p := range set {
		d.seen[pid] = p.Start
	}
	return true
}

// watch follows the tree every interval until the returned function is called.
func (d *descendants) watch(interval time.Duration) (stop func()) {
	return proc.Watch(interval, func(full bool) {
		if full || !d.walk() {
			d.scan(false)
		}
	})
}

// signal sends sig to every process of the tree.
func (d *descendants) signal(sig syscall.Signal) {
	for pid, p := range d.scan(false) {
		if cur, ok := proc.Read(pid); ok && cur.Start == p.Start {
			_ = syscall.Kill(pid, sig)
		}
	}
}

// end stops every process of the tree with SIGSTOP, scanning again until no new one appears,
// kills them all, waits until they are gone (at most 10s) and reaps those re-parented to this
// process.
func (d *descendants) end() {
	frozen := map[int]proc.Process{}
	for round := 0; round < 100; round++ {
		fresh := 0
		for pid, p := range d.scan(true) {
			if _, ok := frozen[pid]; ok || pid == d.child {
				continue
			}
			_ = syscall.Kill(pid, syscall.SIGSTOP)
			frozen[pid] = p
			fresh++
		}
		if fresh == 0 {
			break
		}
	}
	for pid, p := range frozen {
		if cur, ok := proc.Read(pid); ok && cur.Start == p.Start {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	self := os.Getpid()
	deadline := time.Now().Add(10 * time.Second)
	for len(frozen) > 0 && time.Now().Before(deadline) {
		for pid, p := range frozen {
			cur, ok := proc.Read(pid)
			switch {
			case !ok || cur.Start != p.Start:
				delete(frozen, pid)
			case !cur.Running() && cur.PPID == self:
				var ws unix.WaitStatus
				if n, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil); n == pid || err != nil {
					delete(frozen, pid)
				}
			case !cur.Running():
				delete(frozen, pid) // a zombie its own parent will reap
			}
		}
		if len(frozen) > 0 {
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// isSubreaper reports whether this process is a child subreaper.
func isSubreaper() bool {
	var v int32
	if err := unix.Prctl(unix.PR_GET_CHILD_SUBREAPER, uintptr(unsafe.Pointer(&v)), 0, 0, 0); err != nil {
		return false
	}
	return v != 0
}

// becomeSubreaper makes this process the child subreaper of what it starts: a process whose
// parent exits is re-parented to it rather than to init, so that nothing a method starts leaves
// the plugin's tree while the plugin runs.
func becomeSubreaper() error {
	return unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
}
