# The second site: "site-b", a standby cluster of site-a on a DCS of its own. Its first member
# copies site-a's primary and leads as standby_leader, in recovery; the others (copies of this
# file with another name, port and data_dir) clone from it and cascade. Nothing here is
# writable until `pgimaged standby promote`.
scope     = "site-b"
name      = "b1"
data_dir  = "/tmp/pgimaged-standby/b1/data"
loop_wait = "2s"

dcs "file" {
  path = "/tmp/pgimaged-standby/dcs-b"
}

standby_cluster {
  # site-a's members: the standby leader streams from whichever accepts writes
  # (target_session_attrs=read-write), so it follows a switchover there.
  host = "127.0.0.1,127.0.0.1"
  port = "5451,5452"
}

postgresql {
  listen = "127.0.0.1:5461"
  parameters = {
    shared_buffers  = "32MB"
    max_connections = 50
  }
  pg_hba = [
    "host all        all        127.0.0.1/32 scram-sha-256",
    "host replication replicator 127.0.0.1/32 scram-sha-256",
  ]
  authentication {
    # The remote's roles: a standby cluster creates none, its data comes from site-a.
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
