# A new cluster restored from a pgBackRest stanza to a point in time and promoted.
#   pgimaged bootstrap -config restore.hcl
scope    = "batman-restored"
name     = "node1"
data_dir = "/var/lib/postgresql/15/batman-restored"

postgresql {
  listen = "127.0.0.1:5434"
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
  method           = "from_stanza"
  recovery_timeout = "4h"
}

# pgBackRest writes restore_command and the target into postgresql.auto.conf itself; pgimaged
# keeps them (keep_existing_recovery_conf semantics), waits for the promotion, then sets the roles.
method "from_stanza" {
  plugin        = "pgbackrest"
  stanza        = "batman"
  type          = "time"
  target        = "2026-11-21 17:00:00+00"
  target-action = "promote"
}
