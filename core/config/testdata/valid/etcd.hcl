# The etcd DCS with every setting; durations, tags and the one-shot clone source.
scope     = "batman"
name      = "node3"
data_dir  = "/var/lib/postgresql/15/node3"
loop_wait = "5s"
ttl       = "20s"
log_level = "DEBUG"
source    = "postgres://replicator@10.0.0.1:5432/postgres?sslmode=require"
tags      = { clonefrom = true, nofailover = false, priority = 2, weight = 0.5, zone = "a", extra = ["x", 1] }

dcs "etcd" {
  endpoints    = ["127.0.0.1:2379", "127.0.0.1:22379"]
  username     = "root"
  password     = env("PGIMAGED_TEST_ETCD_PASSWORD", "etcd-default-secret")
  dial_timeout = "3s"
}

postgresql {
  listen         = "*:5432"
  connect_address = "10.0.0.3:5432"
  pg_ctl_timeout = "90s"
  parameters     = { shared_buffers = "128MB", random_page_cost = 1.1, fsync = false, "auto_explain.log_min_duration" = "1s" }
  create_replica_methods = []
}

bootstrap {
  method           = "pgbackrest"
  timeout          = "1h"
  recovery_timeout = "30m"
}

plugin "custom" {
  path   = "/opt/pgimaged/pgimaged-plugin-custom"
  sha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
}
