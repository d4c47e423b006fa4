# A list element of the wrong type is reported where it stands, a null where the value is.
# expect: 11:34 "endpoints": string required
# expect: 14:43 "pg_hba": string required
# expect: 15:28 "create_replica_methods": null is not allowed
# expect: 19:14 "attempts": number required
scope    = "batman"
name     = "node1"
data_dir = "/data"

dcs "etcd" {
  endpoints = ["127.0.0.1:2379", ["10.0.0.2:2379"]]
}
postgresql {
  pg_hba = ["host all all 0.0.0.0/0 md5", { a = 1 }]
  create_replica_methods = [null]
}
method "m" {
  command  = "/bin/true"
  attempts = "three"
}
