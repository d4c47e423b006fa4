# initdb options pgimaged refuses, list form.
# expect: 10:31 Option "sync-only"
# expect: 10:46 Option "pwfile"
# expect: 10:68 Option "version"
scope    = "batman"
name     = "node1"
data_dir = "/data"

bootstrap {
  initdb = ["data-checksums", "sync-only", { pwfile = "/tmp/pw" }, "version"]
}
