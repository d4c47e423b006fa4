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
	prefix := fmt.Sprintf("Method %q (plugin %s): ", m.Label, pluginName)
	at := func(i int) *hcl.Range {
		if i < len(m.OptionRanges) && m.OptionRanges[i].Filename != "" {
			return m.OptionRanges[i].Ptr()
		}
		return m.DefRange.Ptr()
	}
	given := map[string]bool{}
	for i, o := range m.Options {
		spec, alias, ok := s.Lookup(o.Name)
		if !ok {
			if s.Open {
				continue
			}
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Unknown option", Subject: at(i),
				Detail: prefix + fmt.Sprintf("%q is not an option of %s.", o.Name, pluginName) + suggestOption(o.Name, s) +
					fmt.Sprintf(" `pgimaged plugins show %s` lists its options.", pluginName),
			})
			continue
		}
		given[spec.Name] = true
		if alias {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagWarning, Summary: "Deprecated option name", Subject: at(i),
				Detail: prefix + fmt.Sprintf("%q is a deprecated name of %q: write %s.", o.Name, spec.Name, spec.Name),
			})
		}
		if spec.Refused != "" {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Refused option", Subject: at(i),
				Detail: prefix + fmt.Sprintf("%q cannot be given: %s.", o.Name, strings.TrimSuffix(spec.Refused, ".")),
			})
			continue
		}
		if i < len(m.OptionHidden) && m.OptionHidden[i] {
			spec.Sensitive = true // what env() and file() read is never shown
		}
		if err := spec.Check(o); err != nil {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Invalid option value", Subject: at(i),
				Detail: prefix + err.Error() + ".",
			})
		}
	}
	for _, spec := range s.Options {
		if spec.Required && spec.Refused == "" && !given[spec.Name] {
			detail := prefix + fmt.Sprintf("option %q is required", spec.Name)
			if spec.Description != "" {
				detail += ": " + spec.Description
			}
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Missing required option", Detail: detail + ".", Subject: m.DefRange.Ptr()})
		}
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
