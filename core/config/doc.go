// Package config reads pgimaged's HCL configuration.
//
// Decoding happens in two phases. gohcl decodes the file into schema structs (decode.go:
// fileSchema and the block schemas below it): they say which settings and blocks exist, and
// gohcl converts strings, lists of strings and numbers to their Go types and reports a missing,
// unknown or mistyped setting at its place. pgimaged then applies its own rules once, into
// [Config]: booleans in PostgreSQL's spellings, durations, paths, maps and option lists whose
// values may be strings, numbers or bools, and the checks below. Every other attribute of a
// `method` block is kept for the method's plugin, in source order and with its source range, as
// an [sdk.Option] ([Method.Options], [Method.OptionRanges]) and as the HCL body itself
// ([Method.OptionsBody], gohcl's `remain`), so that a plugin's validation or schema can be
// reported at the right file:line:col with [Method.OptionDiagnostic].
//
// Every setting is defined in one place, its schema struct (named beside each block below), and
// defaulted in one place, the decoder's applyDefaults: a Config returned without errors is
// complete, and callers apply no defaults of their own. The defaults are the Default* constants.
//
// Every mistake in a configuration is an [hcl.Diagnostic] with a Subject range. [Load] and
// [Parse] collect all of them, ordered by position, and return them together;
// [WriteDiagnostics] prints them with file:line:col and the offending source line, at most
// [MaxDiagnosticsShown] of them. Input is bounded: a file holds at most [MaxConfigSize] bytes
// and nests at most [MaxNesting] levels deep, checked on the tokens before the parser (which
// recurses) runs.
//
// # Settings
//
//	# fileSchema
//	scope      = "batman"                       # required; part of DCS keys
//	name       = "node1"                        # required; part of DCS keys
//	data_dir   = "/var/lib/postgresql/15/node1" # required; not a system directory
//	plugin_dir = "/usr/lib/pgimaged/plugins"    # default "": plugins/ beside the binary
//	loop_wait  = "10s"                          # default 10s
//	ttl        = "30s"                          # default 30s; longer than loop_wait
//	tags       = { clonefrom = true }           # published with the member
//	source     = "postgres://replicator@10.0.0.1:5432/postgres" # one-shot clone; no password
//	log_level  = "info"                         # default info; trace, debug, info, warn, error, off
//	log_format = "text"                         # default text; json: one JSON object a line (@level, @message, ...)
//	log_file   = "/var/log/pgimaged.log"        # default: stderr; relative to this file's directory; reopened on SIGHUP
//
//	dcs "file" { path = "/var/lib/pgimaged/dcs" }   # fileDCSSchema; at most one; default: the file DCS at a path the caller picks; or:
//	dcs "etcd" {                                      # etcdSchema
//	  endpoints    = ["127.0.0.1:2379"]                # host:port, http:// or https:// URLs
//	  username     = "root"
//	  password     = env("PGIMAGED_ETCD_PASSWORD")
//	  dial_timeout = "5s"
//	  ca_file      = "/etc/pgimaged/etcd-ca.crt"       # TLS: CAs that sign etcd's certificate
//	  cert_file    = "/etc/pgimaged/etcd-client.crt"   # client certificate, with key_file
//	  key_file     = "/etc/pgimaged/etcd-client.key"
//	  namespace    = "/service/"                       # default "/service/", as Patroni's; also in dcs "file"
//	}
//
//	api {                                               # apiSchema; optional: the HTTP API of pgimaged run
//	  listen          = "0.0.0.0:8008"                  # host:port
//	  connect_address = "10.0.0.1:8008"                 # default: listen; published as api_url
//	  cert_file       = "/etc/pgimaged/api.crt"         # HTTPS, with key_file
//	  key_file        = "/etc/pgimaged/api.key"
//	  ca_file         = "/etc/pgimaged/api-clients.crt" # clients must present a certificate it signs
//	  username        = "admin"                         # basic authentication for requests that change something
//	  password        = env("PGIMAGED_API_PASSWORD")    # a secret, with username
//	}
//
//	postgresql {                                          # postgresqlSchema
//	  bin_dir                = "/usr/lib/postgresql/15/bin"
//	  listen                 = "127.0.0.1:5432"           # host:port
//	  connect_address        = "127.0.0.1:5432"           # default: listen
//	  parameters             = { max_connections = 100 }
//	  pg_hba                 = ["host replication replicator 127.0.0.1/32 scram-sha-256"]
//	  pg_ctl_timeout         = "60s"                      # default 60s
//	  create_replica_methods = ["wal_e", "basebackup"]    # default, also when empty: ["basebackup"]
//	  authentication {                                    # authenticationSchema, credentialsSchema
//	    superuser {
//	      username = "postgres"
//	      password = env("PGIMAGED_SUPERUSER_PASSWORD")
//	    }
//	    replication {
//	      username = "replicator"
//	      password = file("/etc/pgimaged/replication.pw")
//	    }
//	  }
//	}
//
//	bootstrap {                                           # bootstrapSchema
//	  method           = "from_backup"                    # default "initdb"
//	  initdb           = ["data-checksums", { encoding = "UTF8" }]
//	  post_bootstrap   = "/usr/local/bin/post_bootstrap.sh"
//	  timeout          = "1h"                             # default: none
//	  recovery_timeout = "1h"                             # default 1h
//	}
//
//	method "from_backup" {                                # methodSchema; other attributes are options
//	  command       = "/usr/local/bin/restore_cluster --fast"
//	  recovery_conf = { recovery_target_action = "promote", restore_command = "cp /archive/%f %p" }
//	}
//
//	method "wal_e" {
//	  command   = "patroni_wale_restore"
//	  no_master = true
//	  envdir    = "/etc/wal-e.d/env"
//	}
//
//	plugin "wale" {                                       # pluginSchema
//	  path   = "/opt/pgimaged/pgimaged-plugin-wale"
//	  sha256 = "…"
//	}
//
// # etcd over TLS
//
// pgimaged speaks TLS to etcd when ca_file, cert_file or key_file is set, or when an endpoint is
// an https:// URL. ca_file holds the PEM certificates that sign etcd's server certificate (without
// it the system's roots are used); cert_file and key_file are a PEM client certificate and its
// key, for an etcd started with --client-cert-auth, and are given together. The files must exist
// and be readable when the configuration is loaded; they are read again each time pgimaged opens
// a DCS session, so renewed certificates are picked up. An http:// endpoint is refused when TLS
// is in use: the etcd client would connect to it, and with it to every endpoint, in plain text.
//
// Durations are strings with a unit ("10s", "5m", "1h") and must be positive. Booleans also
// accept 1 and 0 and the strings PostgreSQL reads as booleans ("on", "off", "t", …, see
// [sdk.ParseBool]), as Patroni configurations often use them. Maps and option lists are written
// literally ({ … } and [ … ]). Values in parameters, recovery_conf and method options are
// rendered by [RenderValue]. A source connection string is read with pgx's parser
// ([pg.ParseConnURL]). A value of the wrong type is reported in hcl's words ("Unsuitable value
// type") at the start of the value, and a value with an error is not checked further.
//
// # Method blocks
//
// The keys listed in [ReservedMethodKeys] are pgimaged's (see [Method]); every other attribute
// is an option. Options may also be given as a list, `options = ["verbose", { max-rate =
// "100M" }]`, where a string is a flag and an object gives name = value options. Both forms may
// be mixed in one block: options keep the order in which they are written, so an attribute
// written before `options` comes before the list's options.
//
// An option attribute may also be an HCL list or object of strings, numbers and bools:
// `tablespace-mapping = ["/a=/b", "/c=/d"]` reaches the plugin as a list ([sdk.Option].List),
// `env = { AWS_REGION = "eu-west-1" }` as a map (Map), each element rendered by [RenderValue]; an
// element of another type is reported at the element. A plugin's schema takes them as options
// of type list and map ([sdk.TypeList], [sdk.TypeMap]) and refuses a list or map where it wants
// a single value, and a single value where it wants a list or map. Values read by env() or
// file() inside a list or map are secrets element by element: [Method.OptionHidden] marks the
// option, [Method.OptionSecrets] holds the elements, which [Method]'s String and GoString mask,
// as pgimaged masks them in logs and in `pgimaged plan`. The elements of the `options` list
// form remain single values.
//
// recovery_conf holds recovery settings; a `standby_mode` key in it, as in Patroni, is not a
// setting but asks for standby.signal instead of recovery.signal ([Method.StandbyMode]).
//
// no_master (or no_leader) cannot be set on a method that basebackup runs: pg_basebackup always
// copies from a running member.
//
// create_replica_methods and bootstrap.method must name a method block or a native method that
// works without one ([ReplicaBuiltins], [BootstrapBuiltins]).
//
// # initdb
//
// bootstrap.initdb takes the same list form, or a map. In the map form a boolean makes a flag:
// `{ encoding = "UTF8", data-checksums = true }` is --encoding=UTF8 --data-checksums, and false
// leaves the option out. They are checked against the initdb plugin's option schema, which
// refuses those pgimaged sets itself (pgdata, pwfile, ...).
//
// # Functions and secrets
//
// Two functions are available in expressions:
//
//   - env("NAME") is the value of an environment variable; unset is an error that names the
//     variable, unless a default is given: env("NAME", "default").
//   - file("path") is the contents of a regular file of UTF-8 text (at most 1 MiB) with one
//     trailing newline removed. A relative path is taken relative to the directory of the
//     configuration file.
//
// Every path in the configuration is resolved the same way and kept absolute in [Config]:
// data_dir, plugin_dir, postgresql.bin_dir, the file DCS's path, a plugin pin's path and the TLS
// files. Commands (a method's command, bootstrap.post_bootstrap) are command lines and are
// used as written. A value read with env() or file() never appears in a diagnostic, whichever
// setting it is used in, and the types holding passwords ([Credentials], [DCS]) mask them when
// formatted with the fmt package. A source connection string that carries a password is
// refused, not kept.
package config
