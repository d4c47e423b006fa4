package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

// EnvdirCommand is the first argument that makes the plugin's executable act as envdir(8).
const EnvdirCommand = "envdir"

// Envdir is the environment a directory describes, the way daemontools' envdir reads it: every
// file (names starting with '.' skipped) names a variable; its first line, trailing spaces and
// tabs removed and NUL bytes turned into newlines, is the value; an empty file unsets it.
type Envdir struct {
	Set   map[string]string
	Unset []string
}

// ReadEnvdir reads dir as envdir(8) does.
func ReadEnvdir(dir string) (Envdir, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return Envdir{}, fmt.Errorf("while reading envdir %q: %w", dir, err)
	}
	env := Envdir{Set: map[string]string{}}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue
		}
		if strings.Contains(name, "=") {
			return Envdir{}, fmt.Errorf("while reading envdir %q: file name %q contains '='", dir, name)
		}
		path := filepath.Join(dir, name)
		b, err := os.ReadFile(path)
		if err != nil {
			return Envdir{}, fmt.Errorf("while reading envdir %q: %w", dir, err)
		}
		if len(b) == 0 {
			env.Unset = append(env.Unset, name)
			continue
		}
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[:i]
		}
		v := strings.TrimRight(string(b), " \t")
		env.Set[name] = strings.ReplaceAll(v, "\x00", "\n")
	}
	sort.Strings(env.Unset)
	return env, nil
}

// ProcessEnv is the directory's environment for [sdk.Process.Env], which can add variables but
// not remove them: a variable the directory unsets is passed empty instead.
func (e Envdir) ProcessEnv() map[string]string {
	out := make(map[string]string, len(e.Set)+len(e.Unset))
	for _, k := range e.Unset {
		out[k] = ""
	}
	for k, v := range e.Set {
		out[k] = v
	}
	return out
}

// EnvdirMain runs `envdir DIR PROGRAM [ARG...]`: it replaces the current process with PROGRAM,
// its environment changed by DIR. It returns only on failure, with envdir's exit code 111.
func EnvdirMain(args []string, stderr io.Writer) int {
	if len(args) < 2 {
		fmt.Fprintln(stderr, "usage: envdir DIR PROGRAM [ARG...]")
		return 100
	}
	env, err := ReadEnvdir(args[0])
	if err != nil {
		fmt.Fprintf(stderr, "envdir: %v\n", err)
		return 111
	}
	for _, k := range env.Unset {
		_ = os.Unsetenv(k)
	}
	for k, v := range env.Set {
		if err := os.Setenv(k, v); err != nil {
			fmt.Fprintf(stderr, "envdir: while setting %s: %v\n", k, err)
			return 111
		}
	}
	prog, err := exec.LookPath(args[1])
	if err != nil {
		fmt.Fprintf(stderr, "envdir: while looking for %s: %v\n", args[1], err)
		return 111
	}
	err = syscall.Exec(prog, args[1:], os.Environ())
	fmt.Fprintf(stderr, "envdir: while running %s: %v\n", prog, err)
	return 111
}
