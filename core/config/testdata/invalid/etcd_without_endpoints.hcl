# The etcd DCS needs endpoints and takes no path.
# expect: 8:12 argument "endpoints" is required
# expect: 10:3 argument named "path"
scope    = "batman"
name     = "node1"
data_dir = "/data"

dcs "etcd" {
  username = "root"
  path     = "/var/lib/pgimaged/dcs"
}
