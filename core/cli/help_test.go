package cli_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/pgimaged/pgimaged/core/cli"
	"github.com/pgimaged/pgimaged/internal/testenv"
)

func runMain(args ...string) (stdout, stderr string, code int) {
	var o, e bytes.Buffer
	code = cli.Main(args, &o, &e)
	return o.String(), e.String(), code
}

// Asked-for help goes to stdout with exit 0 and explains the command; a usage mistake goes to
// stderr with exit 2.
func TestHelpOnStdout(t *testing.T) {
	for _, name := range cli.HelpNames() {
		words := strings.Fields(name)
		for _, args := range [][]string{append([]string{"help"}, words...), append(append([]string{}, words...), "-h"), append(append([]string{}, words...), "--help")} {
			out, errOut, code := runMain(args...)
			if code != 0 {
				t.Errorf("pgimaged %s: exit %d, want 0; stderr: %s", strings.Join(args, " "), code, errOut)
				continue
			}
			for _, want := range []string{"Usage: pgimaged " + words[0], "Example:\n  pgimaged " + words[0], "Exit codes:\n  0 success"} {
				if !strings.Contains(out, want) {
					t.Errorf("pgimaged %s: stdout lacks %q:\n%s", strings.Join(args, " "), want, out)
				}
			}
			if name != "completion" && !strings.Contains(out, "Flags:\n  -") {
				t.Errorf("pgimaged %s: stdout lists no flags:\n%s", strings.Join(args, " "), out)
			}
		}
	}
	out, errOut, code := runMain("status", "-bogus")
	if code != 2 || out != "" || !strings.Contains(errOut, "flag provided but not defined: -bogus") {
		t.Errorf("status -bogus: exit %d, stdout %q, stderr %q; want exit 2, the mistake on stderr only", code, out, errOut)
	}
	out, _, code = runMain("plugins", "install")
	if code != 2 || out != "" {
		t.Errorf("plugins install without a file: exit %d, stdout %q; want 2 and nothing on stdout", code, out)
	}
	if _, errOut, code := runMain("help", "nosuch"); code != 2 || !strings.Contains(errOut, `"nosuch"`) {
		t.Errorf("help nosuch: exit %d, stderr %q", code, errOut)
	}
	if out, _, code := runMain("--help"); code != 0 || !strings.Contains(out, "Commands:") {
		t.Errorf("--help: exit %d, stdout %q", code, out)
	}
	if _, errOut, code := runMain(); code != 2 || !strings.Contains(errOut, "Commands:") {
		t.Errorf("no arguments: exit %d, stderr %q; want 2 and the usage on stderr", code, errOut)
	}
	want, _, _ := runMain("version")
	for _, flag := range []string{"--version", "-v"} {
		if out, _, code := runMain(flag); code != 0 || out != want || !strings.Contains(out, cli.Version) {
			t.Errorf("%s: exit %d, stdout %q; want %q", flag, code, out, want)
		}
	}
}

// README.md's command table names exactly the commands the help table documents.
func TestReadmeCommandTable(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `pgimaged ([a-z]+)( (show|install|verify|check)\\b)?[^`]*` \\|")
	inReadme := map[string]bool{}
	for _, m := range row.FindAllStringSubmatch(string(src), -1) {
		name := m[1]
		if m[1] == "plugins" && m[3] != "" {
			name += " " + m[3]
		}
		inReadme[name] = true
	}
	documented := map[string]bool{}
	for _, n := range cli.HelpNames() {
		documented[n] = true
		if !inReadme[n] {
			t.Errorf("README.md's command table lacks `pgimaged %s`", n)
		}
	}
	for n := range inReadme {
		if !documented[n] {
			t.Errorf("README.md's command table names `pgimaged %s`, which is not a command", n)
		}
	}
}

func complete(t *testing.T, script string, words ...string) []string {
	t.Helper()
	bash := testenv.LookPath(t, "bash")
	cmd := exec.Command(bash, "-c", `source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); _pgimaged; printf '%s\n' "${COMPREPLY[@]}"`, "bash", script)
	cmd.Args = append(cmd.Args, words...)
	cmd.Dir = t.TempDir()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("completing %q: %v\n%s", words, err, out)
	}
	got := strings.Fields(string(out))
	sort.Strings(got)
	return got
}

// The bash script completes commands, flags, plugins subcommands and files for -config; the
// zsh one is valid zsh.
func TestCompletion(t *testing.T) {
	dir := t.TempDir()
	out, errOut, code := runMain("completion", "bash")
	if code != 0 {
		t.Fatalf("completion bash: exit %d: %s", code, errOut)
	}
	script := filepath.Join(dir, "pgimaged.bash")
	if err := os.WriteFile(script, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	check := func(got []string, want ...string) {
		t.Helper()
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("got %q, want %q", got, want)
		}
	}
	check(complete(t, script, "pgimaged", "sta"), "standby", "status")
	check(complete(t, script, "pgimaged", "p"), "pause", "plan", "plugins")
	check(complete(t, script, "pgimaged", "plugins", "s"), "show")
	check(complete(t, script, "pgimaged", "status", "-"), "-config", "-json", "-log-level")
	check(complete(t, script, "pgimaged", "plugins", "verify", "-l"), "-lock", "-log-level")
	check(complete(t, script, "pgimaged", "reinit", "--f"), "--force")
	check(complete(t, script, "pgimaged", "completion", ""), "bash", "zsh")

	cfgDir := t.TempDir()
	for _, f := range []string{"node1.hcl", "node2.hcl"} {
		if err := os.WriteFile(filepath.Join(cfgDir, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	check(complete(t, script, "pgimaged", "run", "-config", cfgDir+"/no"), cfgDir+"/node1.hcl", cfgDir+"/node2.hcl")

	out, errOut, code = runMain("completion", "zsh")
	if code != 0 {
		t.Fatalf("completion zsh: exit %d: %s", code, errOut)
	}
	zsh := testenv.LookPath(t, "zsh")
	zscript := filepath.Join(dir, "_pgimaged")
	if err := os.WriteFile(zscript, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command(zsh, "-n", zscript).CombinedOutput(); err != nil {
		t.Errorf("zsh -n: %v\n%s", err, b)
	}
	if _, errOut, code := runMain("completion", "fish"); code != 2 || !strings.Contains(errOut, "bash or zsh") {
		t.Errorf("completion fish: exit %d, stderr %q", code, errOut)
	}
}
