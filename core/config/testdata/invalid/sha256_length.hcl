# A plugin pin whose sha256 is one digit short.
# expect: 7:26 this one has 63 characters
scope    = "batman"
name     = "node1"
data_dir = "/data"

plugin "wale" { sha256 = "9f86d081884c7d659a2feaea0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a" }
