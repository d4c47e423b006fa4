package config

import (
	"fmt"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/pgimaged/pgimaged/sdk"
)

// CheckOptions checks the method's options against the option schema of the plugin that runs
// it (pluginName): an unknown option (in a closed schema, with a suggestion), a refused one, a
// value of the wrong type or outside an enum, a missing required option, and, as a warning, a
// deprecated alias. Each diagnostic points at the option's place in the configuration; a missing
// option at the method block. Values of sensitive options, and values read by env() or file(),
// are never shown.
func (m *Method) CheckOptions(s sdk.Schema, pluginName string) hcl.Diagnostics {
	var diags hcl.Diagnostics
	add := func(sev hcl.DiagnosticSeverity, summary string, subject hcl.Range, detail string, args ...any) {
		detail = fmt.Sprintf("Method %q (plugin %s): ", m.Label, pluginName) + fmt.Sprintf(detail, args...)
		diags = append(diags, &hcl.Diagnostic{Severity: sev, Summary: summary, Detail: detail, Subject: subject.Ptr()})
	}
	given := map[string]bool{}
	for i, o := range m.Options {
		at := m.DefRange
		if i < len(m.OptionRanges) && m.OptionRanges[i].Filename != "" {
			at = m.OptionRanges[i]
		}
		spec, alias, ok := s.Lookup(o.Name)
		switch {
		case !ok && s.Open:
			continue
		case !ok:
			add(hcl.DiagError, "Unknown option", at, "%q is not an option of %s.%s `pgimaged plugins show %s` lists its options.",
				o.Name, pluginName, suggestOption(o.Name, s), pluginName)
			continue
		case alias:
			add(hcl.DiagWarning, "Deprecated option name", at, "%q is a deprecated name of %q: write %s.", o.Name, spec.Name, spec.Name)
		}
		given[spec.Name] = true
		if spec.Refused != "" {
			add(hcl.DiagError, "Refused option", at, "%q cannot be given: %s.", o.Name, strings.TrimSuffix(spec.Refused, "."))
			continue
		}
		if i < len(m.OptionHidden) && m.OptionHidden[i] {
			spec.Sensitive = true // what env() and file() read is never shown
		}
		if err := spec.Check(o); err != nil {
			add(hcl.DiagError, "Invalid option value", at, "%s.", err)
		}
	}
	for _, spec := range s.Options {
		if !spec.Required || spec.Refused != "" || given[spec.Name] {
			continue
		}
		what := ""
		if spec.Description != "" {
			what = ": " + spec.Description
		}
		add(hcl.DiagError, "Missing required option", m.DefRange, "option %q is required%s.", spec.Name, what)
	}
	return diags
}

// suggestOption proposes the schema's option closest to a misspelt name: the same name with '_'
// and '-' swapped first, then one within two edits.
func suggestOption(name string, s sdk.Schema) string {
	var names []string
	for _, o := range s.Options {
		if o.Refused == "" {
			names = append(names, o.Name)
		}
	}
	norm := func(n string) string { return strings.ToLower(strings.ReplaceAll(n, "_", "-")) }
	for _, n := range names {
		if norm(n) == norm(name) {
			return fmt.Sprintf(" Did you mean %q?", n)
		}
	}
	return suggest(name, names)
}
