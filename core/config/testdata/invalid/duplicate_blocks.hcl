# Singleton blocks and plugin pins given twice.
# expect: 10:1 Duplicate postgresql block
# expect: 13:1 Duplicate plugin "wale" block
# expect: 16:1 Duplicate bootstrap block
scope    = "batman"
name     = "node1"
data_dir = "/data"

postgresql { listen = "127.0.0.1:5432" }
postgresql { listen = "127.0.0.1:5433" }

plugin "wale" {}
plugin "wale" { path = "/opt/wale" }

bootstrap {}
bootstrap {}
