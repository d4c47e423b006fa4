package engine

import (
	"context"
	"time"

	"github.com/pgimaged/pgimaged/core/config"
	"github.com/pgimaged/pgimaged/core/plugin"
	"github.com/pgimaged/pgimaged/sdk"
)

// Plugins is how the engine reaches method plugins: find one by name and launch it. The
// installed plugins ([plugin.Catalog]) are one implementation; tests run plugins in-process.
type Plugins interface {
	// Has reports whether a plugin called name can be launched.
	Has(name string) bool
	// Launch starts the plugin called name. The caller must Kill what it returns.
	Launch(ctx context.Context, name string) (PluginInstance, error)
}

// PluginInstance is one launched plugin.
type PluginInstance interface {
	// Info is what the plugin said about itself when it started.
	Info() sdk.Info
	// Clone and Bootstrap run the method; timeout (0: none) bounds the call, and when it
	// passes or ctx ends nothing the method started may remain once they return.
	Clone(ctx context.Context, req sdk.CloneRequest, rep sdk.Reporter, timeout time.Duration) (sdk.Result, error)
	Bootstrap(ctx context.Context, req sdk.BootstrapRequest, rep sdk.Reporter, timeout time.Duration) (sdk.Result, error)
	// PlanClone and PlanBootstrap ask what the method would run, running nothing.
	PlanClone(ctx context.Context, req sdk.CloneRequest) (sdk.Plan, error)
	PlanBootstrap(ctx context.Context, req sdk.BootstrapRequest) (sdk.Plan, error)
	// Kill ends the plugin and what it started.
	Kill()
}

// plugins is Node.Plugins, else the catalog of installed plugins; the requests sent to what it
// launches carry path options made absolute (see [config.Config.ResolvePaths]).
func (n *Node) plugins() Plugins {
	var p Plugins = CatalogPlugins{n.Catalog}
	if n.Plugins != nil {
		p = n.Plugins
	}
	return pathPlugins{p, n.Config}
}

// pathPlugins launches instances whose requests have their path options resolved against the
// configuration file's directory.
type pathPlugins struct {
	Plugins
	cfg *config.Config
}

func (p pathPlugins) Launch(ctx context.Context, name string) (PluginInstance, error) {
	inst, err := p.Plugins.Launch(ctx, name)
	if err != nil || p.cfg == nil {
		return inst, err
	}
	return pathInstance{inst, p.cfg}, nil
}

// pathInstance is a [PluginInstance] whose requests' path options are made absolute.
type pathInstance struct {
	PluginInstance
	cfg *config.Config
}

func (i pathInstance) resolve(opts sdk.Options) sdk.Options {
	return i.cfg.ResolvePaths(i.Info().Schema, opts)
}

func (i pathInstance) Clone(ctx context.Context, req sdk.CloneRequest, rep sdk.Reporter, timeout time.Duration) (sdk.Result, error) {
	req.Options = i.resolve(req.Options)
	return i.PluginInstance.Clone(ctx, req, rep, timeout)
}

func (i pathInstance) Bootstrap(ctx context.Context, req sdk.BootstrapRequest, rep sdk.Reporter, timeout time.Duration) (sdk.Result, error) {
	req.Options = i.resolve(req.Options)
	return i.PluginInstance.Bootstrap(ctx, req, rep, timeout)
}

func (i pathInstance) PlanClone(ctx context.Context, req sdk.CloneRequest) (sdk.Plan, error) {
	req.Options = i.resolve(req.Options)
	return i.PluginInstance.PlanClone(ctx, req)
}

func (i pathInstance) PlanBootstrap(ctx context.Context, req sdk.BootstrapRequest) (sdk.Plan, error) {
	req.Options = i.resolve(req.Options)
	return i.PluginInstance.PlanBootstrap(ctx, req)
}

// CatalogPlugins reaches the installed plugins of a [plugin.Catalog].
type CatalogPlugins struct{ Catalog *plugin.Catalog }

var _ Plugins = CatalogPlugins{}

// Has reports whether the catalog finds a plugin called name.
func (c CatalogPlugins) Has(name string) bool { return c.Catalog != nil && c.Catalog.Has(name) }

// Launch starts the installed plugin called name.
func (c CatalogPlugins) Launch(ctx context.Context, name string) (PluginInstance, error) {
	inst, err := c.Catalog.Launch(ctx, name)
	if err != nil {
		return nil, err
	}
	return catalogInstance{inst}, nil
}

type catalogInstance struct{ *plugin.Instance }

func (i catalogInstance) Info() sdk.Info { return i.Instance.Info }

func (i catalogInstance) PlanClone(ctx context.Context, req sdk.CloneRequest) (sdk.Plan, error) {
	return i.Client.PlanClone(ctx, req)
}

func (i catalogInstance) PlanBootstrap(ctx context.Context, req sdk.BootstrapRequest) (sdk.Plan, error) {
	return i.Client.PlanBootstrap(ctx, req)
}
