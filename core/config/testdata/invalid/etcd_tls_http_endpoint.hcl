# With TLS files an http:// endpoint would be reached in plain text.
# expect: 8:42 "http://127.0.0.2:2379" is plain HTTP
scope    = "batman"
name     = "node1"
data_dir = "/data"

dcs "etcd" {
  endpoints = ["https://127.0.0.1:2379", "http://127.0.0.2:2379"]
  ca_file   = "../valid/etcd-tls/ca.crt"
}
