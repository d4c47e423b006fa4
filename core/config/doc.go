// Package config reads pgimaged's HCL configuration.
//
// gohcl decodes the file into schema structs (decode.go), which define every setting and
// report a missing, unknown or mistyped one at its place. pgimaged then applies its own rules
// once, into [Config]: booleans in PostgreSQL's spellings ([sdk.ParseBool], also 1 and 0),
// positive durations with a unit ("10s"), paths, checks across settings, and the defaults, all
// set in one place, applyDefaults: callers apply none of their own. Every mistake is an
// [hcl.Diagnostic] with a Subject; [Load] and [Parse] return all of them in source order and
// [WriteDiagnostics] prints them with file:line:col and the source line. Input is bounded by
// [MaxConfigSize] and [MaxNesting], checked before the parser runs.
//
// # Settings
//
// Where each setting is defined (schema struct) and defaulted:
//
//	setting                           schema              default
//	scope, name                       fileSchema          required; no '/', spaces or control characters
//	data_dir                          fileSchema          required; not a system directory
//	plugin_dir                        fileSchema          "": plugins/ beside the binary
//	loop_wait, ttl                    fileSchema          DefaultLoopWait, DefaultTTL; ttl > loop_wait
//	tags                              fileSchema          none; a map of any values
//	source                            fileSchema          none; a connection string without a password
//	log_level, log_format, log_file   fileSchema          DefaultLogLevel, text, stderr
//	dcs "file" { path, namespace }    fileDCSSchema       no block: the file DCS at a path the caller picks
//	dcs "etcd" { endpoints, username, password, dial_timeout,
//	             ca_file, cert_file, key_file, namespace }
//	                                  etcdSchema          namespace DefaultNamespace
//	api { listen, connect_address, ca_file, cert_file, key_file, username, password }
//	                                  apiSchema           no block: no API; connect_address = listen
//	postgresql { bin_dir, listen, connect_address, parameters, pg_hba, pg_ctl_timeout,
//	             create_replica_methods }
//	                                  postgresqlSchema    connect_address = listen, DefaultPGCtlTimeout,
//	                                                      [DefaultReplicaMethod] (also when empty)
//	postgresql.authentication { superuser, replication { username, password } }
//	                                  credentialsSchema
//	bootstrap { method, initdb, post_bootstrap, timeout, recovery_timeout }
//	                                  bootstrapSchema     DefaultBootstrap, no timeout, DefaultRecoveryTimeout
//	method "<label>" { ... }          methodSchema        see below
//	plugin "<name>" { path, sha256 }  pluginSchema        path: looked up in plugin_dir
//
// README.md shows a complete configuration. Relative paths (every path setting, file())
// start at the configuration file's directory and are kept absolute; commands are used as
// written. TLS files must be readable when the configuration is loaded, and a certificate
// comes with its key. An etcd endpoint is host:port or an http:// or https:// URL; http:// is
// refused with TLS files or beside https://, since the etcd client would then speak plain text
// to all of them.
//
// # Method blocks and options
//
// The attributes in [ReservedMethodKeys] are pgimaged's (see [Method]); every other attribute
// is an option for the method's plugin, kept in source order with its place ([Method.Options],
// [Method.OptionRanges]) and as an HCL body ([Method.OptionsBody], gohcl's `remain`), so that
// [Method.CheckOptions] and [Method.OptionDiagnostic] point at it. An option's value is a
// string, number or bool (rendered by [RenderValue]), or a list or object of them
// ([sdk.Option] List and Map). Options may also be written as a list, `options = ["verbose",
// { max-rate = "100M" }]`: a string is a flag, an object holds name = value options.
// bootstrap.initdb takes that list form, or a map in which true makes a flag and false leaves
// the option out. parameters and recovery_conf are maps of scalars; a `standby_mode` key in
// recovery_conf asks for standby.signal ([Method.StandbyMode]). create_replica_methods and
// bootstrap.method name a method block or a native method ([ReplicaBuiltins],
// [BootstrapBuiltins]).
//
// # Functions and secrets
//
// env("NAME") is an environment variable (unset is an error, unless a default is given:
// env("NAME", "default")); file("path") is a regular file of UTF-8 text, at most 1 MiB, with
// one trailing newline removed. What they read never appears in a diagnostic, and the types
// holding secrets ([Credentials], [DCS], [API], [Method], [Bootstrap]) mask them when
// formatted with the fmt package.
//
// A source connection string is read by [pg.ParseConnURL]: one with a password is refused, and
// TLS files (sslrootcert, sslcert, sslkey, sslcrl) are passed on from the URL form only; in the
// keyword/value form set PGSSLROOTCERT, PGSSLCERT, PGSSLKEY or PGSSLCRL instead.
package config
