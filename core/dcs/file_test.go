package dcs_test

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/pgimaged/pgimaged/core/dcs"
	"github.com/pgimaged/pgimaged/internal/testenv"
)

func TestFileLayout(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "dcs")
	s, err := dcs.OpenFile(t.Context(), dcs.FileConfig{Path: dir}, "batman", testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tryInitialize(t, s)
	acquireLeader(t, s, "node1")
	if err := s.PutMember(t.Context(), sampleMember("node1", dcs.RolePrimary)); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dir, "service", "batman")
	sessions, _ := filepath.Glob(filepath.Join(root, ".sessions", "*.lock"))
	if len(sessions) != 1 {
		t.Fatalf("session lock files: %v, want one", sessions)
	}
	modes := []struct {
		path string
		mode fs.FileMode
	}{
		{dir, fs.ModeDir | 0o700},
		{filepath.Join(dir, "service"), fs.ModeDir | 0o700},
		{root, fs.ModeDir | 0o700},
		{filepath.Join(root, "members"), fs.ModeDir | 0o700},
		{filepath.Join(root, "initialize"), 0o600},
		{filepath.Join(root, "leader"), 0o600},
		{filepath.Join(root, "members", "node1"), 0o600},
		{sessions[0], 0o600},
	}
	for _, m := range modes {
		fi, err := os.Stat(m.path)
		if err != nil {
			t.Errorf("stat: %v", err)
			continue
		}
		if fi.Mode() != m.mode {
			t.Errorf("%s: mode %v, want %v", m.path, fi.Mode(), m.mode)
		}
	}

	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for _, gone := range []string{"initialize", "leader", "members/node1", sessions[0]} {
		if !filepath.IsAbs(gone) {
			gone = filepath.Join(root, gone)
		}
		if _, err := os.Stat(gone); !os.IsNotExist(err) {
			t.Errorf("%s after Close: %v, want it removed", gone, err)
		}
	}
}

// TestFileDeadOwnerKeysRemoved: the keys of a killed process are absent to readers and removed
// from disk by the next one that may write.
func TestFileDeadOwnerKeysRemoved(t *testing.T) {
	e := fileEnv(t)
	owner := startPeer(t, e)
	for _, cmd := range []string{"initialize", "leader node1", "member node1"} {
		if got := owner.call(t, cmd); got != "won" {
			t.Fatalf("peer %s: %s", cmd, got)
		}
	}
	root := filepath.Join(e.dir, "service", "batman")
	files := []string{"initialize", "leader", "members/node1"}
	sessions, _ := filepath.Glob(filepath.Join(root, ".sessions", "*.lock"))
	if len(sessions) != 1 {
		t.Fatalf("session lock files: %v, want one", sessions)
	}

	owner.kill(t)

	s := e.open(t)
	c := cluster(t, s)
	if c.Initialize != nil || c.Leader != "" || len(c.Members) != 0 {
		t.Errorf("cluster after the owner was killed: %s, leader %q, members %v; want all absent",
			initializeState(c), c.Leader, memberNames(c))
	}
	for _, f := range append(files, sessions[0]) {
		if !filepath.IsAbs(f) {
			f = filepath.Join(root, f)
		}
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Errorf("%s after a reader saw its owner dead: %v, want it removed", f, err)
		}
	}
}

func TestOpenFileRefuses(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name  string
		path  string
		scope string
	}{
		{name: "empty path", path: "", scope: "batman"},
		{name: "empty scope", path: dir, scope: ""},
		{name: "scope with a slash", path: dir, scope: "../etc"},
		{name: "scope dot-dot", path: dir, scope: ".."},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if s, err := dcs.OpenFile(t.Context(), dcs.FileConfig{Path: tc.path}, tc.scope, nil); err == nil {
				s.Close()
				t.Fatal("OpenFile succeeded")
			}
		})
	}
}

// TestFileStoreWrittenByRootStaysTheAgents: keys a command run as root writes (an operator's
// `sudo pgimaged switchover` on a host whose agents run as the PostgreSQL OS user) belong to
// the owner of the store's directory, as do the directories it creates: the agents can read
// and replace them. Before, the change key was root's, mode 0600, and every agent's cycle
// failed reading it.
func TestFileStoreWrittenByRootStaysTheAgents(t *testing.T) {
	if os.Geteuid() != 0 {
		if testenv.InCI() {
			t.Fatal("this test checks what a process running as root writes: CI runs the tests as root")
		}
		t.Skip("needs root: it checks what a process running as root writes")
	}
	u := testenv.PostgresUser(t)
	dir := filepath.Join(u.TempDir(t), "dcs") // created by the store, as root
	s, err := dcs.OpenFile(t.Context(), dcs.FileConfig{Path: dir}, "batman", testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	key := dcs.KeyPrefix + "change"
	if err := s.Put(t.Context(), key, []byte(`{"kind":"switchover"}`)); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.CompareAndSwap(t.Context(), dcs.KeyPrefix+"nested/key", nil, []byte("v")); err != nil || !ok {
		t.Fatalf("CompareAndSwap = %v, %v", ok, err)
	}
	err = filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if st := fi.Sys().(*syscall.Stat_t); st.Uid != u.UID || st.Gid != u.GID {
			t.Errorf("%s belongs to uid %d gid %d, want %s's (%d %d)", p, st.Uid, st.Gid, u.Name, u.UID, u.GID)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "service", "batman", filepath.FromSlash(key))
	if out, err := u.AsUser(exec.Command("cat", path)).CombinedOutput(); err != nil || !strings.Contains(string(out), "switchover") {
		t.Errorf("%s cannot read the key root wrote: %v\n%s", u.Name, err, out)
	}
}
