# Tags are published as JSON: their numbers must fit a float64.
# expect: 6:12 tags: "priority": number is out of range
scope    = "batman"
name     = "node1"
data_dir = "/data"
tags     = { clonefrom = true, priority = 1e400 }
