# scope is required.
# expect: 1:1 argument "scope" is required
name     = "node1"
data_dir = "/data"
