package pg

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrLocked means another pgimaged works on the data directory (see [LockDataDir]).
var ErrLocked = errors.New("the data directory is in use by another pgimaged")

// LockPath is the lock file of a data directory: .<base>.pgimaged-lock beside it.
func LockPath(dataDir string) string {
	dataDir = filepath.Clean(dataDir)
	return filepath.Join(filepath.Dir(dataDir), "."+filepath.Base(dataDir)+".pgimaged-lock")
}

// ProcessRecordPath is where a pgimaged working on dataDir records the processes of the method
// it runs: .<base>.pgimaged-procs beside the data directory, so that the next pgimaged finds
// them after a crash (see plugin.Catalog.ProcessRecord and plugin.EndRecorded).
func ProcessRecordPath(dataDir string) string {
	dataDir = filepath.Clean(dataDir)
	return filepath.Join(filepath.Dir(dataDir), "."+filepath.Base(dataDir)+".pgimaged-procs")
}

// LockDataDir makes this process the only pgimaged working on dataDir: it takes an exclusive
// flock on [LockPath] (creating the parent directory with mode 0700 if needed) and writes into
// it this process's pid, what (the command, e.g. "pgimaged run") and the time. The lock is held
// until release is called or the process ends, however it ends (the kernel drops it). When
// another process holds it, the error wraps [ErrLocked] and says who: pid, command and since
// when. The lock is per open file: a second LockDataDir in the same process is refused too.
func LockDataDir(dataDir, what string) (release func(), err error) {
	if dataDir == "" {
		return nil, errors.New("no data directory to lock")
	}
	path := LockPath(dataDir)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("while creating the directory of lock file %q: %w", path, err)
	}
	var f *os.File
	for {
		f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("while opening lock file %q: %w", path, err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			if !errors.Is(err, syscall.EWOULDBLOCK) {
				_ = f.Close()
				return nil, fmt.Errorf("while locking %q: %w", path, err)
			}
			holder := readHolder(f)
			_ = f.Close()
			return nil, fmt.Errorf("%w: %s (lock file %s)", ErrLocked, holder, path)
		}
		// The holder removes the file when it lets go: a lock taken on a file that was removed
		// meanwhile locks nothing, so take it again on the file that is there now.
		if sameFile(f, path) {
			break
		}
		_ = f.Close()
	}
	info := fmt.Sprintf("pid=%d\ncommand=%s\nsince=%s\n", os.Getpid(), lockLine(what), time.Now().UTC().Format(time.RFC3339))
	if err := f.Truncate(0); err == nil {
		_, err = f.WriteAt([]byte(info), 0)
		if err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("while writing lock file %q: %w", path, err)
		}
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			// Removed while still locked: a process that opened it meanwhile finds, once it
			// holds its lock, that the path names another file or none, and tries again.
			_ = os.Remove(path)
			_ = f.Close()
		})
	}, nil
}

// readHolder describes who holds the lock in f. The holder writes its pid just after it takes
// the lock: a file still empty is read again for a moment.
func readHolder(f *os.File) string {
	buf := make([]byte, 4096)
	for range 50 {
		n, _ := f.ReadAt(buf, 0)
		if strings.Contains(string(buf[:n]), "\ncommand=") {
			return describeHolder(string(buf[:n]))
		}
		time.Sleep(20 * time.Millisecond)
	}
	n, _ := f.ReadAt(buf, 0)
	return describeHolder(string(buf[:n]))
}

// sameFile reports whether the open file f is still the file at path.
func sameFile(f *os.File, path string) bool {
	open, err := f.Stat()
	if err != nil {
		return false
	}
	now, err := os.Stat(path)
	return err == nil && os.SameFile(open, now)
}

// describeHolder turns the lock file's content into "pgimaged pid 123 (pgimaged run) since ...".
func describeHolder(content string) string {
	fields := map[string]string{}
	for _, line := range strings.Split(content, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			fields[k] = v
		}
	}
	pid, err := strconv.Atoi(fields["pid"])
	if err != nil {
		return "held by a process that has not written its pid yet"
	}
	s := fmt.Sprintf("held by pid %d", pid)
	if c := fields["command"]; c != "" {
		s += " (" + c + ")"
	}
	if since := fields["since"]; since != "" {
		s += " since " + since
	}
	return s
}

func lockLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
