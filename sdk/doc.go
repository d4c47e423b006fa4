// Package sdk is the contract between pgimaged and its method plugins. It is everything a
// vendor imports to ship a bootstrap or replica method: pgimaged's engine (core/) is never needed.
//
// # What a plugin is
//
// A plugin is an executable named pgimaged-plugin-<name> in pgimaged's plugin_dir. Its main
// calls [Serve] with a value implementing [Plugin]; pgimaged starts it with hashicorp/go-plugin
// over gRPC (protocol version [ProtocolVersion], mutual TLS), asks it to [Plugin.Describe] itself,
// and calls it for every method block that names it. The wire protocol is in
// proto/pgimaged/plugin/v2/plugin.proto, so plugins can be written in other languages too.
//
// The module github.com/pgimaged/pgimaged/sdk is versioned on its own (v0 until it settles).
// It requires, as its go.mod says, github.com/agext/levenshtein, github.com/hashicorp/go-hclog,
// github.com/hashicorp/go-plugin, golang.org/x/sys, google.golang.org/grpc and
// google.golang.org/protobuf (and what they require), and nothing of pgimaged's engine. Its README is the plugin
// author's guide: lifecycle, what a Result means for a clone and a bootstrap, which errors move
// on to the next method, progress, the option schema and what plugintest checks. Besides this
// package, a plugin may import [github.com/pgimaged/pgimaged/sdk/plugintest] (the conformance
// kit), [github.com/pgimaged/pgimaged/sdk/libpq] (connection strings and the server version, read
// as pgimaged reads them), [github.com/pgimaged/pgimaged/sdk/syncfs] (syncing what a program
// copied without its own sync) and [github.com/pgimaged/pgimaged/sdk/pluginpb] (the protocol as
// Go code, which [Serve] already speaks). pgimaged's own side of the protocol is not in this
// module.
//
// # What you must implement
//
//   - [Plugin]: Describe, returning the plugin's name and version, whether it can clone
//     without a running source (WorksWithoutSource, for backup-repository methods), and the
//     [Schema] of its options: pgimaged checks every method block against it before anything
//     runs, and [Serve] hands each call the options decoded against it ([Values]).
//
// # What you may implement
//
//   - [Cloner]: make a replica in an empty data directory. The request carries a connection
//     string to the source without a password; PGPASSFILE in the request's Env names a pgpass
//     file with the credentials. Return [ErrNoSource] when you need a source and have none.
//   - [Bootstrapper]: create a new cluster in an empty data directory.
//   - [Validator]: checks across options that the schema cannot express, before anything runs,
//     so that `pgimaged validate` reports them at the configuration's file:line:col. Name the
//     option in [Diagnostic.Option].
//   - [ClonePlanner], [BootstrapPlanner]: say which commands a call would run, for `pgimaged plan`.
//
// Capabilities are discovered from the interfaces a plugin implements; pgimaged never adds a
// method to an interface once published, it adds an optional interface instead.
//
// # What pgimaged does, so plugins need not
//
// pgimaged owns the data directory: it creates it, empties it before a method runs (unless the
// method sets keep_data) and after a failed method, writes recovery and standby settings, starts
// PostgreSQL and checks the result. A plugin only fills the directory and returns a [Result],
// optionally with recovery settings for pgimaged to write.
//
// # Running programs
//
// Use [Run] for child processes: it starts them in their own process group, streams their
// output to pgimaged as log lines with secrets masked, kills the whole group when the call is
// cancelled or times out, and returns an [*ExitError] with the last output lines on failure.
// Report progress with [Reporter.Progress] (in a [Unit]: bytes, files or percent); log with
// [Reporter.Log] at a [Level].
//
// A method's processes end with it. [Serve] makes the plugin the child subreaper of what it
// starts, so that a process that leaves its parent (a double fork, setsid) stays in the plugin's
// tree; Run ends what its child left behind; and pgimaged, when a call ends (success, failure,
// timeout, cancellation), kills whatever the plugin still runs besides itself and waits for it,
// and after a cancelled call ends the plugin too. Do not start daemons meant to outlive a call.
//
// Text a plugin sends (log lines, progress phases, errors, results) may hold bytes that are not
// UTF-8, such as a program's output in another encoding: they are sent written as \xNN.
//
// # Testing
//
// Package sdk/plugintest runs a plugin through real gRPC inside `go test` and checks that it
// keeps this contract.
package sdk
