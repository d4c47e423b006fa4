# A member whose cluster, when it is the first, is created by initdb; the other members clone it
# with pg_basebackup. Start it with: pgimaged run -config node.hcl
scope      = "batman"
name       = "node1"
data_dir   = "/var/lib/postgresql/15/batman"
plugin_dir = "/usr/lib/pgimaged/plugins"

dcs "file" { path = "/var/lib/pgimaged/dcs" }

postgresql {
  bin_dir         = "/usr/lib/postgresql/15/bin"
  listen          = "127.0.0.1:5432"
  connect_address = "127.0.0.1:5432"
  parameters = {
    max_connections = 100
    shared_buffers  = "256MB"
    wal_level       = "replica"
    max_wal_senders = 10
  }
  pg_hba = [
    "host all        all        127.0.0.1/32 scram-sha-256",
    "host replication replicator 127.0.0.1/32 scram-sha-256",
  ]
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
}

bootstrap {
  # list form: bare flags and { name = value } objects; map form works too:
  # initdb = { data-checksums = true, encoding = "UTF8" }
  initdb         = ["data-checksums", { encoding = "UTF8" }, { locale = "C.UTF-8" }]
  # Runs once the cluster is up, with a connection string (no password; PGPASSFILE has it).
  post_bootstrap = "/usr/local/bin/post_bootstrap.sh"
}

method "basebackup" {
  checkpoint = "fast"
  max-rate   = "200M"
}
