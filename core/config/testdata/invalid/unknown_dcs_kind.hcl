# A DCS kind other than file and etcd.
# expect: 7:5 dcs "consul"
scope    = "batman"
name     = "node1"
data_dir = "/data"

dcs "consul" { address = "127.0.0.1:8500" }
