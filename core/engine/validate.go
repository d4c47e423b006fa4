package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/hashicorp/hcl/v2"

	"github.com/pgimaged/pgimaged/core/config"
	"github.com/pgimaged/pgimaged/core/pg"
	"github.com/pgimaged/pgimaged/core/plugin"
	"github.com/pgimaged/pgimaged/sdk"
)

// methodUse is a method the configuration will run on one of the two paths.
type methodUse struct {
	method  *config.Method
	path    sdk.Path
	ref     string // where the configuration names it, for diagnostics
	standby bool   // named by standby_cluster: it makes the standby leader from the remote
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
	return append(uses, n.standbyMethodUses()...) // standby.go
}

func (n *Node) subject(m *config.Method, ref string) *hcl.Range {
	r := m.DefRange
	if _, ok := n.Config.Methods[m.Label]; !ok || r.Filename == "" {
		r = n.Config.RangeOf(ref)
	}
	return &r
}

// Validate checks the configuration against the plugins that will run it: every method has a
// plugin with the right capability, its options agree with the plugin's option schema, the
// plugin's own Validate (checks across options) accepts them, and no_master is set only on
// methods whose plugin can work without a source. Problems are diagnostics pointing at the
// configuration. With paths, only the methods of those paths are checked (a one-shot clone needs
// no bootstrap method); without, all of them, and the data directory's place too (see
// [Node.ValidateDataDir]; the one-shot commands check it when they run, refusing with exit
// code 4).
func (n *Node) Validate(ctx context.Context, paths ...sdk.Path) hcl.Diagnostics {
	var diags hcl.Diagnostics
	if len(paths) == 0 {
		diags = append(diags, n.ValidateDataDir()...)
	}
	diags = append(diags, n.validateWalDirs(paths...)...)
	diags = append(diags, n.validateCommands(paths...)...)
	if n.Catalog.Dir != "" {
		if err := plugin.CheckDir(n.Catalog.Dir); err != nil {
			r := n.Config.RangeOf("plugin_dir")
			return append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Unusable plugin directory", Detail: err.Error(), Subject: &r})
		}
	}
	instances := map[string]*plugin.Instance{}
	failed, reported := map[string]error{}, map[string]bool{}
	defer func() { // all at once: each waits for its process to exit
		var wg sync.WaitGroup
		for _, inst := range instances {
			wg.Add(1)
			go func() { defer wg.Done(); inst.Kill() }()
		}
		wg.Wait()
	}()
	diags = append(diags, n.standbyWithoutMethods()...)
	uses := n.methodUses(paths...)
	n.launchAll(ctx, uses, instances, failed)
	for _, u := range uses {
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
			if !reported[name] { // at the first method that needs it
				reported[name] = true
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError, Summary: "Plugin cannot be started",
					Detail:  fmt.Sprintf("Method %q needs plugin %q: %v", m.Label, name, err),
					Subject: n.checksumSubject(err, name, n.subject(m, u.ref)),
				})
			}
			continue
		}
		inst := instances[name]
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
		if u.path == sdk.PathClone && m.NoMaster && !inst.Info.WorksWithoutSource {
			diags = append(diags, n.noMasterDiagnostic(m, name, u.ref))
		}
		if u.standby {
			if d := n.standbyMethodDiagnostic(m, name, inst.Info.WorksWithoutSource, u.ref); d != nil {
				diags = append(diags, d)
				continue
			}
			if slices.Contains(n.ReplicaMethods(), m.Label) {
				continue // its options are checked as postgresql's method
			}
		}
		diags = append(diags, m.CheckOptions(inst.Info.Schema, name)...)
		resp, err := inst.Client.Validate(ctx, sdk.ValidateRequest{Method: m.Label, Path: u.path, Command: config.CommandFor(m, name), NoParams: m.NoParams,
			Options: n.Config.ResolvePaths(inst.Info.Schema, m.Options)})
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
			mask := n.secrets() // what env() and file() read is never shown, whatever the plugin says
			detail, d.Summary = mask.Mask(detail), mask.Mask(d.Summary)
			diag := m.OptionDiagnostic(d.Option, sev, d.Summary, fmt.Sprintf("Method %q (plugin %s): %s", m.Label, name, detail))
			if d.Option == "" || diag.Subject == nil || diag.Subject.Filename == "" {
				diag.Subject = n.subject(m, u.ref)
			}
			diags = append(diags, diag)
		}
	}
	return diags
}

// launchAll starts the plugins of uses at the same time, each once, into instances or, when it
// cannot start, failed: each launch is a process that starts and describes itself, and an agent
// waits for all of them before it does anything.
func (n *Node) launchAll(ctx context.Context, uses []methodUse, instances map[string]*plugin.Instance, failed map[string]error) {
	var names []string
	for _, u := range uses {
		if name := config.PluginNameFor(u.method, n.Catalog.Has); name != "" && !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	insts, errs := make([]*plugin.Instance, len(names)), make([]error, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			insts[i], errs[i] = n.Catalog.Launch(ctx, name)
		}()
	}
	wg.Wait()
	for i, name := range names {
		if errs[i] != nil {
			failed[name] = errs[i]
		} else {
			instances[name] = insts[i]
		}
	}
}

// checksumSubject is where a plugin's checksum mismatch is written: the sha256 of its pin in
// the configuration, or of its entry in the lock file; else def.
func (n *Node) checksumSubject(err error, name string, def *hcl.Range) *hcl.Range {
	var ce *plugin.ChecksumError
	switch {
	case !errors.As(err, &ce):
		return def
	case ce.Lock == "":
		r := n.Config.RangeOf("plugin." + name + ".sha256")
		return &r
	case ce.Range.Filename != "":
		r := ce.Range
		return &r
	}
	return def
}

// noMasterDiagnostic points at a method's no_master (or no_leader) attribute: its plugin cannot
// clone without a running source, so the method would only fail (and be retried) when there
// is none.
func (n *Node) noMasterDiagnostic(m *config.Method, pluginName, ref string) *hcl.Diagnostic {
	subject := n.subject(m, ref)
	for _, key := range []string{"no_master", "no_leader"} {
		if r, ok := m.KeyRanges[key]; ok {
			subject = &r
			break
		}
	}
	return &hcl.Diagnostic{
		Severity: hcl.DiagError, Summary: "Method cannot work without a source",
		Detail: fmt.Sprintf("Method %q sets no_master, but plugin %q needs a running member to copy from: without one it can only fail. "+
			"Remove no_master, or use a method that restores from a backup repository.", m.Label, pluginName),
		Subject: subject,
	}
}

// ValidateDataDir checks where data_dir lies: not inside another cluster's data directory, and
// (unless it is a cluster itself or pgimaged's own marked leftover) with no cluster at any depth
// below it. Diagnostics point at data_dir.
func (n *Node) ValidateDataDir() hcl.Diagnostics {
	dir := n.Config.DataDir
	if dir == "" {
		return nil
	}
	var diags hcl.Diagnostics
	at := func(summary, detail string) {
		r := n.Config.RangeOf("data_dir")
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail, Subject: &r})
	}
	above, err := pg.ClusterAbove(dir)
	if err != nil {
		at("Unusable data directory", err.Error())
		return diags
	}
	if above != "" {
		at("Data directory inside another cluster",
			fmt.Sprintf("data_dir %s lies inside the data directory of the cluster in %s: every base backup of that cluster would copy it, and removing that cluster would remove it. Choose a directory outside it.", dir, above))
		return diags
	}
	if pg.HasCluster(dir) || n.Incomplete() {
		return diags
	}
	below, _, err := pg.ClusterBelow(dir)
	if err == nil && below != "" {
		at("Data directory holds another cluster",
			fmt.Sprintf("data_dir %s holds the PostgreSQL cluster in %s: pgimaged would have to fill a directory with another cluster in it, and refuses to. data_dir must name the cluster's own directory, or an empty or missing one.", dir, below))
	}
	return diags
}
