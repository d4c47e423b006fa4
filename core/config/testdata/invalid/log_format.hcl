# log_format is text or json.
# expect: 6:14 Invalid log format
scope      = "batman"
name       = "node1"
data_dir   = "/data"
log_format = "xml"
