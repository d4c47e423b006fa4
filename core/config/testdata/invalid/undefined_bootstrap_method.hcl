# bootstrap.method names a method that is not defined (a misspelt block).
# expect: 8:12 Did you mean "from_bakcup"?
scope    = "batman"
name     = "node1"
data_dir = "/data"

bootstrap {
  method = "from_backup"
}

method "from_bakcup" {
  command = "/usr/local/bin/restore"
}
