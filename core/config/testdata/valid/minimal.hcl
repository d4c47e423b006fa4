# Only the required settings: everything else takes its default.
scope    = "batman"
name     = "node1"
data_dir = "/var/lib/postgresql/15/node1"
