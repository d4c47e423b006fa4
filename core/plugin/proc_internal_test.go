package plugin

import (
	"os"
	"os/exec"
	"testing"

	hostproc "github.com/pgimaged/pgimaged/core/plugin/host/proc"
)

// The guard never lets this process, its ancestors or init be taken for part of a tree, even
// when a record names them.
func TestTreeOfSparesThisProcessAndItsAncestors(t *testing.T) {
	procs := hostproc.Scan()
	self := procs[os.Getpid()]
	roots := map[int]uint64{os.Getpid(): self.Start, 1: procs[1].Start}
	if parent, ok := procs[self.PPID]; ok {
		roots[parent.PID] = parent.Start
	}
	for pid := range treeOf(procs, roots) {
		if protected(procs)[pid] {
			t.Errorf("pid %d (this process, an ancestor or init) is in the tree", pid)
		}
	}
}

// The walk through children files finds what a full scan finds in a process's tree.
func TestWalkTreeMatchesFullScan(t *testing.T) {
	cmd := exec.Command("sh", "-c", "sleep 600 & sleep 600 & wait")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	p, _ := hostproc.Read(cmd.Process.Pid)
	roots := map[int]uint64{p.PID: p.Start}
	var walked map[int]hostproc.Process
	for len(walked) < 3 {
		var ok bool
		if walked, ok = hostproc.Walk(roots); !ok {
			t.Fatal("this kernel has no /proc/<pid>/task/<tid>/children")
		}
	}
	full := treeOf(hostproc.Scan(), roots)
	for pid := range walked {
		if _, ok := full[pid]; !ok {
			t.Errorf("pid %d walked but not in the full scan", pid)
		}
	}
	_, _ = endTree(roots, nil)
}

// BenchmarkScanTree is a full scan: what the host does every tenth watch interval.
func BenchmarkScanTree(b *testing.B) {
	p, _ := hostproc.Read(os.Getpid())
	roots := map[int]uint64{p.PID: p.Start}
	for i := 0; i < b.N; i++ {
		treeOf(hostproc.Scan(), roots)
	}
}

// BenchmarkWalkTree is what the host does at the other watch intervals.
func BenchmarkWalkTree(b *testing.B) {
	p, _ := hostproc.Read(os.Getpid())
	roots := map[int]uint64{p.PID: p.Start}
	for i := 0; i < b.N; i++ {
		hostproc.Walk(roots)
	}
}
