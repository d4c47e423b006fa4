# A clone source URL must not carry a password.
# expect: 6:12 Password in source
scope    = "batman"
name     = "node1"
data_dir = "/data"
source   = "postgres://replicator:${env("PGIMAGED_TEST_SOURCE_PW", "not-shown")}@10.0.0.1/postgres"
