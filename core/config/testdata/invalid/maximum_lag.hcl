# maximum_lag_on_failover is a whole number of bytes, 0 or more.
# expect: 6:27 Invalid maximum_lag_on_failover
scope    = "batman"
name     = "node1"
data_dir = "/data"
maximum_lag_on_failover = -1
