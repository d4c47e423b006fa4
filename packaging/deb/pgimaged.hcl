# pgimaged's configuration: one member of one cluster.
#
# pgimaged.service runs this file. To run several members on this host, copy it to
# /etc/pgimaged/<name>.hcl and use pgimaged@<name>.service. Check a file with
#   pgimaged validate -config /etc/pgimaged/pgimaged.hcl
# The settings are described in full in the package's documentation (core/config/doc.go).
# This file may hold passwords: keep it readable by root and the postgres group only (0640).

# The cluster's name, shared by all its members, and this member's name, unique in it.
scope = "main"
name  = "node1"

# The PostgreSQL data directory this member makes appear. pgimaged runs as postgres, which
# must be able to create it.
data_dir = "/var/lib/postgresql/pgimaged/main"

# Where the packaged plugins are. The lock file beside this file (plugins.lock.hcl) records
# their sha256; the package refreshes it on install and upgrade. Add your own plugins with
#   pgimaged plugins install FILE -config /etc/pgimaged/pgimaged.hcl
plugin_dir = "/usr/lib/pgimaged/plugins"

# loop_wait = "10s"   # how often the member looks at the cluster
# ttl       = "30s"   # how long the member's keys outlive it; longer than loop_wait
# log_level = "info"  # trace, debug, info, warn, error, off
# tags      = { clonefrom = true }   # other members prefer to clone from this one

# The DCS the members agree through.
dcs "etcd" {
  endpoints = ["127.0.0.1:2379"]
  # username  = "pgimaged"
  # password  = env("PGIMAGED_ETCD_PASSWORD")
  # ca_file   = "/etc/pgimaged/etcd-ca.crt"
  # cert_file = "/etc/pgimaged/etcd-client.crt"
  # key_file  = "/etc/pgimaged/etcd-client.key"
}

postgresql {
  # bin_dir = "/usr/lib/postgresql/15/bin"   # default: the newest installed
  # Debian's own clusters (pg_createcluster) start at port 5432: use another one.
  listen = "127.0.0.1:5440"
  # connect_address = "10.0.0.1:5440"   # what the other members connect to; default: listen
  # parameters = { max_connections = 100, shared_buffers = "128MB" }
  # pg_hba = [
  #   "host all         all        127.0.0.1/32 scram-sha-256",
  #   "host replication replicator 10.0.0.0/24  scram-sha-256",
  # ]
  # pg_ctl_timeout = "60s"   # keep it below the unit's TimeoutStopSec (90s)
  # create_replica_methods = ["basebackup"]   # tried in order when cloning
  #
  # Passwords from the environment (systemctl edit: Environment=, or EnvironmentFile=) or
  # from files readable by postgres:
  # authentication {
  #   superuser {
  #     username = "postgres"
  #     password = env("PGIMAGED_SUPERUSER_PASSWORD")
  #   }
  #   replication {
  #     username = "replicator"
  #     password = file("/etc/pgimaged/replication.pw")
  #   }
  # }
}

# How the first member creates the cluster.
bootstrap {
  initdb = ["data-checksums", { encoding = "UTF8" }]
  # post_bootstrap = "/usr/local/bin/post_bootstrap.sh"
}

# How the other members clone it: pg_basebackup from a running member.
method "basebackup" {
  checkpoint = "fast"
}
