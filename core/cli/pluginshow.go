package cli

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/pgimaged/pgimaged/core/plugin"
	"github.com/pgimaged/pgimaged/sdk"
)

// optionDoc is one option of `pgimaged plugins show -json`. Bounds and defaults are written as a
// configuration writes them ("32kB", "30s").
type optionDoc struct {
	Name        string   `json:"name"`
	Type        string   `json:"type"`
	EnumValues  []string `json:"enum_values,omitempty"`
	Required    bool     `json:"required,omitempty"`
	Default     string   `json:"default,omitempty"`
	Sensitive   bool     `json:"sensitive,omitempty"`
	Description string   `json:"description,omitempty"`
	Aliases     []string `json:"deprecated_aliases,omitempty"`
	Refused     string   `json:"refused,omitempty"`
	Min         string   `json:"min,omitempty"`
	Max         string   `json:"max,omitempty"`
	Flag        bool     `json:"flag,omitempty"`
}

// pluginDoc is what `pgimaged plugins show NAME -json` prints.
type pluginDoc struct {
	Name               string      `json:"name"`
	Version            string      `json:"version"`
	Description        string      `json:"description,omitempty"`
	Capabilities       []string    `json:"capabilities"`
	WorksWithoutSource bool        `json:"works_without_source"`
	Open               bool        `json:"open"`
	Options            []optionDoc `json:"options"`
}

// runPluginsShow is `pgimaged plugins show NAME`: the plugin's option schema as reference
// documentation.
func runPluginsShow(ctx context.Context, e *env, args []string) int {
	c, fs := newCommand(e, "plugins show", "NAME [-config FILE] [-plugin-dir DIR] [-json]", true)
	dir := fs.String("plugin-dir", "", pluginDirUsage)
	var name string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return parseFailure(err)
	}
	switch {
	case name == "" && fs.NArg() == 1:
		name = fs.Arg(0)
	case name == "" || fs.NArg() > 0:
		return e.failf(exitUsage, "usage: pgimaged plugins show NAME [-config FILE] [-plugin-dir DIR] [-json]")
	}
	cfg, pdir, _, code := pluginPlace(e, c.configFile, *dir, "")
	if code != 0 {
		return code
	}
	cat := &plugin.Catalog{Dir: pdir}
	if cfg != nil {
		cat.Pins = pins(cfg)
	}
	inst, err := cat.Launch(ctx, name)
	if err != nil {
		return e.failf(exitFailed, "while starting plugin %q to read its options: %v", name, err)
	}
	info := inst.Info
	inst.Kill()
	doc := describePlugin(info)
	if c.jsonOut {
		writeJSON(e.stdout, doc)
		return exitOK
	}
	writePluginDoc(e.stdout, doc)
	return exitOK
}

func describePlugin(info sdk.Info) pluginDoc {
	doc := pluginDoc{Name: info.Name, Version: info.Version, Description: info.Description,
		WorksWithoutSource: info.WorksWithoutSource, Open: info.Schema.Open, Capabilities: []string{}, Options: []optionDoc{}}
	for _, cp := range info.Capabilities {
		doc.Capabilities = append(doc.Capabilities, string(cp))
	}
	for _, o := range info.Schema.Options {
		od := optionDoc{Name: o.Name, Type: o.Type.String(), EnumValues: o.EnumValues, Required: o.Required, Default: o.Default,
			Sensitive: o.Sensitive, Description: o.Description, Aliases: o.Aliases, Refused: o.Refused, Flag: o.Flag}
		if o.Refused != "" {
			od.Type = ""
		}
		if o.Sensitive && od.Default != "" {
			od.Default = sdk.Mask
		}
		if o.Min != nil {
			od.Min = bound(o, *o.Min)
		}
		if o.Max != nil {
			od.Max = bound(o, *o.Max)
		}
		doc.Options = append(doc.Options, od)
	}
	return doc
}

func bound(o sdk.OptionSpec, n int64) string { return o.FormatBound(n) }

func writePluginDoc(w io.Writer, doc pluginDoc) {
	fmt.Fprintf(w, "%s %s", doc.Name, doc.Version)
	if doc.Description != "" {
		fmt.Fprintf(w, ": %s", doc.Description)
	}
	fmt.Fprintf(w, "\ncan: %s", strings.Join(doc.Capabilities, ", "))
	if doc.WorksWithoutSource {
		fmt.Fprint(w, " (also without a running source, when the method sets no_master)")
	}
	fmt.Fprint(w, "\n\nOPTIONS\n")
	var refused []optionDoc
	shown := 0
	for _, o := range doc.Options {
		if o.Refused != "" {
			refused = append(refused, o)
			continue
		}
		shown++
		fmt.Fprintf(w, "  %s (%s)\n", o.Name, typeLine(o))
		if o.Description != "" {
			fmt.Fprintf(w, "      %s\n", o.Description)
		}
		if len(o.Aliases) > 0 {
			fmt.Fprintf(w, "      deprecated names: %s\n", strings.Join(o.Aliases, ", "))
		}
	}
	if shown == 0 {
		fmt.Fprint(w, "  none\n")
	}
	if doc.Open {
		fmt.Fprint(w, "  any other NAME = VALUE is passed on as --NAME=VALUE (a bare list entry as --NAME)\n")
	}
	if len(refused) > 0 {
		fmt.Fprint(w, "\nREFUSED\n")
		for _, o := range refused {
			names := o.Name
			if len(o.Aliases) > 0 {
				names += ", " + strings.Join(o.Aliases, ", ")
			}
			fmt.Fprintf(w, "  %s: %s\n", names, o.Refused)
		}
	}
}

// typeLine is what follows an option's name: "enum: fast, spread; default spread; required".
func typeLine(o optionDoc) string {
	parts := []string{o.Type}
	if o.Type == "enum" {
		parts[0] = "one of " + strings.Join(o.EnumValues, ", ")
	}
	switch {
	case o.Min != "" && o.Max != "":
		parts = append(parts, o.Min+" to "+o.Max)
	case o.Min != "":
		parts = append(parts, "at least "+o.Min)
	case o.Max != "":
		parts = append(parts, "at most "+o.Max)
	}
	if o.Required {
		parts = append(parts, "required")
	}
	if o.Default != "" {
		parts = append(parts, "default "+strconv.Quote(o.Default))
	}
	if o.Sensitive {
		parts = append(parts, "sensitive")
	}
	return strings.Join(parts, "; ")
}
