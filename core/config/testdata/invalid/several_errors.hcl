# Every error in a file is reported, in source order.
# expect: 10:13 Invalid scope
# expect: 13:13 must be longer than loop_wait
# expect: 14:13 Invalid log level
# expect: 15:13 Password in source
# expect: 18:28 Invalid address
# expect: 19:43 Duplicate replica method
# expect: 25:15 Conflicting settings
# expect: 26:36 standby_mode must be a boolean
scope     = "bat/man"
name      = "node1"
data_dir  = "/data"
ttl       = "5s"
log_level = "verbose"
source    = "host=10.0.0.1 user=replicator password=secret"

postgresql {
  listen                 = 5432
  create_replica_methods = ["basebackup", "basebackup"]
}

method "wal_e" {
  command   = "patroni_wale_restore"
  no_master = true
  no_leader = false
  recovery_conf = { standby_mode = "maybe" }
}
