# listen is host:port.
# expect: 8:14 must be host:port
scope    = "batman"
name     = "node1"
data_dir = "/data"

api {
  listen   = "8008"
}
