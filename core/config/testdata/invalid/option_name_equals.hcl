# Option names that cannot be long options.
# expect: 10:25 { max-rate = "100M" }
# expect: 10:42 without leading dashes
# expect: 10:58 cannot contain '='
scope    = "batman"
name     = "node1"
data_dir = "/data"

method "basebackup" {
  options = ["verbose", "max-rate=100M", "--progress", { "a=b" = "c" }]
}
