package pgtest

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"testing"

	"github.com/pgimaged/pgimaged/core/pg"
)

// What a test binary started by StartLockHolder is asked to do: the data directory to lock and
// the purpose the lock names.
const (
	lockHolderDirEnv     = "PGIMAGED_TEST_LOCK_HOLDER_DIR"
	lockHolderPurposeEnv = "PGIMAGED_TEST_LOCK_HOLDER_PURPOSE"
)

// HoldLockIfAsked makes the test binary started by StartLockHolder take the data directory's
// lock as another pgimaged would, say "locked" on stdout, hold it until its stdin closes, and
// exit; elsewhere it does nothing. Call it from an init function of a test package that uses
// StartLockHolder.
func HoldLockIfAsked() {
	dir := os.Getenv(lockHolderDirEnv)
	if dir == "" {
		return
	}
	release, err := pg.LockDataDir(dir, os.Getenv(lockHolderPurposeEnv))
	if err != nil {
		_, _ = os.Stdout.WriteString("error " + err.Error() + "\n")
		os.Exit(3)
	}
	_, _ = os.Stdout.WriteString("locked\n")
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	release()
	os.Exit(0)
}

// StartLockHolder runs this test binary again as another process that holds dataDir's lock for
// purpose (see HoldLockIfAsked), and returns once it holds it, with the holder and its stdin
// (closing it releases the lock). t's cleanup kills the holder.
func StartLockHolder(t testing.TB, dataDir, purpose string) (*exec.Cmd, io.WriteCloser) {
	t.Helper()
	holder := exec.Command(os.Args[0], "-test.run=^$")
	holder.Env = append(os.Environ(), lockHolderDirEnv+"="+dataDir, lockHolderPurposeEnv+"="+purpose)
	stdin, err := holder.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := holder.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = holder.Process.Kill(); _ = holder.Wait() })
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "locked\n" {
		t.Fatalf("the holder did not take the lock of %s: %q %v", dataDir, line, err)
	}
	return holder, stdin
}
