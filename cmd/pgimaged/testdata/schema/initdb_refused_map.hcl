# initdb options its schema refuses, map form.
# expect: 9:33 "pgdata" cannot be given
# expect: 9:56 "nosync" cannot be given
scope    = "batman"
name     = "node1"
data_dir = "/data"

bootstrap {
  initdb = { encoding = "UTF8", pgdata = "/elsewhere", nosync = true }
}
