package cli

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/pgimaged/pgimaged/core/pg"
)

// The test binary run by TestSecondPgimagedRefused holds a data directory's lock as a running
// pgimaged would, until its stdin closes.
func init() {
	dir := os.Getenv("PGIMAGED_CLI_LOCK_HELPER_DIR")
	if dir == "" {
		return
	}
	release, err := pg.LockDataDir(dir, "pgimaged run")
	if err != nil {
		fmt.Println("error", err)
		os.Exit(3)
	}
	fmt.Println("locked")
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	release()
	os.Exit(0)
}

// A second pgimaged on the same configuration is refused, names the one that holds the data
// directory, and touches nothing.
func TestSecondPgimagedRefused(t *testing.T) {
	base := t.TempDir()
	dataDir := filepath.Join(base, "pg 15", "node1")
	holder := exec.Command(os.Args[0], "-test.run=^$")
	holder.Env = append(os.Environ(), "PGIMAGED_CLI_LOCK_HELPER_DIR="+dataDir)
	if _, err := holder.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	out, err := holder.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = holder.Process.Kill(); _ = holder.Wait() })
	if line, err := bufio.NewReader(out).ReadString('\n'); line != "locked\n" {
		t.Fatalf("the first pgimaged did not take the lock: %q %v", line, err)
	}

	config := filepath.Join(base, "node1.hcl")
	hcl := fmt.Sprintf(`scope    = "batman"
name     = "node1"
data_dir = %q
postgresql {
  listen     = "*:6543"
  parameters = { unix_socket_directories = "/tmp" }
}
`, dataDir)
	if err := os.WriteFile(config, []byte(hcl), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := [][]string{
		{"run", "-config", config},
		{"clone", "-config", config},
		{"bootstrap", "-config", config},
		{"clone", "--scope=batman", "--datadir=" + dataDir, "--role=replica", "--connstring=host=127.0.0.1 port=1"},
	}
	for _, args := range cases {
		t.Run(strings.Join(args[:1], " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := Main(args, &stdout, &stderr)
			if code != exitRefused {
				t.Errorf("exit code %d, want %d; stderr:\n%s", code, exitRefused, stderr.String())
			}
			msg := stderr.String()
			for _, want := range []string{"pid " + strconv.Itoa(holder.Process.Pid), "pgimaged run", "since"} {
				if !strings.Contains(msg, want) {
					t.Errorf("the refusal does not say %q:\n%s", want, msg)
				}
			}
		})
	}
	if _, err := os.Stat(dataDir); !os.IsNotExist(err) {
		t.Errorf("a refused pgimaged created or touched the data directory: %v", err)
	}
}
