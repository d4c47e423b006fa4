# failsafe_mode asks the members over the API: it needs an api block with credentials.
# expect: 6:17 failsafe_mode needs the API
scope    = "batman"
name     = "node1"
data_dir = "/data"
failsafe_mode = true
api {
  listen = "127.0.0.1:8008"
}
