# file() of a missing file names the file.
# expect: 11:18 while reading "no-such-replication.pw"
scope    = "batman"
name     = "node1"
data_dir = "/data"

postgresql {
  authentication {
    replication {
      username = "replicator"
      password = file("no-such-replication.pw")
    }
  }
}
