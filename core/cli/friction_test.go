package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/pgimaged/pgimaged/core/cli"
)

// exitCodeLines are the lines of a command's help under "Exit codes:".
func exitCodeLines(t *testing.T, help string) []string {
	t.Helper()
	_, codes, ok := strings.Cut(help, "\nExit codes:\n")
	if !ok {
		t.Fatalf("the help has no exit codes:\n%s", help)
	}
	var out []string
	for _, l := range strings.Split(strings.TrimRight(codes, "\n"), "\n") {
		out = append(out, strings.TrimSpace(l))
	}
	return out
}

// Each exit code is one line of the help, whatever commas its explanation holds, and each code
// is listed once.
func TestHelpListsEachExitCodeOnOneLine(t *testing.T) {
	startsWithCode := regexp.MustCompile(`^[0-9]+ `)
	for _, name := range cli.HelpNames() {
		out, _, code := runMain(append([]string{"help"}, strings.Fields(name)...)...)
		if code != 0 {
			t.Fatalf("help %s: exit %d", name, code)
		}
		seen := map[string]bool{}
		for _, l := range exitCodeLines(t, out) {
			if !startsWithCode.MatchString(l) {
				t.Errorf("help %s: exit-code line %q does not start with a code", name, l)
				continue
			}
			c, _, _ := strings.Cut(l, " ")
			if seen[c] {
				t.Errorf("help %s: exit code %s is listed twice", name, c)
			}
			seen[c] = true
		}
	}
	out, _, _ := runMain("help", "reinit")
	if lines := exitCodeLines(t, out); !strings.Contains(strings.Join(lines, "\n"), "4 refused (the leader, a primary, another cluster's directory, a member the DCS does not know)") {
		t.Errorf("help reinit: the refusal's explanation is not one line:\n%s", strings.Join(lines, "\n"))
	}
}

// validate -json prints a JSON verdict also when the configuration has errors: valid false and
// each diagnostic with its place.
func TestValidateJSONReportsErrors(t *testing.T) {
	s := newSetup(t, "bogus = 1\n")
	code, out, _ := run(t, "validate", "-json", "-config", s.config)
	if code != 3 {
		t.Errorf("validate -json of a configuration with an error: exit %d, want 3", code)
	}
	var verdict struct {
		Valid       bool   `json:"valid"`
		File        string `json:"file"`
		Diagnostics []struct {
			Severity string `json:"severity"`
			Summary  string `json:"summary"`
			Detail   string `json:"detail"`
			Place    string `json:"place"`
		} `json:"diagnostics"`
	}
	if err := json.Unmarshal([]byte(out), &verdict); err != nil {
		t.Fatalf("validate -json printed no JSON (%v):\n%s", err, out)
	}
	if verdict.Valid || verdict.File != s.config || len(verdict.Diagnostics) == 0 {
		t.Fatalf("validate -json: %+v, want valid false, the file and its diagnostics", verdict)
	}
	d := verdict.Diagnostics[0]
	if want := lineCol(t, s.config, "bogus"); d.Severity != "error" || d.Place != want || !strings.Contains(d.Detail+d.Summary, "bogus") {
		t.Errorf("validate -json: diagnostic %+v, want an error at %s about bogus", d, want)
	}
}

// plan exits 1 when the DCS cannot be read, as its help says, after showing what it would do.
func TestPlanExitsOneWhenTheDCSCannotBeRead(t *testing.T) {
	dir := t.TempDir()
	notADir := filepath.Join(dir, "dcs")
	if err := os.WriteFile(notADir, []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := newSetup(t, "dcs \"file\" { path = \""+notADir+"\" }\n")
	install(t, s, "initdb", "basebackup")
	for _, args := range [][]string{{"plan", "-config", s.config}, {"plan", "-json", "-config", s.config}} {
		code, out, errOut := run(t, args...)
		if code != 1 || !strings.Contains(out, "wait") || !strings.Contains(errOut, "DCS") {
			t.Errorf("%s with an unreadable DCS: exit %d, stdout %q, stderr %q; want exit 1, the plan, and the DCS's error", strings.Join(args, " "), code, out, errOut)
		}
	}
	if err := os.Remove(notADir); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := run(t, "plan", "-config", s.config); code != 0 {
		t.Errorf("plan with a DCS that holds nothing yet: exit %d\n%s%s", code, out, errOut)
	} else if !strings.Contains(out, "PostgreSQL logs to ") || !strings.Contains(out, ".pglog"+string(filepath.Separator)+"postgresql.log") {
		t.Errorf("plan does not say where PostgreSQL logs, beside the data directory:\n%s", out)
	}
}

// patronictl's spellings: -c FILE for -config FILE, and list for status.
func TestPatronictlSpellings(t *testing.T) {
	s := newSetup(t, "dcs \"file\" { path = \""+filepath.Join(t.TempDir(), "dcs")+"\" }\n")
	install(t, s, "initdb", "basebackup")
	want, _, code := runMain("status", "-config", s.config)
	if code != 0 {
		t.Fatalf("status -config: exit %d", code)
	}
	for _, args := range [][]string{{"status", "-c", s.config}, {"list", "-config", s.config}, {"list", "-c", s.config}} {
		out, errOut, code := runMain(args...)
		if code != 0 || out != want {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want what status -config prints", strings.Join(args, " "), code, out, errOut)
		}
	}
	if code, _, errOut := run(t, "validate", "-c", s.config); code != 0 {
		t.Errorf("validate -c: exit %d\n%s", code, errOut)
	}
	out, _, code := runMain("help", "list")
	if code != 0 || !strings.Contains(out, "Usage: pgimaged status") {
		t.Errorf("help list: exit %d, want status's help:\n%s", code, out)
	}
	out, _, _ = runMain("--help")
	if line := regexp.MustCompile(`(?m)^  status .*$`).FindString(out); !strings.Contains(line, "list") {
		t.Errorf("the usage's line of status does not name list, its other name:\n%s", out)
	}
}
