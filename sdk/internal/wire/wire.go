// Package wire holds what the sdk package (the plugin side) and the sdk/host package (the host
// side) share without exporting it to plugins.
package wire

import (
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc/codes"

	"github.com/pgimaged/pgimaged/sdk/internal/pluginpb"
)

// Handshake is the go-plugin handshake between pgimaged and its plugins.
var Handshake = plugin.HandshakeConfig{
	MagicCookieKey:   "PGIMAGED_PLUGIN",
	MagicCookieValue: "replica-imaging",
}

// PluginName is the name the method service is dispensed under.
const PluginName = "method"

// PluginTLSEnv carries the plugin's certificate and key (PEM) from pgimaged to the plugin.
const PluginTLSEnv = "PGIMAGED_PLUGIN_TLS"

// NewServer returns the gRPC method service serving impl (an sdk.Plugin). The sdk package sets
// it when it is initialised; sdk/host imports sdk, so it is set before host uses it.
var NewServer func(impl any, logger hclog.Logger) pluginpb.MethodServer

// ErrorCode pairs an error a call may end with, that pgimaged tells apart, with the gRPC code it
// travels under.
type ErrorCode struct {
	Err  error
	Code codes.Code
}

// ErrorCodes is what the plugin's error becomes on the wire: the code of the first whose error it
// matches (codes.Internal when none does); the host maps the code back. The sdk package sets it when it is initialised, as NewServer.
var ErrorCodes []ErrorCode
