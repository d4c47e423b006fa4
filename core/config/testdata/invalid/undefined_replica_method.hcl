# create_replica_methods names a method that is neither a block nor built in.
# expect: 8:43 names "wal_g", but there is no method "wal_g" block
scope    = "batman"
name     = "node1"
data_dir = "/data"

postgresql {
  create_replica_methods = ["basebackup", "wal_g"]
}
