package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// readmeBlocks are the shell blocks of README.md's "Make it yours" section, in order.
func readmeBlocks(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	start := strings.Index(s, "## Make it yours")
	if start < 0 {
		t.Fatal(`README.md has no "Make it yours" section`)
	}
	s = s[start+1:]
	if end := strings.Index(s, "\n## "); end >= 0 {
		s = s[:end]
	}
	var blocks []string
	for _, m := range regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(s, -1) {
		blocks = append(blocks, m[1])
	}
	return blocks
}

// The ways README.md gives to build a copy of this example against a checkout of pgimaged,
// before the SDK module is published, work as written: a replace directive, or a workspace.
func TestReadmeBuildsACopyAgainstACheckout(t *testing.T) {
	blocks := readmeBlocks(t)
	if len(blocks) < 3 {
		t.Fatalf("README.md's Make it yours section has %d shell blocks, want the copy, the replace directive and the workspace", len(blocks))
	}
	root, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	goEnv := func(name string) string {
		out, err := exec.Command("go", "env", name).Output()
		if err != nil {
			t.Fatalf("go env %s: %v", name, err)
		}
		return strings.TrimSpace(string(out))
	}
	// A home of its own holding the checkout where the README puts it; Go's caches stay where they are.
	keep := []string{"GOPATH=" + goEnv("GOPATH"), "GOMODCACHE=" + goEnv("GOMODCACHE"), "GOCACHE=" + goEnv("GOCACHE"), "GOFLAGS=" + goEnv("GOFLAGS"),
		"GOPROXY=" + goEnv("GOPROXY"), "GOTOOLCHAIN=local", "PATH=" + os.Getenv("PATH")}
	for name, block := range map[string]string{"replace": blocks[1], "workspace": blocks[2]} {
		t.Run(name, func(t *testing.T) {
			home := t.TempDir()
			if err := os.MkdirAll(filepath.Join(home, "src"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(root, filepath.Join(home, "src", "pgimaged")); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command("sh", "-ec", blocks[0]+block)
			cmd.Dir = root
			cmd.Env = append(keep, "HOME="+home)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("the README's commands failed: %v\n%s", err, out)
			}
			mod, err := os.ReadFile(filepath.Join(home, "src", "pgimaged-plugin-mybackup", "go.mod"))
			if err != nil || !strings.Contains(string(mod), "module example.com/pgimaged-plugin-mybackup") || strings.Contains(string(mod), "../../../sdk") {
				t.Errorf("the copy's go.mod: %v\n%s", err, mod)
			}
		})
	}
}
