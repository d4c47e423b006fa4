# TLS settings belong to the etcd DCS only.
# expect: 9:3 argument named "ca_file"
scope    = "batman"
name     = "node1"
data_dir = "/data"

dcs "file" {
  path    = "/var/lib/pgimaged/dcs"
  ca_file = "../valid/etcd-tls/ca.crt"
}
