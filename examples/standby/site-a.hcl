# The first site: a cluster of its own, "site-a", whose primary the second site follows. Start
# more members by copying this file with another name, port and data_dir. Passwords come from
# the environment (see README.md); the second site uses the same roles.
scope     = "site-a"
name      = "a1"
data_dir  = "/tmp/pgimaged-standby/a1/data"
loop_wait = "2s"

dcs "file" {
  path = "/tmp/pgimaged-standby/dcs-a"
}

postgresql {
  listen = "127.0.0.1:5451"
  parameters = {
    shared_buffers  = "32MB"
    max_connections = 50
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

method "basebackup" {
  checkpoint = "fast"
}
