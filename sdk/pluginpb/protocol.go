package pluginpb

import "google.golang.org/grpc/codes"

// The go-plugin handshake between pgimaged and a plugin: the magic cookie pgimaged sets in the
// plugin's environment, and the name the Method service is dispensed under. The protocol version
// is the one of this package's .proto (2), negotiated through go-plugin's VersionedPlugins.
const (
	MagicCookieKey   = "PGIMAGED_PLUGIN"
	MagicCookieValue = "replica-imaging"
	ServiceName      = "method"
)

// TLSEnv is the variable in which pgimaged hands the plugin a certificate and its key (PEM) to
// serve with; PLUGIN_CLIENT_CERT holds pgimaged's own, as with go-plugin's automatic mutual TLS.
const TLSEnv = "PGIMAGED_PLUGIN_TLS"

// The gRPC codes a call ends with that pgimaged tells apart. Any other failure is
// codes.Internal; a call cancelled or past its deadline is codes.Canceled or
// codes.DeadlineExceeded.
const (
	// CodeNoSource: the method needs a running source and the connection string is empty.
	CodeNoSource = codes.FailedPrecondition
	// CodeInvalidOptions: the options were refused when the call ran.
	CodeInvalidOptions = codes.InvalidArgument
	// CodeNotSupported: the plugin does not implement the call.
	CodeNotSupported = codes.Unimplemented
	// CodeMethodFailed: the method ran and failed.
	CodeMethodFailed = codes.Aborted
)
