# Options keep source order: map form, list form, and both mixed in one block.
scope    = "batman"
name     = "node2"
data_dir = "data"

postgresql {
  listen                 = "127.0.0.1:5433"
  create_replica_methods = ["basebackup", "restore", "mixed"]
}

bootstrap {
  initdb = { locale = "C", data-checksums = true, encoding = "UTF8", no-instructions = false, wal-segsize = 32 }
}

method "basebackup" {
  options = ["verbose", { max-rate = "100M", checkpoint = "fast" }, "progress", { tablespace-mapping = "/a=/b" }, { tablespace-mapping = "/c=/d" }]
}

method "restore" {
  command    = "/usr/local/bin/restore"
  zeta       = "z"
  alpha      = 1.5
  middle     = true
  big        = 9007199254740993
  negative   = -3
  no_leader  = 1
  keep_data  = true
  attempts   = 3
  retry_wait = "5s"
  timeout    = "2h"
  recovery_conf = {
    restore_command        = "cp /archive/%f %p"
    standby_mode           = "on"
    recovery_min_apply_delay = 0
  }
}

method "mixed" {
  plugin    = "pgbackrest"
  no_params = true
  first     = "1"
  options   = ["second", { third = "3" }]
  fourth    = "4"
}
