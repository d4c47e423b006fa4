package config

import (
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/pgimaged/pgimaged/sdk"
)

// CheckOptions checks the method's options against the option schema of the plugin that runs
// it (pluginName), by [sdk.Schema.Problems]. Each diagnostic points at the option's place in the
// configuration; a missing option at the method block. Values of sensitive options, and values
// read by env() or file(), are never shown.
func (m *Method) CheckOptions(s sdk.Schema, pluginName string) hcl.Diagnostics {
	var diags hcl.Diagnostics
	for _, p := range s.Problems(m.Options, m.OptionHidden) {
		at, name, sev, detail := m.DefRange, p.Spec.Name, hcl.DiagError, ""
		if p.Index >= 0 {
			name = m.Options[p.Index].Name
			if p.Index < len(m.OptionRanges) && m.OptionRanges[p.Index].Filename != "" {
				at = m.OptionRanges[p.Index]
			}
		}
		switch p.Kind {
		case sdk.ProblemUnknown:
			detail = fmt.Sprintf("%q is not an option of %s.%s `pgimaged plugins show %s` lists its options.",
				name, pluginName, didYouMean(p.Suggestion), pluginName)
		case sdk.ProblemAlias:
			sev, detail = hcl.DiagWarning, fmt.Sprintf("%q is a deprecated name of %q: write %s.", name, p.Spec.Name, p.Spec.Name)
		case sdk.ProblemRefused:
			detail = fmt.Sprintf("%q cannot be given: %s.", name, strings.TrimSuffix(p.Spec.Refused, "."))
		case sdk.ProblemInvalid:
			detail = fmt.Sprintf("%s.", p.Err)
		case sdk.ProblemMissing:
			detail = fmt.Sprintf("option %q is required", name)
			if p.Spec.Description != "" {
				detail += ": " + p.Spec.Description
			}
			detail += "."
		}
		detail = fmt.Sprintf("Method %q (plugin %s): %s", m.Label, pluginName, detail)
		diags = append(diags, &hcl.Diagnostic{Severity: sev, Summary: p.Kind.String(), Detail: detail, Subject: at.Ptr()})
	}
	return diags
}

// didYouMean is " Did you mean "name"?", or "" when name is "": a suggestion to end a message.
func didYouMean(name string) string {
	if name == "" {
		return ""
	}
	return fmt.Sprintf(" Did you mean %q?", name)
}

// closest is the candidate a mistyped name was most likely meant to be, "" for none: what a
// plugin's schema suggests for an option it does not have, so that every suggestion reads alike.
func closest(name string, candidates []string) string {
	var s sdk.Schema
	for _, c := range candidates {
		s.Options = append(s.Options, sdk.OptionSpec{Name: c})
	}
	for _, p := range s.Problems(sdk.Options{{Name: name, Flag: true}}, nil) {
		if p.Kind == sdk.ProblemUnknown {
			return p.Suggestion
		}
	}
	return ""
}

// parseDuration reads a duration as a plugin's TypeDuration option is read ("10s", "5min",
// "1h30m"; a bare number counts unit, seconds when unit is 0), so that pgimaged's settings and
// plugins' options take the same durations.
func parseDuration(s string, unit time.Duration) (time.Duration, error) {
	spec := sdk.OptionSpec{Name: "duration", Type: sdk.TypeDuration, DurationUnit: unit}
	v, diags := sdk.Schema{Options: []sdk.OptionSpec{spec}}.Decode(sdk.Options{{Name: spec.Name, Value: s}})
	if err := sdk.CheckDiagnostics(diags); err != nil {
		return 0, err
	}
	return v.Duration(spec.Name), nil
}
