# TLS files must be readable regular files; the error names the path.
# expect: 10:15 ca_file: cannot read "no-such-ca.crt"
# expect: 12:15 key_file: cannot read "../valid/etcd-tls"
scope    = "batman"
name     = "node1"
data_dir = "/data"

dcs "etcd" {
  endpoints = ["127.0.0.1:2379"]
  ca_file   = "no-such-ca.crt"
  cert_file = "../valid/etcd-tls/client.crt"
  key_file  = "../valid/etcd-tls"
}
