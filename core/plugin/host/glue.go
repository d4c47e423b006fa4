package host

import (
	"context"
	"errors"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/pgimaged/pgimaged/sdk"
	"github.com/pgimaged/pgimaged/sdk/pluginpb"
	"github.com/pgimaged/pgimaged/sdk/plugintest"
)

// ProtocolVersion is the version of the plugin protocol the host speaks.
const ProtocolVersion = sdk.ProtocolVersion

// PluginName is the name the method service is dispensed under.
const PluginName = pluginpb.ServiceName

// Handshake is the go-plugin handshake between pgimaged and its plugins. The protocol version is
// negotiated through VersionedPlugins; a plugin and host without a common version refuse each other.
var Handshake = plugin.HandshakeConfig{MagicCookieKey: pluginpb.MagicCookieKey, MagicCookieValue: pluginpb.MagicCookieValue}

// Client is the host's handle on a running plugin, reached over gRPC: the client that
// sdk/plugintest checks plugins against. It implements every interface a plugin may implement;
// calls the plugin does not serve fail with [sdk.ErrNotSupported].
type Client = plugintest.Client

// GRPCPlugin is go-plugin's glue for the method service on the host side: it gets a [Client].
type GRPCPlugin struct {
	plugin.NetRPCUnsupportedPlugin
}

// GRPCServer is the plugin side, which the host never is.
func (GRPCPlugin) GRPCServer(*plugin.GRPCBroker, *grpc.Server) error {
	return errors.New("pgimaged does not serve the method service")
}

// GRPCClient returns the host's view of the plugin.
func (GRPCPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (interface{}, error) {
	return plugintest.NewClient(c), nil
}
