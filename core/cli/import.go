package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/pgimaged/pgimaged/core/patroni"
)

// runImport converts another tool's configuration: `import patroni FILE.yml [-o FILE.hcl]
// [--base-dir D] [--secrets=env]`. Flags may come before or after the file.
func runImport(_ context.Context, e *env, args []string) int {
	if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
		args = []string{"patroni", "-h"}
	}
	if len(args) == 0 || args[0] != "patroni" {
		importUsage(e)
		return exitUsage
	}
	var out, baseDir, secrets string
	fs := newFlagSet(e, "import patroni", "FILE.yml [-o FILE.hcl] [--base-dir D] [--secrets=env] [--accept-weaker]")
	fs.StringVar(&out, "o", "", "write the configuration to this file (default: standard output)")
	fs.StringVar(&baseDir, "base-dir", "", "directory relative paths are taken against, as Patroni's working directory (default: the current directory)")
	fs.StringVar(&secrets, "secrets", "", `"env": write passwords as env("…") references instead of their values`)
	acceptWeaker := fs.Bool("accept-weaker", false, "write the configuration even though it leaves out settings that made Patroni's more durable or guarded (the warnings name them)")
	var files []string
	rest := args[1:]
	for {
		if err := fs.Parse(rest); err != nil {
			return parseFailure(err)
		}
		if fs.NArg() == 0 {
			break
		}
		files = append(files, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if len(files) != 1 {
		usageMistake(fs)
		return e.failf(exitUsage, "import patroni takes one Patroni configuration file")
	}
	if secrets != "" && secrets != "env" {
		return e.failf(exitUsage, "--secrets=%s: the only value is env", secrets)
	}
	src, err := os.ReadFile(files[0])
	if err != nil {
		return e.failf(exitFailed, "while reading the Patroni configuration: %v", err)
	}
	res, err := patroni.Convert(files[0], src, patroni.Options{
		BaseDir: baseDir, SecretsEnv: secrets == "env", Environ: os.Environ(),
	})
	if err != nil {
		return e.failf(exitConfig, "%v", err)
	}
	for _, n := range res.Notes {
		fmt.Fprintf(e.stderr, "pgimaged: note: %s\n", n)
	}
	for _, w := range res.Warnings {
		fmt.Fprintf(e.stderr, "pgimaged: warning: %s\n", w)
	}
	if refused := weakerSummary(e, res.Weaker, *acceptWeaker); refused {
		return exitRefused
	}
	if out == "" {
		_, err = e.stdout.Write(res.HCL)
	} else {
		mode := os.FileMode(0o640)
		if len(res.Warnings) > 0 {
			mode = 0o600 // it holds passwords
		}
		err = os.WriteFile(out, res.HCL, mode)
	}
	if err != nil {
		return e.failf(exitFailed, "while writing the configuration: %v", err)
	}
	if len(res.SecretEnv) > 0 {
		fmt.Fprintf(e.stderr, "pgimaged: the configuration reads its passwords from the environment; set:\n")
		for _, s := range res.SecretEnv {
			fmt.Fprintf(e.stderr, "  %s  (the value of Patroni's %s)\n", s[0], s[1])
		}
	}
	if out != "" {
		fmt.Fprintf(e.stderr, "pgimaged: wrote %s; check it with: pgimaged validate -config %s\n", out, out)
	}
	return exitOK
}

// weakerSummary prints what makes the converted configuration weaker than Patroni's, one
// warning each, and a summary line; it reports whether the import is refused for it (there is
// something, and accept is not set).
func weakerSummary(e *env, weaker []string, accept bool) bool {
	for _, w := range weaker {
		fmt.Fprintf(e.stderr, "pgimaged: warning: %s\n", w)
	}
	if len(weaker) == 0 {
		return false
	}
	setting := "settings"
	if len(weaker) == 1 {
		setting = "setting"
	}
	if accept {
		fmt.Fprintf(e.stderr, "pgimaged: the configuration is weaker than Patroni's: %d %s above not converted (accepted with --accept-weaker)\n", len(weaker), setting)
		return false
	}
	fmt.Fprintf(e.stderr, "pgimaged: the configuration would be weaker than Patroni's: %d %s above not converted; nothing written. "+
		"Add what you need by hand afterwards, and import again with --accept-weaker\n", len(weaker), setting)
	return true
}

func importUsage(e *env) {
	fmt.Fprintf(e.stderr, "Usage: pgimaged import patroni FILE.yml [-o FILE.hcl] [--base-dir D] [--secrets=env] [--accept-weaker]\n\n"+
		"Converts a Patroni configuration, with the PATRONI_* variables set now, into pgimaged's.\n")
}

// refuseYAML reports a configuration file that is YAML (a Patroni configuration, most likely)
// and names the command that converts it, instead of HCL's errors about each of its lines.
func refuseYAML(e *env, file string) (int, bool) {
	if file == "" {
		return 0, false
	}
	src, err := os.ReadFile(file)
	if err != nil || !patroni.LooksLikeYAML(file, src) {
		return 0, false
	}
	return e.failf(exitConfig, "%s is YAML, not pgimaged's HCL: a Patroni configuration? Convert it with\n"+
		"  pgimaged import patroni %s -o %s", file, file, hclName(file)), true
}

func hclName(file string) string {
	return strings.TrimSuffix(strings.TrimSuffix(file, filepath.Ext(file)), ".") + ".hcl"
}
