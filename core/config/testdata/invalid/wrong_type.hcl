# Values of the wrong type.
# expect: 9:16 "parameters": map required
# expect: 10:16 "pg_hba": list of strings required
scope    = "batman"
name     = "node1"
data_dir = "/data"

postgresql {
  parameters = "max_connections=100"
  pg_hba     = "host all all 127.0.0.1/32 trust"
}
