package pg_test

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pgimaged/pgimaged/core/pg"
	"github.com/pgimaged/pgimaged/internal/pgtest"
)

// The test binary run by TestLockDataDirTwoProcesses as another process takes the lock, says
// so on stdout and holds it until stdin closes.
func init() { pgtest.HoldLockIfAsked() }

func TestLockDataDirTwoProcesses(t *testing.T) {
	// The data directory's parent does not exist yet: the lock creates it, private.
	dataDir := filepath.Join(t.TempDir(), "missing parent", "node1")
	holder, stdin := pgtest.StartLockHolder(t, dataDir, "pgimaged clone")
	if fi, err := os.Stat(filepath.Dir(dataDir)); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("the parent directory: %v, mode %v; want it created with 0700", err, fi.Mode().Perm())
	}

	_, err := pg.LockDataDir(dataDir, "pgimaged run")
	if !errors.Is(err, pg.ErrLocked) {
		t.Fatalf("a second lock while another process holds it: %v, want ErrLocked", err)
	}
	for _, want := range []string{"pid " + strconv.Itoa(holder.Process.Pid), "pgimaged clone", "since "} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the refusal does not say %q: %v", want, err)
		}
	}

	// The holder ends with SIGKILL: the kernel releases its lock.
	_ = holder.Process.Kill()
	_ = holder.Wait()
	_ = stdin.Close()
	release, err := pg.LockDataDir(dataDir, "pgimaged run")
	if err != nil {
		t.Fatalf("the lock of a killed holder was not released: %v", err)
	}
	release()
}

func TestLockDataDirTwiceInOneProcess(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	release, err := pg.LockDataDir(dataDir, "pgimaged bootstrap")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pg.LockDataDir(dataDir, "pgimaged clone"); !errors.Is(err, pg.ErrLocked) || !strings.Contains(err.Error(), "pgimaged bootstrap") {
		t.Errorf("a second lock in the same process: %v, want ErrLocked naming the holder", err)
	}
	release()
	release() // twice is harmless
	again, err := pg.LockDataDir(dataDir, "pgimaged clone")
	if err != nil {
		t.Fatalf("the lock was not released: %v", err)
	}
	again()
	if _, err := os.Stat(dataDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("locking created the data directory itself: %v", err)
	}
}

// TestLockNamesAHolderThatWritesLate: the holder writes its pid just after it takes the lock; a
// second pgimaged arriving in between still names it.
func TestLockNamesAHolderThatWritesLate(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	path := pg.LockPath(dataDir)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(200 * time.Millisecond)
		_, _ = f.WriteAt([]byte("pid=4242\ncommand=pgimaged run\nsince=2026-01-01T00:00:00Z\n"), 0)
	}()
	_, err = pg.LockDataDir(dataDir, "pgimaged clone")
	if !errors.Is(err, pg.ErrLocked) || !strings.Contains(err.Error(), "pid 4242 (pgimaged run)") {
		t.Fatalf("LockDataDir = %v, want ErrLocked naming pid 4242", err)
	}
}
