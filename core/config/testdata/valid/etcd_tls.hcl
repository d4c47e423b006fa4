# The etcd DCS over TLS with a client certificate; relative paths start at this file's directory.
scope    = "batman"
name     = "node4"
data_dir = "/var/lib/postgresql/15/node4"

dcs "etcd" {
  endpoints = ["https://10.0.0.1:2379", "https://10.0.0.2:2379", "10.0.0.3:2379"]
  ca_file   = "etcd-tls/ca.crt"
  cert_file = "etcd-tls/client.crt"
  key_file  = "./etcd-tls/../etcd-tls/client.key"
}
