# Member node2 of the "etcd-demo" cluster. The three node*.hcl files differ only in name, port,
# data_dir and tags. Passwords come from the environment (see README.md).
scope     = "etcd-demo"
name      = "node2"
data_dir  = "/tmp/pgimaged-etcd/node2/data"
loop_wait = "5s"
# The lease that binds this member's keys (the empty initialize while it bootstraps, leader,
# members/node2): if the process dies they vanish after ttl and another member takes over.
ttl       = "10s"

# node2 is a preferred clone source: node3 (started after it) copies from node2, not the primary.
tags = { clonefrom = true }

dcs "etcd" {
  endpoints = ["127.0.0.1:2379"]
}

postgresql {
  listen = "127.0.0.1:5442"
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

bootstrap {
  initdb = ["data-checksums", { encoding = "UTF8" }, { locale = "C" }]
}

method "basebackup" {
  checkpoint = "fast"
}
