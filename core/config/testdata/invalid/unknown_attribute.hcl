# Unknown attributes at the top level and in a block.
# expect: 7:1 argument named "datadir"
# expect: 11:3 Did you mean "pg_hba"?
scope    = "batman"
name     = "node1"
data_dir = "/data"
datadir  = "/data"

postgresql {
  listen  = "127.0.0.1:5432"
  pg_hab  = []
}
