package plugin

import (
	"os"
	"os/exec"
	"testing"
)

func TestParseStat(t *testing.T) {
	cases := []struct {
		name, stat string
		want       proc
		ok         bool
	}{
		{"plain", "42 (sleep) S 7 42 7 0 -1 4194304 80 0 0 0 0 0 0 0 20 0 1 0 123456 5726208 128 18446744073709551615",
			proc{PID: 42, Comm: "sleep", State: 'S', PPID: 7, PGID: 42, SID: 7, Start: 123456}, true},
		{"command name with spaces and parentheses", "43 (a (b) c) R 1 2 3 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 99 0 0 0",
			proc{PID: 43, Comm: "a (b) c", State: 'R', PPID: 1, PGID: 2, SID: 3, Start: 99}, true},
		{"zombie", "44 (sh) Z 1 44 44 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 7 0 0 0",
			proc{PID: 44, Comm: "sh", State: 'Z', PPID: 1, PGID: 44, SID: 44, Start: 7}, true},
		{"cut short", "45 (sh) S 1 45", proc{}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pid := tc.want.PID
			if pid == 0 {
				pid = 45
			}
			got, ok := parseStat(pid, tc.stat)
			if ok != tc.ok || (ok && got != tc.want) {
				t.Errorf("parseStat = %+v, %v; want %+v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

// The guard never lets this process, its ancestors or init be taken for part of a tree, even
// when a record names them.
func TestTreeOfSparesThisProcessAndItsAncestors(t *testing.T) {
	procs := scanProcs()
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
	p, _ := readProc(cmd.Process.Pid)
	roots := map[int]uint64{p.PID: p.Start}
	var walked map[int]proc
	for len(walked) < 3 {
		var ok bool
		if walked, ok = walkTree(roots); !ok {
			t.Fatal("this kernel has no /proc/<pid>/task/<tid>/children")
		}
	}
	full := treeOf(scanProcs(), roots)
	for pid := range walked {
		if _, ok := full[pid]; !ok {
			t.Errorf("pid %d walked but not in the full scan", pid)
		}
	}
	_, _ = endTree(roots, nil)
}

// BenchmarkScanTree is a full scan: what the host does every fullScanEvery watch intervals.
func BenchmarkScanTree(b *testing.B) {
	p, _ := readProc(os.Getpid())
	roots := map[int]uint64{p.PID: p.Start}
	for i := 0; i < b.N; i++ {
		treeOf(scanProcs(), roots)
	}
}

// BenchmarkWalkTree is what the host does at the other watch intervals.
func BenchmarkWalkTree(b *testing.B) {
	p, _ := readProc(os.Getpid())
	roots := map[int]uint64{p.PID: p.Start}
	for i := 0; i < b.N; i++ {
		walkTree(roots)
	}
}
