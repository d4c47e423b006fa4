# attempts must be a whole number of at least 1.
# expect: 9:14 Invalid attempts
# expect: 14:14 Invalid attempts
scope    = "batman"
name     = "node1"
data_dir = "/data"

method "basebackup" {
  attempts = 0
}

method "other" {
  command  = "/bin/true"
  attempts = 1.5
}
