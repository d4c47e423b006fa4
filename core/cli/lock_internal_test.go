package cli

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/pgimaged/pgimaged/internal/pgtest"
)

// The test binary run by TestSecondPgimagedRefused holds a data directory's lock as a running
// pgimaged would, until its stdin closes.
func init() { pgtest.HoldLockIfAsked() }

// A second pgimaged on the same configuration is refused, names the one that holds the data
// directory, and touches nothing.
func TestSecondPgimagedRefused(t *testing.T) {
	base := t.TempDir()
	dataDir := filepath.Join(base, "pg 15", "node1")
	holder, _ := pgtest.StartLockHolder(t, dataDir, "pgimaged run")

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
