// Package host is pgimaged's side of the plugin protocol: launching glue for hashicorp/go-plugin
// ([GRPCPlugin], [Handshake]), the client of a running plugin ([Client]), errors as they come
// back over gRPC ([RemoteError]) and the certificates of mutual TLS ([NewCertificate]). Its
// package proc reads processes from /proc, for pgimaged and for the SDK's own process tree.
//
// Plugins never need it: they import package sdk only. This package is exported so that
// pgimaged's engine and conformance tooling can use it, and it is OUTSIDE the SDK's
// compatibility promise: it may change in any release, without notice.
package host
