# initdb options its schema refuses, list form.
# expect: 10:31 "sync-only" cannot be given
# expect: 10:46 "pwfile" cannot be given
# expect: 10:68 "version" cannot be given
scope    = "batman"
name     = "node1"
data_dir = "/data"

bootstrap {
  initdb = ["data-checksums", "sync-only", { pwfile = "/tmp/pw" }, "version"]
}
