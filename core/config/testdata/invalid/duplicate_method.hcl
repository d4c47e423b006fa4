# A method label defined twice.
# expect: 11:1 Duplicate method "basebackup" block
scope    = "batman"
name     = "node1"
data_dir = "/data"

method "basebackup" {
  max-rate = "100M"
}

method "basebackup" {
  checkpoint = "fast"
}
