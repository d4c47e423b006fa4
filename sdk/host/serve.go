package host

import (
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/pgimaged/pgimaged/sdk"
)

// ServeConfig adjusts [Serve].
type ServeConfig struct {
	// Logger for go-plugin's and the plugin's own lines; default: hclog's default logger.
	Logger hclog.Logger
	// Test, when set, serves in-process for tests (see go-plugin's ServeTestConfig).
	Test *plugin.ServeTestConfig
	// ProtocolVersion to serve; default [ProtocolVersion]. Another makes a plugin pgimaged must
	// refuse, for tests of the handshake.
	ProtocolVersion int
}

// Serve serves p the way go-plugin does by default, for tests and protocol experiments. Unlike
// sdk.Serve it does not make the process a subreaper nor use the certificate pgimaged hands out
// (go-plugin's automatic mutual TLS still applies). Plugins call sdk.Serve.
func Serve(p sdk.Plugin, cfg ServeConfig) {
	v := cfg.ProtocolVersion
	if v == 0 {
		v = ProtocolVersion
	}
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  Handshake,
		VersionedPlugins: map[int]plugin.PluginSet{v: {PluginName: &GRPCPlugin{Impl: p, Logger: cfg.Logger}}},
		GRPCServer:       plugin.DefaultGRPCServer,
		Logger:           cfg.Logger,
		Test:             cfg.Test,
	})
}
