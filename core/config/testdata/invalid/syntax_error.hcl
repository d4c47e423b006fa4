# A syntax error stops before decoding.
# expect: 5:12 Invalid expression
scope    = "batman"
name     = "node1"
data_dir = = "/data"
