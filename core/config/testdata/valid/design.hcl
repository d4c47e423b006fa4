# The example from the design page, with the replication password read from a file beside it.
scope      = "batman"
name       = "node1"
data_dir   = "/var/lib/postgresql/15/node1"
plugin_dir = "/usr/lib/pgimaged/plugins"

dcs "file" { path = "/var/lib/pgimaged/dcs" }

postgresql {
  bin_dir         = "/usr/lib/postgresql/15/bin"
  listen          = "127.0.0.1:5432"
  connect_address = "127.0.0.1:5432"
  parameters      = { max_connections = 100 }
  pg_hba          = ["host replication replicator 127.0.0.1/32 scram-sha-256"]
  authentication {
    superuser {
      username = "postgres"
      password = env("PGIMAGED_SUPERUSER_PASSWORD")
    }
    replication {
      username = "replicator"
      password = file("replication.pw")
    }
  }
  create_replica_methods = ["wal_e", "basebackup"]
}

bootstrap {
  method         = "from_backup"
  initdb         = ["data-checksums", { encoding = "UTF8" }]
  post_bootstrap = "/usr/local/bin/post_bootstrap.sh"
}

method "from_backup" {
  command                     = "/usr/local/bin/restore_cluster --fast"
  keep_existing_recovery_conf = false
  recovery_conf = { recovery_target_action = "promote", restore_command = "cp /archive/%f %p" }
}

method "wal_e" {
  command   = "patroni_wale_restore"
  no_master = true
  envdir    = "/etc/wal-e.d/env"
  use_iam   = 1
}

method "basebackup" {
  max-rate   = "100M"
  checkpoint = "fast"
}

plugin "wale" { sha256 = "9F86D081884C7D659A2FEAEA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A0" }
