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
	fs := newFlagSet(e, "import patroni", "FILE.yml [-o FILE.hcl] [--base-dir D] [--secrets=env]")
	fs.StringVar(&out, "o", "", "write the configuration to this file (default: standard output)")
	fs.StringVar(&baseDir, "base-dir", "", "directory relative paths are taken against, as Patroni's working directory (default: the current directory)")
	fs.StringVar(&secrets, "secrets", "", `"env": write passwords as env("…") references instead of their values`)
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

func importUsage(e *env) {
	fmt.Fprintf(e.stderr, "Usage: pgimaged import patroni FILE.yml [-o FILE.hcl] [--base-dir D] [--secrets=env]\n\n"+
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
