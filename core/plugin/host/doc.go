// Package host is pgimaged's side of the plugin protocol: launching glue for hashicorp/go-plugin
// ([GRPCPlugin], [Handshake]), the client of a running plugin ([Client], the one sdk/plugintest
// checks plugins against) and the certificates of mutual TLS ([NewCertificate]). Its package
// proc reads processes from /proc, to follow and end what a plugin started.
package host
