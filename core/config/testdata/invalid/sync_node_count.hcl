# synchronous_node_count is a whole number, 1 or more.
# expect: 6:26 Invalid synchronous_node_count
scope    = "batman"
name     = "node1"
data_dir = "/data"
synchronous_node_count = 0
