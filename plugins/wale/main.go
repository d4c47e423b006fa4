// Command pgimaged-plugin-wale is pgimaged's WAL-E / WAL-G method, after Patroni's wale_restore:
// it restores the LATEST base backup with `backup-fetch`, provided the WAL to replay from the
// backup's start to the source's current position stays under the configured thresholds, and
// reports a restore_command (`wal-fetch`) for pgimaged to write.
//
// The plugin also serves as an envdir(8) replacement for that restore_command when daemontools'
// envdir is not installed:
//
//	pgimaged-plugin-wale envdir DIR PROGRAM [ARG...]
package main

import (
	"os"

	"github.com/pgimaged/pgimaged/sdk"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == EnvdirCommand {
		os.Exit(EnvdirMain(os.Args[2:], os.Stderr))
	}
	sdk.Serve(New())
}
