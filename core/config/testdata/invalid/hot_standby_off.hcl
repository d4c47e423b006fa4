# A standby is always a hot standby: the agents read each one's state over a connection.
# expect: 7:40 Unsupported hot_standby
scope    = "batman"
name     = "node1"
data_dir = "/data"
postgresql {
  parameters = { max_connections = 50, Hot_Standby = "no" }
}
