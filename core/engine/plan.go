package engine

import (
	"context"

	"github.com/pgimaged/pgimaged/core/config"
	"github.com/pgimaged/pgimaged/core/dcs"
	"github.com/pgimaged/pgimaged/sdk"
)

// Plan is what this node would do now, and why.
type Plan struct {
	Path    string `json:"path"` // adopt, fence, bootstrap, clone, wait, refuse or reinit
	Reason  string `json:"reason"`
	DataDir string `json:"data_dir"`
	// ServerLog is where PostgreSQL's output goes ([Node.ServerLogFile]).
	ServerLog string `json:"server_log"`
	Source    string `json:"source,omitempty"`
	// SourceWhy says which rule of [ChooseSource] picked Source.
	SourceWhy string `json:"source_why,omitempty"`
	// Reinit is the operator's pending reinit request the decision carries out or refuses.
	Reinit           *ReinitRequest  `json:"reinit,omitempty"`
	SystemIdentifier string          `json:"system_identifier,omitempty"`
	Methods          []PlannedMethod `json:"methods,omitempty"`
	// StandbyCluster says how the DCS's record of a standby cluster stands to this
	// configuration's standby_cluster block ([StandbyNote]): the block ignored once the
	// cluster was promoted, or the DCS's block used.
	StandbyCluster string `json:"standby_cluster,omitempty"`
}

// PlannedMethod is one method of the plan with the exact commands it would run (secrets masked)
// or the reason it would be skipped.
type PlannedMethod struct {
	Method   string        `json:"method"`
	Plugin   string        `json:"plugin,omitempty"`
	Skipped  string        `json:"skipped,omitempty"`
	Attempts int           `json:"attempts,omitempty"`
	KeepData bool          `json:"keep_data,omitempty"`
	WalDir   string        `json:"wal_dir,omitempty"` // the separate WAL directory, if any
	Commands []sdk.Command `json:"commands,omitempty"`
	Notes    []string      `json:"notes,omitempty"`
	Error    string        `json:"error,omitempty"`
}

// Plan works out what this node would do given the DCS state cl (nil with dcsErr when the DCS
// cannot be read), asking each plugin for the commands it would run. The decision is
// [Decide]'s, fed by [Node.Observe], exactly as `pgimaged run` makes it.
func (n *Node) Plan(ctx context.Context, cl *dcs.Cluster, dcsErr error) Plan {
	return n.PlanReinit(ctx, cl, dcsErr, nil)
}

// PlanReinit is [Node.Plan] with req, the member's pending reinit request read from the DCS
// (nil: none), as the agent's next cycle sees it.
func (n *Node) PlanReinit(ctx context.Context, cl *dcs.Cluster, dcsErr error, req *ReinitRequest) Plan {
	p := Plan{DataDir: n.Config.DataDir, ServerLog: n.ServerLogFile(), Reinit: req}
	obs := n.Observe(ctx, cl, dcsErr)
	obs.ReinitRequested = req
	act := Decide(obs)
	var pre string
	if act.Kind == ActClean {
		// What run does after emptying its own half-made directory.
		pre = act.Reason
		obs.DataDir, obs.PostgreSQL = DirEmpty, PGStopped
		act = Decide(obs)
	}
	p.Path, p.Reason, p.SystemIdentifier = string(act.Kind), act.Reason, act.SystemIdentifier
	if pre != "" {
		p.Reason += "; first, " + pre
	}
	if act.ReinitRefused != "" {
		p.Reason += "; the pending reinit is refused: " + act.ReinitRefused
	}
	switch act.Kind {
	case ActWait:
		switch {
		case obs.DataDir == DirEmpty && cl == nil:
			p.Methods = append(n.planBootstrap(ctx), n.planClone(ctx, nil, nil)...)
		case obs.DataDir == DirEmpty && act.State == StateWaitingSource:
			p.Source = (*Source)(nil).Describe()
			p.Methods = n.planClone(ctx, nil, nil)
		}
	case ActBootstrap:
		if act.StandbyLeader {
			n.planStandbyLeader(ctx, &p) // standby_leader.go
			break
		}
		p.Methods = n.planBootstrap(ctx)
	case ActClone, ActReclone:
		choice := ChooseSource(n.Config.Name, *cl)
		src := CloneSource(n, *cl)
		p.Source, p.SourceWhy = src.Describe(), choice.Why
		var methods []string
		if act.Kind == ActReclone {
			methods = req.Methods
		}
		p.Methods = n.planClone(ctx, src, methods)
	case ActAdopt:
		if act.Rejoin && cl != nil {
			p.Source = leaderSource(n, *cl).Describe()
		}
	}
	return p
}

// PlanOneShotClone is what `pgimaged clone` would do from src (nil: no source) into this
// node's data directory: the replica methods in order, each with the commands its plugin would
// run, or the refusal the data directory earns. The DCS plays no part in a one-shot clone.
func (n *Node) PlanOneShotClone(ctx context.Context, src *Source) Plan {
	p := Plan{DataDir: n.Config.DataDir, ServerLog: n.ServerLogFile(), Source: src.Describe(), Path: string(ActClone),
		Reason: "pgimaged clone makes a replica from the source given, whatever the DCS holds"}
	if src == nil {
		p.Reason = "pgimaged clone without a source runs only the methods that need none (no_master)"
	}
	if _, err := n.checkDataDir(); err != nil {
		p.Path, p.Reason = string(ActRefuse), err.Error()
		return p
	}
	p.Methods = n.planClone(ctx, src, nil)
	return p
}

func (n *Node) planBootstrap(ctx context.Context) []PlannedMethod {
	m := n.bootstrapMethod()
	pm := PlannedMethod{Method: m.Label, Plugin: config.PluginNameFor(m, n.plugins().Has)}
	n.planWalDir(&pm, m)
	n.planCommand(&pm, m)
	if pm.Plugin == "" {
		pm.Error = "no plugin runs this method"
		return []PlannedMethod{pm}
	}
	inst, err := n.plugins().Launch(ctx, pm.Plugin)
	if err != nil {
		pm.Error = err.Error()
		return []PlannedMethod{pm}
	}
	defer inst.Kill()
	req := n.bootstrapRequest(m)
	req.Options = m.Options
	plan, err := inst.PlanBootstrap(ctx, req)
	n.fillPlan(&pm, plan, err)
	return []PlannedMethod{pm}
}

// planClone is the chain for methods (nil: the configured one) from src, each runnable step
// with the commands its plugin would run.
func (n *Node) planClone(ctx context.Context, src *Source, methods []string) []PlannedMethod {
	return n.planChain(ctx, src, n.chainInput(methods, src != nil))
}

// planChain is planClone for the chain in.
func (n *Node) planChain(ctx context.Context, src *Source, in ChainInput) []PlannedMethod {
	var out []PlannedMethod
	connstring := ""
	env := n.plannedEnv(src)
	if src != nil {
		connstring = src.Conn.DSN()
	}
	for _, st := range PlanChain(in) {
		m := st.Method
		pm := PlannedMethod{Method: st.Label, Plugin: st.Plugin, KeepData: m.KeepData, Attempts: st.Attempts, Skipped: st.Skipped}
		n.planWalDir(&pm, m)
		n.planCommand(&pm, m)
		if pm.Skipped != "" {
			out = append(out, pm)
			continue
		}
		inst, err := n.plugins().Launch(ctx, pm.Plugin)
		if err != nil {
			pm.Error = err.Error()
			out = append(out, pm)
			continue
		}
		plan, err := inst.PlanClone(ctx, sdk.CloneRequest{
			Method: st.Label, Command: config.CommandFor(m, pm.Plugin), NoParams: m.NoParams, Options: n.plannedSlotOptions(pm.Plugin, m.Options, src), // cloneslot.go
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
