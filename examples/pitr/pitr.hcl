# A new cluster restored from a pg_basebackup backup plus a WAL archive, to a named restore point
# (or a time: recovery_target_time = "2026-11-21 17:00:00+00"), then promoted.
#
#   pgimaged bootstrap -config pitr.hcl        # the whole path, leaves PostgreSQL running
#   pgimaged bootstrap -config pitr.hcl --image-only   # only restore + recovery settings
scope      = "restored"
name       = "node1"
data_dir   = "/var/lib/postgresql/15/restored"
plugin_dir = "/usr/lib/pgimaged/plugins"

postgresql {
  listen = "127.0.0.1:5433"
  pg_hba = ["host all all 127.0.0.1/32 scram-sha-256"]
  authentication {
    superuser {
      username = "postgres"
      password = env("PGIMAGED_SUPERUSER_PASSWORD")
    }
    replication {
      username = "replicator"
      password = env("PGIMAGED_REPLICATION_PASSWORD")
    }
  }
}

bootstrap {
  method           = "from_backup"
  recovery_timeout = "2h"   # how long the recovery may take before the bootstrap is abandoned
}

# The script plugin runs `command` (split like a shell, no shell) plus --scope and --datadir.
method "from_backup" {
  command = "/usr/local/lib/pgimaged/restore_from_basebackup.sh --backup=/backups/base-latest"
  recovery_conf = {
    restore_command        = "cp /archive/%f %p"
    recovery_target_name   = "before_cleanup"
    recovery_target_action = "promote"
  }
}
