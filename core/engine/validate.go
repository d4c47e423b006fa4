package engine

import (
	"context"
	"fmt"

	"github.com/hashicorp/hcl/v2"

	"github.com/pgimaged/pgimaged/core/config"
	"github.com/pgimaged/pgimaged/core/plugin"
	"github.com/pgimaged/pgimaged/sdk"
)

// methodUse is a method the configuration will run on one of the two paths.
type methodUse struct {
	method *config.Method
	path   sdk.Path
	ref    string // where the configuration names it, for diagnostics
}

// bootstrapMethod returns the bootstrap method with initdb's options (bootstrap.initdb) folded
// in, so that diagnostics about them point at their place.
func (n *Node) bootstrapMethod() *config.Method {
	m := n.Config.Method(n.BootstrapMethod())
	if m.Label != config.DefaultBootstrap || len(n.Config.Bootstrap.Initdb) == 0 {
		return m
	}
	cp := *m
	cp.Options = append(append(sdk.Options{}, n.Config.Bootstrap.Initdb...), m.Options...)
	cp.OptionRanges = append(append([]hcl.Range{}, n.Config.Bootstrap.InitdbRanges...), m.OptionRanges...)
	cp.OptionHidden = append(append([]bool{}, n.Config.Bootstrap.InitdbHidden...), m.OptionHidden...)
	if _, ok := n.Config.Methods[m.Label]; !ok {
		cp.DefRange = n.Config.RangeOf("bootstrap.initdb")
	}
	return &cp
}

func (n *Node) methodUses(paths ...sdk.Path) []methodUse {
	want := func(p sdk.Path) bool {
		if len(paths) == 0 {
			return true
		}
		for _, q := range paths {
			if q == p {
				return true
			}
		}
		return false
	}
	var uses []methodUse
	if want(sdk.PathBootstrap) {
		uses = append(uses, methodUse{method: n.bootstrapMethod(), path: sdk.PathBootstrap, ref: "bootstrap.method"})
	}
	if !want(sdk.PathClone) {
		return uses
	}
	for i, label := range n.ReplicaMethods() {
		uses = append(uses, methodUse{method: n.Config.Method(label), path: sdk.PathClone, ref: fmt.Sprintf("postgresql.create_replica_methods[%d]", i)})
	}
	return uses
}

func (n *Node) subject(m *config.Method, ref string) *hcl.Range {
	r := m.DefRange
	if _, ok := n.Config.Methods[m.Label]; !ok || r.Filename == "" {
		r = n.Config.RangeOf(ref)
	}
	return &r
}

// Validate checks the configuration against the plugins that will run it: every method has a
// plugin with the right capability, its options agree with the plugin's option schema, and the
// plugin's own Validate (checks across options) accepts them. Problems are
// diagnostics pointing at the configuration. With paths, only the methods of those paths are
// checked (a one-shot clone needs no bootstrap method); without, all of them.
func (n *Node) Validate(ctx context.Context, paths ...sdk.Path) hcl.Diagnostics {
	var diags hcl.Diagnostics
	if n.Catalog.Dir != "" {
		if err := plugin.CheckDir(n.Catalog.Dir); err != nil {
			r := n.Config.RangeOf("plugin_dir")
			return append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Unusable plugin directory", Detail: err.Error(), Subject: &r})
		}
	}
	instances := map[string]*plugin.Instance{}
	failed := map[string]error{}
	defer func() {
		for _, inst := range instances {
			inst.Kill()
		}
	}()
	for _, u := range n.methodUses(paths...) {
		m := u.method
		name := config.PluginNameFor(m, n.Catalog.Has)
		if name == "" {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "No plugin for method",
				Detail:  fmt.Sprintf("Method %q has no command and no plugin called %q is installed in %s. Give it a command (the script plugin runs it) or plugin = \"<name>\".", m.Label, m.Label, n.Catalog.Dir),
				Subject: n.subject(m, u.ref),
			})
			continue
		}
		if err, ok := failed[name]; ok {
			_ = err
			continue
		}
		inst, ok := instances[name]
		if !ok {
			var err error
			inst, err = n.Catalog.Launch(ctx, name)
			if err != nil {
				failed[name] = err
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError, Summary: "Plugin cannot be started",
					Detail:  fmt.Sprintf("Method %q needs plugin %q: %v", m.Label, name, err),
					Subject: n.subject(m, u.ref),
				})
				continue
			}
			instances[name] = inst
		}
		want := sdk.CapClone
		if u.path == sdk.PathBootstrap {
			want = sdk.CapBootstrap
		}
		if !inst.Info.Can(want) {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Plugin cannot do this",
				Detail:  fmt.Sprintf("Method %q is used to %s, but plugin %q can only: %v.", m.Label, map[sdk.Path]string{sdk.PathBootstrap: "bootstrap a cluster", sdk.PathClone: "clone replicas"}[u.path], name, inst.Info.Capabilities),
				Subject: n.subject(m, u.ref),
			})
			continue
		}
		diags = append(diags, m.CheckOptions(inst.Info.Schema, name)...)
		resp, err := inst.Client.Validate(ctx, sdk.ValidateRequest{Method: m.Label, Path: u.path, Command: m.Command, NoParams: m.NoParams, Options: m.Options})
		if err != nil {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError, Summary: "Plugin validation failed",
				Detail: fmt.Sprintf("Plugin %q could not check method %q: %v", name, m.Label, inst.Failure(err)), Subject: n.subject(m, u.ref),
			})
			continue
		}
		for _, d := range resp.Diagnostics {
			sev := hcl.DiagError
			if d.Severity == sdk.SeverityWarning {
				sev = hcl.DiagWarning
			}
			detail := d.Detail
			if detail == "" {
				detail = d.Summary
			}
			diag := m.OptionDiagnostic(d.Option, sev, d.Summary, fmt.Sprintf("Method %q (plugin %s): %s", m.Label, name, detail))
			if d.Option == "" || diag.Subject == nil || diag.Subject.Filename == "" {
				diag.Subject = n.subject(m, u.ref)
			}
			diags = append(diags, diag)
		}
	}
	return diags
}
