# The API's certificate needs its key.
# expect: 9:3 key_file is set without cert_file
scope    = "batman"
name     = "node1"
data_dir = "/data"

api {
  listen   = "127.0.0.1:8008"
  key_file = "../valid/etcd-tls/client.key"
}
