# A TLS file in a source is passed on to pg_basebackup and primary_conninfo, which do not run in
# pgimaged's working directory: a relative path is refused, in the keyword/value form as in a URL.
# (pgx reads the file, relative to the working directory, before the path is refused.)
# expect: 8:12 absolute path
scope    = "batman"
name     = "node1"
data_dir = "/data"
source   = "host=db1 sslmode=verify-full sslrootcert=testdata/invalid/ca.pem"
