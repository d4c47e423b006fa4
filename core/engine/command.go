package engine

import (
	"fmt"
	"os/exec"

	"github.com/hashicorp/hcl/v2"

	"github.com/pgimaged/pgimaged/core/config"
	"github.com/pgimaged/pgimaged/sdk"
)

// planCommand notes in a planned method how its command was found: a method that runs its name
// (no command, no plugin of its name) or whose relative command was resolved against the
// pgimaged program's directory.
func (n *Node) planCommand(pm *PlannedMethod, m *config.Method) {
	if config.RunsItsName(m, pm.Plugin) {
		program, _ := exec.LookPath(m.Label)
		pm.Notes = append(pm.Notes, config.RunsItsNameNote(m, program))
	}
	if m.CommandWritten != "" {
		pm.Notes = append(pm.Notes, fmt.Sprintf("the relative program %q of the command is resolved against the pgimaged program's directory: %s", m.CommandWritten, m.Command))
	}
}

// validateCommands says, for the methods on paths (all without), how their commands are found:
// a method that runs its name is named with the program PATH finds (an error when it finds
// none), a relative command with what it was resolved to.
func (n *Node) validateCommands(paths ...sdk.Path) hcl.Diagnostics {
	var diags hcl.Diagnostics
	seen := map[string]bool{}
	for _, u := range n.methodUses(paths...) {
		m := u.method
		if seen[m.Label] {
			continue
		}
		seen[m.Label] = true
		if name := config.PluginNameFor(m, n.plugins().Has); config.RunsItsName(m, name) {
			program, err := exec.LookPath(m.Label)
			if err != nil {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError, Summary: "No plugin or program for method",
					Detail: fmt.Sprintf("Method %q has no command, no plugin called %q is installed in %s, and PATH holds no program %q to run in its place (%v). Give it a command or plugin = \"<name>\".",
						m.Label, m.Label, n.Catalog.Dir, m.Label, err),
					Subject: n.subject(m, u.ref),
				})
				continue
			}
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagWarning, Summary: "Method runs its name", Detail: config.RunsItsNameNote(m, program) + ".", Subject: n.subject(m, u.ref)})
		}
		if m.CommandWritten != "" {
			diags = append(diags, m.OptionDiagnostic("command", hcl.DiagWarning, "Relative command",
				fmt.Sprintf("Method %q: the program %q is relative, so it is resolved against the pgimaged program's directory, as Patroni resolves it against the patroni command's: the command runs as %s.", m.Label, m.CommandWritten, m.Command)))
		}
	}
	return diags
}
