// Package config reads pgimaged's HCL configuration.
//
// gohcl decodes the file into schema structs (decode.go), which define every setting and
// report one that is missing, unknown or mistyped at its place. pgimaged's own rules then run
// once, into [Config]: booleans in PostgreSQL's spellings and 1/0 ([sdk.ParseBool]), positive
// durations with a unit, read as a plugin's [sdk.TypeDuration] option is ("10s", "5min"),
// absolute paths, checks across settings, and every default, set in ApplyDefaults alone. Every mistake is an [hcl.Diagnostic] with a Subject, returned in
// source order by [Load] and [Parse] and printed by [WriteDiagnostics] with file:line:col and
// the source line. Input is bounded by [MaxConfigSize] and [MaxNesting] before the parser runs.
//
// # Settings
//
// Each setting is a field of a schema struct (decode.go); ApplyDefaults sets every default:
//
//	fileSchema        scope, name, data_dir (required); plugin_dir ("": beside the binary);
//	                  loop_wait, ttl (DefaultLoopWait, DefaultTTL; ttl > loop_wait); tags;
//	                  source; log_level (DefaultLogLevel), log_format (text), log_file (stderr);
//	                  maximum_lag_on_failover (DefaultMaximumLagOnFailover, bytes); use_slots
//	                  (true), member_slots_ttl (DefaultMemberSlotsTTL), synchronous_mode,
//	                  synchronous_mode_strict (false), synchronous_node_count (1) (replication.go);
//	                  failsafe_mode (false; needs api credentials)
//	fileDCSSchema     dcs "file" { path, namespace }; no dcs block: the caller picks a path
//	etcdSchema        dcs "etcd" { endpoints, username, password, dial_timeout, ca_file,
//	                  cert_file, key_file, namespace (DefaultNamespace, as for "file") }
//	apiSchema         api { listen, connect_address (listen), ca_file, cert_file, key_file,
//	                  username, password }; no block: no API
//	postgresqlSchema  postgresql { bin_dir, listen, connect_address (listen), parameters,
//	                  pg_hba, pg_ctl_timeout (DefaultPGCtlTimeout), create_replica_methods
//	                  ([DefaultReplicaMethod], also when empty), authentication { superuser,
//	                  replication, rewind (superuser's) { username, password, sslmode,
//	                  sslrootcert, sslcert, sslkey, sslcrl, sslpassword } } } (credentials.go)
//	bootstrapSchema   bootstrap { method (DefaultBootstrap), initdb, post_bootstrap, timeout,
//	                  recovery_timeout (DefaultRecoveryTimeout) }
//	methodSchema      method "<label>" { ... }: see below
//	pluginSchema      plugin "<name>" { path (looked up in plugin_dir), sha256 }
//	standbySchema     standby_cluster { host ("a,b": several), port (5432 or "5432,5433"),
//	                  primary_slot_name, create_replica_methods ([DefaultReplicaMethod]),
//	                  restore_command, archive_cleanup_command, recovery_min_apply_delay
//	                  ("5min", or milliseconds) }: host or restore_command (standby.go)
//
// Relative paths (every path setting, file(), and a method option its plugin's schema types as
// a path, sdk.TypePath: [Config.ResolvePaths]) start at the configuration file's directory;
// a method's command whose program is a relative path starts at the pgimaged program's
// directory ([ProgramDir]), as Patroni's starts at the patroni command's, and a bare program
// name is left for PATH. create_replica_method, the seed's spelling, is read as
// create_replica_methods (with a warning; both is an error). TLS files must be readable when the configuration is loaded,
// and a certificate comes with its key; those of the authentication blocks must be readable by
// the PostgreSQL OS user (pg.Account: when root loads the configuration, data_dir's owner, else postgres), a key 0600 or
// less (0640 owned by root), as libpq demands. An etcd endpoint is host:port or an http:// or https://
// URL; http:// is refused with TLS files or beside https://, since the etcd client would then
// speak plain text to all of them. README.md shows a complete configuration.
//
// # Method blocks and options
//
// The attributes in [ReservedMethodKeys] are pgimaged's (see [Method]); every other attribute
// is an option for the method's plugin, kept in source order with its place ([Method.Options],
// [Method.OptionRanges]) and as an HCL body ([Method.OptionsBody], gohcl's `remain`), so that
// [Method.CheckOptions] and [Method.OptionDiagnostic] point at it. An option's value is a
// string, number or bool ([RenderValue]), or a list or object of them ([sdk.Option] List and
// Map). Options may also be written as a list, `options = ["verbose", { max-rate = "100M" }]`:
// a string is a flag, an object holds name = value options. bootstrap.initdb takes that list
// form, or a map in which true makes a flag and false leaves the option out. parameters and
// recovery_conf are maps of scalars; recovery_conf's `standby_mode` asks for standby.signal.
// create_replica_methods and bootstrap.method name a method block or one of
// [ReplicaBuiltins], [BootstrapBuiltins].
//
// # Functions and secrets
//
// env("NAME") is an environment variable (unset is an error, unless a default is given:
// env("NAME", "default")); file("path") is a regular file of UTF-8 text, at most 1 MiB, with
// one trailing newline removed. What they read never appears in a diagnostic, and the types
// holding secrets ([Credentials], with sslpassword, [DCS], [API], [Method], [Bootstrap]) mask
// them when formatted. A source connection string is read by [pg.ParseConnURL]: one with a
// password or an sslpassword is refused, and TLS files (sslrootcert, sslcert, sslkey, sslcrl)
// are passed on, in the URL and the keyword/value form alike, as absolute paths.
package config
