# A block type pgimaged does not know.
# expect: 7:1 Blocks of type "replicas" are not expected here
scope    = "batman"
name     = "node1"
data_dir = "/data"

replicas {
  method = "basebackup"
}
