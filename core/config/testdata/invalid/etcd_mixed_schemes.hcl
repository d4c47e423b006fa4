# http:// and https:// endpoints cannot be mixed: the client reaches them all in one way.
# expect: 8:16 "http://127.0.0.1:2379" is plain HTTP and "https://127.0.0.2:2379" is HTTPS
scope    = "batman"
name     = "node1"
data_dir = "/data"

dcs "etcd" {
  endpoints = ["http://127.0.0.1:2379", "https://127.0.0.2:2379"]
}
