package engine

import (
	"context"
	"fmt"

	"github.com/pgimaged/pgimaged/core/config"
	"github.com/pgimaged/pgimaged/core/dcs"
	"github.com/pgimaged/pgimaged/core/pg"
	"github.com/pgimaged/pgimaged/sdk"
)

// Plan is what this node would do now, and why.
type Plan struct {
	Path             string          `json:"path"` // adopt, bootstrap, clone or wait
	Reason           string          `json:"reason"`
	DataDir          string          `json:"data_dir"`
	Source           string          `json:"source,omitempty"`
	SystemIdentifier string          `json:"system_identifier,omitempty"`
	Methods          []PlannedMethod `json:"methods,omitempty"`
}

// PlannedMethod is one method of the plan with the exact commands it would run (secrets masked)
// or the reason it would be skipped.
type PlannedMethod struct {
	Method   string        `json:"method"`
	Plugin   string        `json:"plugin,omitempty"`
	Skipped  string        `json:"skipped,omitempty"`
	Attempts int           `json:"attempts,omitempty"`
	KeepData bool          `json:"keep_data,omitempty"`
	Commands []sdk.Command `json:"commands,omitempty"`
	Notes    []string      `json:"notes,omitempty"`
	Error    string        `json:"error,omitempty"`
}

// Plan works out what this node would do given the DCS state cl (nil with dcsErr when the DCS
// cannot be read), asking each plugin for the commands it would run.
func (n *Node) Plan(ctx context.Context, cl *dcs.Cluster, dcsErr error) Plan {
	p := Plan{DataDir: n.Config.DataDir}
	dir := n.Config.DataDir
	switch {
	case pg.HasCluster(dir) && !n.Incomplete():
		p.Path = "adopt"
		p.Reason = "the data directory already holds a cluster; it is started as it is, never overwritten"
		if id, err := pg.SystemIdentifier(dir); err == nil {
			p.SystemIdentifier = fmt.Sprint(id)
			if cl != nil && cl.SystemIdentifier() != "" && cl.SystemIdentifier() != p.SystemIdentifier {
				p.Path = "refuse"
				p.Reason = fmt.Sprintf("the data directory holds system identifier %s but the DCS records %s: pgimaged will not touch it", p.SystemIdentifier, cl.SystemIdentifier())
			}
		}
		return p
	case cl == nil:
		p.Path = "wait"
		p.Reason = fmt.Sprintf("the DCS cannot be read (%v): the node waits; nothing is bootstrapped until it holds initialize", dcsErr)
		p.Methods = append(n.planBootstrap(ctx), n.planClone(ctx, nil)...)
		return p
	case cl.Initialize == nil:
		p.Path = "bootstrap"
		p.Reason = "no initialize key: this node races for it and bootstraps if it wins"
		if n.Incomplete() {
			p.Reason += "; the half-made data directory a previous attempt left is removed first"
		}
		p.Methods = n.planBootstrap(ctx)
	case cl.Bootstrapping():
		p.Path = "wait"
		p.Reason = "another member holds initialize and is bootstrapping"
	default:
		p.SystemIdentifier = cl.SystemIdentifier()
		src := CloneSource(n, *cl)
		p.Source = src.Describe()
		p.Path = "clone"
		p.Reason = "the cluster exists (initialize holds its system identifier): this node clones a replica"
		if src == nil && !n.anyNoMaster() {
			p.Path = "wait"
			p.Reason = "no running member to clone from and no replica method sets no_master"
		}
		p.Methods = n.planClone(ctx, src)
	}
	return p
}

func (n *Node) planBootstrap(ctx context.Context) []PlannedMethod {
	m := n.bootstrapMethod()
	pm := PlannedMethod{Method: m.Label, Plugin: config.PluginNameFor(m, n.Catalog.Has)}
	if pm.Plugin == "" {
		pm.Error = "no plugin runs this method"
		return []PlannedMethod{pm}
	}
	inst, err := n.Catalog.Launch(ctx, pm.Plugin)
	if err != nil {
		pm.Error = err.Error()
		return []PlannedMethod{pm}
	}
	defer inst.Kill()
	req := n.bootstrapRequest(m)
	req.Options = m.Options
	plan, err := inst.Client.PlanBootstrap(ctx, req)
	n.fillPlan(&pm, plan, err)
	return []PlannedMethod{pm}
}

func (n *Node) planClone(ctx context.Context, src *Source) []PlannedMethod {
	var out []PlannedMethod
	connstring := ""
	env := map[string]string{}
	if src != nil {
		connstring = src.Conn.DSN()
		if src.Password != "" {
			env["PGPASSFILE"] = n.PgpassPath()
		}
	}
	for _, label := range n.ReplicaMethods() {
		m := n.Config.Method(label)
		pm := PlannedMethod{Method: label, Plugin: config.PluginNameFor(m, n.Catalog.Has), KeepData: m.KeepData, Attempts: m.Attempts}
		if pm.Attempts <= 0 {
			pm.Attempts = defaultAttempts(pm.Plugin)
		}
		switch {
		case pm.Plugin == "":
			pm.Skipped = "no plugin: the method has no command and no plugin of that name is installed"
		case src == nil && !m.NoMaster:
			pm.Skipped = "no running source to clone from and the method does not set no_master"
		}
		if pm.Skipped != "" {
			out = append(out, pm)
			continue
		}
		inst, err := n.Catalog.Launch(ctx, pm.Plugin)
		if err != nil {
			pm.Error = err.Error()
			out = append(out, pm)
			continue
		}
		plan, err := inst.Client.PlanClone(ctx, sdk.CloneRequest{
			Method: label, Command: m.Command, NoParams: m.NoParams, Options: m.Options,
			Cluster: n.cluster(), ConnString: connstring, Env: env,
		})
		inst.Kill()
		n.fillPlan(&pm, plan, err)
		out = append(out, pm)
	}
	return out
}

func (n *Node) fillPlan(pm *PlannedMethod, plan sdk.Plan, err error) {
	if err != nil {
		pm.Error = n.secrets().Mask(err.Error())
		return
	}
	mask := n.secrets()
	for _, c := range plan.Commands {
		env := map[string]string{}
		for k, v := range c.Env {
			env[k] = mask.Mask(v)
		}
		pm.Commands = append(pm.Commands, sdk.Command{Argv: mask.MaskArgv(c.Argv), Env: env})
	}
	for _, note := range plan.Notes {
		pm.Notes = append(pm.Notes, mask.Mask(note))
	}
}
