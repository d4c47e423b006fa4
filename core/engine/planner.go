package engine

import (
	"context"
	"time"

	"github.com/pgimaged/pgimaged/core/config"
)

// ChainStep is one replica method of a chain as [PlanChain] orders it: what runs, how often
// and how far apart, or why it is skipped.
type ChainStep struct {
	Label string
	// Method is the method's configuration (a bare label when it has none).
	Method *config.Method
	// Plugin is the plugin that runs it, "" when none does.
	Plugin string
	// Attempts is how often it is tried in one pass; Wait the pause between two attempts.
	Attempts int
	Wait     time.Duration
	// Skipped says why the method does not run; "" when it does.
	Skipped string
}

// ChainInput is what a chain depends on.
type ChainInput struct {
	Config *config.Config
	// Methods are the labels to try in order; empty: postgresql.create_replica_methods (or
	// ["basebackup"]). A reinit passes the methods its request names.
	Methods []string
	// HasPlugin reports whether a plugin of that name is installed.
	HasPlugin func(name string) bool
	// HasSource: a running member can be cloned from; without one only no_master methods run.
	HasSource bool
	// WorksWithoutSource, when set, reports whether the plugin called name restores without a
	// source (pgBackRest's and WAL-E's do): without a source its methods run too. It is set
	// for the leader of a standby cluster that follows an archive alone (see [StandbyKeeps]).
	WorksWithoutSource func(name string) bool
}

// Skip reasons of [PlanChain].
const (
	skipNoPlugin = "no plugin: the method has no command and no plugin of that name is installed"
	skipNoSource = "no running source to clone from and the method does not set no_master"
)

// PlanChain is the one chain planner: the replica methods in the order they are tried, each
// with its plugin, attempts and wait, or the reason it is skipped. It reads nothing but in;
// `pgimaged run` and `pgimaged reinit` run its steps (see [Node.cloneChain]) and `pgimaged
// plan` prints them.
func PlanChain(in ChainInput) []ChainStep {
	labels := in.Methods
	if len(labels) == 0 {
		labels = replicaMethods(in.Config)
	}
	out := make([]ChainStep, 0, len(labels))
	for _, label := range labels {
		m := in.Config.Method(label)
		st := ChainStep{Label: label, Method: m, Plugin: config.PluginNameFor(m, in.HasPlugin), Attempts: m.Attempts, Wait: m.RetryWait}
		if st.Attempts <= 0 {
			st.Attempts = defaultAttempts(st.Plugin)
		}
		if st.Wait <= 0 {
			st.Wait = defaultRetryWait
		}
		switch {
		case st.Plugin == "":
			st.Skipped = skipNoPlugin
		case !in.HasSource && !m.NoMaster && (in.WorksWithoutSource == nil || !in.WorksWithoutSource(st.Plugin)):
			st.Skipped = skipNoSource
		}
		out = append(out, st)
	}
	return out
}

// Runnable reports whether at least one step of the chain runs.
func Runnable(steps []ChainStep) bool {
	for _, st := range steps {
		if st.Skipped == "" {
			return true
		}
	}
	return false
}

// chainInput is this node's chain for methods (nil: the configured ones), with or without a
// source.
func (n *Node) chainInput(methods []string, hasSource bool) ChainInput {
	return ChainInput{Config: n.Config, Methods: methods, HasPlugin: n.plugins().Has, HasSource: hasSource}
}

// standbyChainInput is the chain that makes the leader of this standby cluster:
// standby_cluster's create_replica_methods; with no host, a method whose plugin restores
// without a source runs too.
func (n *Node) standbyChainInput(hasSource bool) ChainInput {
	sc := n.standbyBlock()
	in := n.chainInput(sc.CreateReplicaMethods, hasSource)
	if sc.Host == "" {
		in.WorksWithoutSource = n.worksWithoutSource
	}
	return in
}

// worksWithoutSource asks the plugin called name whether it restores without a source: what
// it says of itself when it starts. false when it cannot be started.
func (n *Node) worksWithoutSource(name string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	inst, err := n.plugins().Launch(ctx, name)
	if err != nil {
		return false
	}
	defer inst.Kill()
	return inst.Info().WorksWithoutSource
}

// replicaMethods is postgresql.create_replica_methods (its default set by
// [config.Config.ApplyDefaults]).
func replicaMethods(cfg *config.Config) []string { return cfg.PostgreSQL.CreateReplicaMethods }
