// Package pluginpb is the plugin protocol as Go code: the messages and the Method service
// generated from proto/pgimaged/plugin/v2/plugin.proto (`make proto` regenerates them), and the
// handshake values and error codes that the .proto states in words ([MagicCookieKey],
// [ServiceName], [TLSEnv], [CodeNoSource], …).
//
// A Go plugin needs none of it: package sdk serves this service
// ([github.com/pgimaged/pgimaged/sdk.Serve], [github.com/pgimaged/pgimaged/sdk.NewServer]).
// It is exported for what speaks the protocol without package sdk: a host, or a tool that
// talks to a plugin directly.
package pluginpb
