# synchronous_mode_strict needs synchronous_mode.
# expect: 6:27 synchronous_mode_strict without synchronous_mode
scope    = "batman"
name     = "node1"
data_dir = "/data"
synchronous_mode_strict = true
