# pg_basebackup copies from a running source: it cannot be a method that works without one.
# expect: 9:15 basebackup copies from a running member
# expect: 14:15 basebackup copies from a running member
scope    = "batman"
name     = "node1"
data_dir = "/data"

method "basebackup" {
  no_master = true
}

method "copy" {
  plugin    = "basebackup"
  no_leader = "on"
}
