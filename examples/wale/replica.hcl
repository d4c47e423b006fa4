# Replicas from WAL-E or WAL-G backups, with pg_basebackup as the fallback when the latest backup
# is too old (Patroni's wale_restore rule: the WAL to replay must be below threshold_megabytes and
# below threshold_backup_size_percentage of the backup's size).
scope      = "batman"
name       = "node3"
data_dir   = "/var/lib/postgresql/15/batman"
plugin_dir = "/usr/lib/pgimaged/plugins"

dcs "etcd" { endpoints = ["10.0.0.11:2379"] }

postgresql {
  listen          = "0.0.0.0:5432"
  connect_address = "10.0.0.13:5432"
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
  create_replica_methods = ["wal_e", "basebackup"]
}

# The native plugin (label wal_e → plugin wale, as there is no command).
method "wal_e" {
  tool                             = "wal-e"            # or "wal-g"
  envdir                           = "/etc/wal-e.d/env" # read by pgimaged; no daemontools needed
  use_iam                          = 1
  retries                          = 2
  threshold_megabytes              = 10240
  threshold_backup_size_percentage = 30
  no_master                        = true
}

# Patroni's own script works unchanged through the script plugin:
# method "wal_e" {
#   command   = "patroni_wale_restore"
#   no_master = true
#   envdir    = "/etc/wal-e.d/env"
#   use_iam   = 1
# }
