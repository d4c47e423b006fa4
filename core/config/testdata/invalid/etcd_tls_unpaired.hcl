# A client certificate needs its key.
# expect: 10:3 cert_file is set without key_file
scope    = "batman"
name     = "node1"
data_dir = "/data"

dcs "etcd" {
  endpoints = ["https://127.0.0.1:2379"]
  ca_file   = "../valid/etcd-tls/ca.crt"
  cert_file = "../valid/etcd-tls/client.crt"
}
