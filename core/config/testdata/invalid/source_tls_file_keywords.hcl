# A TLS file in a keyword/value source cannot be passed on: the message names the URL form and
# the libpq environment variable that work instead. (pgx reads the file, relative to the working
# directory, before the key is refused.)
# expect: 8:12 PGSSLROOTCERT
scope    = "batman"
name     = "node1"
data_dir = "/data"
source   = "host=db1 sslmode=verify-full sslrootcert=testdata/invalid/ca.pem"
