package plugin

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	hostproc "github.com/pgimaged/pgimaged/core/plugin/host/proc"
)

// socketDir creates the socket directory of one launch under a parent directory of this user's
// own, named after the launching pgimaged (pid and start time), and removes the directories of
// pgimaged processes that no longer run (one killed with SIGKILL cannot remove its own).
func socketDir() (string, error) {
	for attempt := 0; ; attempt++ {
		dir, err := makeSocketDir()
		// another pgimaged may have removed the parent, empty, in between
		if err == nil || !errors.Is(err, os.ErrNotExist) || attempt == 2 {
			return dir, err
		}
	}
}

// socketParent is the directory of this user's socket directories.
func socketParent() string {
	return filepath.Join(os.TempDir(), "pgimaged-sockets-"+strconv.Itoa(os.Getuid()))
}

// removeSocketDir removes a launch's socket directory, and the parent when it is left empty.
func removeSocketDir(dir string) {
	_ = os.RemoveAll(dir)
	_ = os.Remove(filepath.Dir(dir)) // fails while another launch uses it
}

func makeSocketDir() (string, error) {
	parent := socketParent()
	if err := os.Mkdir(parent, 0o700); err != nil && !os.IsExist(err) {
		return "", err
	}
	fi, err := os.Lstat(parent)
	if err != nil {
		return "", err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !fi.IsDir() || !ok || int(st.Uid) != os.Geteuid() {
		return "", fmt.Errorf("%q is not a directory of this user (uid %d)", parent, os.Geteuid())
	}
	if fi.Mode().Perm() != 0o700 {
		if err := os.Chmod(parent, 0o700); err != nil {
			return "", err
		}
	}
	removeStaleSocketDirs(parent)
	var start uint64
	if p, ok := hostproc.Read(os.Getpid()); ok {
		start = p.Start
	}
	return os.MkdirTemp(parent, fmt.Sprintf("%d.%d-", os.Getpid(), start))
}

func removeStaleSocketDirs(parent string) {
	des, err := os.ReadDir(parent)
	if err != nil {
		return
	}
	for _, de := range des {
		owner, _, ok := strings.Cut(de.Name(), "-")
		if !ok {
			continue
		}
		ps, ss, ok := strings.Cut(owner, ".")
		pid, err1 := strconv.Atoi(ps)
		start, err2 := strconv.ParseUint(ss, 10, 64)
		if !ok || err1 != nil || err2 != nil {
			continue
		}
		if _, alive := hostproc.Alive(pid, start); !alive {
			_ = os.RemoveAll(filepath.Join(parent, de.Name()))
		}
	}
}
