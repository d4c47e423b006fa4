# initdb options pgimaged refuses, map form.
# expect: 9:33 Option "pgdata"
# expect: 9:56 Option "nosync"
scope    = "batman"
name     = "node1"
data_dir = "/data"

bootstrap {
  initdb = { encoding = "UTF8", pgdata = "/elsewhere", nosync = true }
}
