# Replicas come from the pgBackRest repository (fast, no load on the primary, works while no
# primary runs); pg_basebackup from the primary is the fallback.
scope      = "batman"
name       = "node2"
data_dir   = "/var/lib/postgresql/15/batman"
plugin_dir = "/usr/lib/pgimaged/plugins"

dcs "etcd" { endpoints = ["10.0.0.11:2379", "10.0.0.12:2379", "10.0.0.13:2379"] }

postgresql {
  listen          = "0.0.0.0:5432"
  connect_address = "10.0.0.12:5432"
  parameters = {
    archive_mode    = "on"
    archive_command = "pgbackrest --stanza=batman archive-push %p"
  }
  pg_hba = ["host replication replicator 10.0.0.0/24 scram-sha-256"]
  authentication {
    superuser {
      username = "postgres"
      password = env("PGIMAGED_SUPERUSER_PASSWORD")
    }
    replication {
      username = "replicator"
      password = env("PGIMAGED_REPLICATION_PASSWORD")
    }
  }
  create_replica_methods = ["pgbackrest", "basebackup"]
}

# The native pgbackrest plugin: `pgbackrest --stanza=batman --pg1-path=<data_dir> --delta
# --type=standby restore` plus these options as long options. pgimaged adds primary_conninfo to
# what pgBackRest writes, so the replica streams from the primary once it has caught up.
method "pgbackrest" {
  stanza      = "batman"         # default: the scope
  process-max = 4
  keep_data   = true             # let --delta reuse what is already in the data directory
  no_master   = true             # also restore when no member is running
  timeout     = "6h"
}

method "basebackup" {
  checkpoint = "fast"
}
