// Command pgimaged-plugin-pgbackrest is pgimaged's pgBackRest method: it restores a replica
// (clone) or a new cluster, possibly to a point in time (bootstrap), from a pgBackRest repository.
//
// A clone runs
//
//	pgbackrest --stanza=S --pg1-path=D --delta --type=standby --log-level-console=detail [options] restore
//
// and a bootstrap the same without --delta and --type=standby. pgBackRest writes the recovery
// settings itself (restore_command, standby.signal or recovery.signal), so both report
// KeepExistingRecovery.
package main

import "github.com/pgimaged/pgimaged/sdk"

func main() {
	sdk.Serve(New())
}
