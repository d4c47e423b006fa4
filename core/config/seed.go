package config

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/pgimaged/pgimaged/sdk"
)

// Patroni's spellings and rules for replica methods, as its documentation (the seed) gives them:
// the list is written create_replica_method; a relative command is relative to the patroni
// command's location; a method without a command runs its name.

// ProgramDir is the directory a relative command is resolved against: the running pgimaged
// program's directory (symbolic links resolved) when empty.
var ProgramDir string

// programDir is [ProgramDir] or the running program's directory; "" when it cannot be told.
func programDir() string {
	if ProgramDir != "" {
		return ProgramDir
	}
	exe, err := os.Executable()
	if err != nil {
		return ""
	}
	if r, err := filepath.EvalSymlinks(exe); err == nil {
		exe = r
	}
	return filepath.Dir(exe)
}

// replicaMethodList is the list of replica methods written in the block at prefix ("postgresql")
// as create_replica_methods (plural) or, in the seed's spelling, create_replica_method
// (singular): the same list, said in a warning. Both at once is an error. The singular's places
// are recorded under the plural's key, so that later diagnostics point at what was written.
func (d *decoder) replicaMethodList(plural, singular []string, prefix string) []string {
	many, one := prefix+".create_replica_methods", prefix+".create_replica_method"
	if _, ok := d.cfg.Ranges[one]; !ok {
		return plural
	}
	if _, ok := d.cfg.Ranges[many]; ok {
		d.errorAt(d.attrs[one], "Conflicting settings",
			"create_replica_method is the seed's spelling of create_replica_methods, the same list; write only one of them (create_replica_methods is at %s).", d.attrs[many].String())
		return plural
	}
	d.diags = append(d.diags, &hcl.Diagnostic{
		Severity: hcl.DiagWarning, Summary: "Seed spelling",
		Detail:  "create_replica_method, as Patroni's documentation spells it, is read as create_replica_methods: the same list of replica methods, tried in order.",
		Subject: d.attrs[one].Ptr(),
	})
	for k, r := range d.cfg.Ranges {
		if rest, ok := strings.CutPrefix(k, one); ok && (rest == "" || rest[0] == '[') {
			d.cfg.Ranges[many+rest] = r
		}
	}
	d.attrs[many] = d.attrs[one]
	return singular
}

// command decodes a method's command (see nonEmpty). A program written as a relative path
// ("bin/restore", "./restore") is made absolute against the pgimaged program's directory, as
// Patroni resolves it against the patroni command's; the command is then rewritten with the
// resolved program, and written is the program as written ("" when nothing was resolved). A
// bare name ("wal-g") is left for PATH.
func (d *decoder) command(s *string, key string) (cmd, written string) {
	cmd = d.nonEmpty(s, key)
	words, err := sdk.SplitCommand(cmd)
	if err != nil || len(words) == 0 || filepath.IsAbs(words[0]) || !strings.ContainsRune(words[0], '/') {
		return cmd, "" // a command that does not split is the script plugin's to report
	}
	dir := programDir()
	if dir == "" {
		d.fail(key, "Unresolvable command", "The program %s is a relative path, resolved against the pgimaged program's directory, which cannot be told here: write an absolute path.", d.quote(d.at(key), words[0]))
		return cmd, ""
	}
	quoted := []string{shellQuote(filepath.Join(dir, words[0]))}
	for _, w := range words[1:] {
		quoted = append(quoted, shellQuote(w))
	}
	return strings.Join(quoted, " "), words[0]
}

// shellQuote quotes w so that [sdk.SplitCommand] gives it back as one word.
func shellQuote(w string) string {
	if w != "" && !strings.ContainsAny(w, " \t\n\r'\"\\$`") {
		return w
	}
	return "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
}

// RunsItsName reports whether method m, for want of a command and of a plugin named like it,
// runs its label as a program found in PATH, as Patroni runs such a method: pluginName (from
// [PluginNameFor]) is the script plugin and m has neither a command nor a plugin attribute.
func RunsItsName(m *Method, pluginName string) bool {
	return pluginName == "script" && m.Command == "" && m.Plugin == ""
}

// CommandFor is the command method m runs with plugin pluginName: its command, or its label when
// it runs its name (see [RunsItsName]).
func CommandFor(m *Method, pluginName string) string {
	if RunsItsName(m, pluginName) {
		return shellQuote(m.Label)
	}
	return m.Command
}

// fallbackPlugin is what [PluginNameFor] gives a method with no command, no plugin attribute and
// no plugin named like it: the script plugin, to run the method's name, unless the method is a
// builtin (its plugin is missing, which the caller reports) or the script plugin is.
func fallbackPlugin(m *Method, available func(name string) bool) string {
	if m.Label == "" || slices.Contains(ReplicaBuiltins, m.Label) || slices.Contains(BootstrapBuiltins, m.Label) ||
		available == nil || !available("script") {
		return ""
	}
	return "script"
}

// RunsItsNameNote is what plan and validate say of a method that runs its name; program is
// where PATH finds it ("" when not known).
func RunsItsNameNote(m *Method, program string) string {
	where := "found in PATH"
	if program != "" {
		where = "found in PATH as " + program
	}
	return fmt.Sprintf("method %q has no command and no plugin is called %q: it runs %q (the script plugin), %s, as Patroni runs a method without a command", m.Label, m.Label, m.Label, where)
}
