# Keys pgimaged reads itself cannot hide in the options list, which must be a list.
# expect: 11:14 "keep_data" is read by pgimaged
# expect: 11:29 "command" is read by pgimaged
# expect: 16:13 "options": list required
scope    = "batman"
name     = "node1"
data_dir = "/data"

method "restore" {
  command = "/usr/local/bin/restore"
  options = ["keep_data", { command = "/bin/false" }]
}

method "restore_too" {
  command = "/usr/local/bin/restore"
  options = { max-rate = "1M" }
}
