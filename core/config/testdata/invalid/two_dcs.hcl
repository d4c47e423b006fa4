# At most one dcs block.
# expect: 8:1 Duplicate dcs block
scope    = "batman"
name     = "node1"
data_dir = "/data"

dcs "file" { path = "/var/lib/pgimaged/dcs" }
dcs "etcd" { endpoints = ["127.0.0.1:2379"] }
