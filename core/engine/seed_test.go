package engine_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"

	"github.com/pgimaged/pgimaged/core/config"
	"github.com/pgimaged/pgimaged/core/engine"
	"github.com/pgimaged/pgimaged/core/pg"
)

// writeCopyProgram writes an executable at path that copies the fixture cluster into the
// directory its --datadir names.
func writeCopyProgram(t *testing.T, path string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	body := fmt.Sprintf("#!/bin/sh\nfor a in \"$@\"; do case \"$a\" in --datadir=*) D=\"${a#--datadir=}\";; esac; done\ncp -a %q/. \"$D/\"\n", fixture(t))
	if err := os.WriteFile(path, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
}

// plannedMethod is the method called label in the plan of a node whose DCS cannot be read.
func plannedMethod(t *testing.T, n *engine.Node, label string) engine.PlannedMethod {
	t.Helper()
	for _, m := range n.Plan(context.Background(), nil, errors.New("no DCS")).Methods {
		if m.Method == label {
			return m
		}
	}
	t.Fatalf("the plan has no method %s", label)
	return engine.PlannedMethod{}
}

// A method with no command and no plugin of its name runs its name as a program found in
// PATH, as the seed does: plan shows the script plugin and the program, validate says so, and
// the clone runs it. With no such program in PATH validate refuses the method.
func TestMethodWithoutCommandRunsItsName(t *testing.T) {
	bin := t.TempDir()
	writeCopyProgram(t, filepath.Join(bin, "seedcopy"))
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	dataDir := filepath.Join(t.TempDir(), "data")
	n := loadNode(t, dataDir, `
postgresql { create_replica_methods = ["seedcopy"] }
method "seedcopy" { no_master = true }`)

	pm := plannedMethod(t, n, "seedcopy")
	if pm.Plugin != "script" || pm.Skipped != "" || len(pm.Commands) != 1 || pm.Commands[0].Argv[0] != filepath.Join(bin, "seedcopy") ||
		!strings.Contains(strings.Join(pm.Notes, " "), "found in PATH") {
		t.Errorf("plan: %+v", pm)
	}
	diags := n.Validate(context.Background())
	if diags.HasErrors() || !hasDiag(diags, hcl.DiagWarning, "Method runs its name", filepath.Join(bin, "seedcopy")) {
		t.Errorf("validate: %v", diags)
	}
	if _, err := n.Clone(context.Background(), engine.CloneOptions{ImageOnly: true}); err != nil {
		t.Fatalf("clone: %v", err)
	}
	if !pg.HasCluster(dataDir) {
		t.Error("the program found in PATH did not fill the data directory")
	}

	t.Setenv("PATH", t.TempDir())
	if d := n.Validate(context.Background()); !hasDiag(d, hcl.DiagError, "No plugin or program for method", `no program "seedcopy"`) {
		t.Errorf("validate with no program in PATH: %v", d)
	}
}

// A relative command is resolved against the pgimaged program's directory, as the seed
// resolves it against the patroni command's; validate and plan show it resolved.
func TestRelativeCommandShownResolved(t *testing.T) {
	prog := t.TempDir()
	saved := config.ProgramDir
	config.ProgramDir = prog
	t.Cleanup(func() { config.ProgramDir = saved })
	resolved := filepath.Join(prog, "tools", "copy")
	writeCopyProgram(t, resolved)
	t.Chdir(t.TempDir()) // not where the command lies
	n := loadNode(t, filepath.Join(t.TempDir(), "data"), `
postgresql { create_replica_methods = ["restore"] }
method "restore" {
  command   = "tools/copy --fast"
  no_master = true
}`)
	if pm := plannedMethod(t, n, "restore"); len(pm.Commands) != 1 || pm.Commands[0].Argv[0] != resolved || pm.Commands[0].Argv[1] != "--fast" {
		t.Errorf("plan: %+v", pm)
	}
	if d := n.Validate(context.Background()); d.HasErrors() || !hasDiag(d, hcl.DiagWarning, "Relative command", resolved) {
		t.Errorf("validate: %v", d)
	}
	if _, err := n.Clone(context.Background(), engine.CloneOptions{ImageOnly: true}); err != nil {
		t.Fatalf("clone: %v", err)
	}
}
