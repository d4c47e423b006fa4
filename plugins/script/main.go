// Command pgimaged-plugin-script runs a user's own command as a replica or custom bootstrap
// method, with Patroni's calling convention, so that scripts written for Patroni work unchanged.
//
// A replica method (clone) runs
//
//	<command words> [--name=value | --flag]... --scope=S --role=replica --datadir=D --connstring=C
//
// where the user's options come first, in configuration order, and the four parameters pgimaged
// supplies come last; C is empty when the method runs without a source (no_master). A user option
// named scope, role, datadir or connstring is dropped in favour of pgimaged's value. With no_params
// the four are not added and the user's options are passed exactly as given.
//
// A custom bootstrap runs
//
//	<command words> --scope=S --datadir=D [--name=value | --flag]...
//
// no_params drops --scope and --datadir. As in Patroni, user options named scope or datadir are
// never passed to a bootstrap command.
//
// An option written as an HCL list is passed once per element, in order, and one written as an
// HCL object once per entry, in key order:
//
//	method "restore" {
//	  command = "/usr/local/bin/restore"
//	  include = ["db1", "db2"]                       // --include=db1 --include=db2
//	  env     = { AWS_REGION = "eu-west-1", N = 2 }  // --env=AWS_REGION=eu-west-1 --env=N=2
//	}
//
// An empty list or map passes nothing. A map key must not contain '='. `pgimaged plan` shows
// the exact command line, with values read by env() or file() masked.
//
// The command is split into words like a POSIX shell does, without running a shell (quotes and
// backslashes work, nothing is expanded). A first word without a slash is looked up in PATH (the
// request's PATH if it carries one, else the plugin's); a relative path with a slash is taken
// relative to the working directory pgimaged runs in. The command's environment is pgimaged's
// plus the request's (PGPASSFILE names the password file for the connection string, and
// PGPASSWORD is empty beside it, so that one in pgimaged's environment does not win) plus
// PGIMAGED_SCOPE, PGIMAGED_DATADIR, PGIMAGED_ROLE ("replica" or "primary") and, for a clone,
// PGIMAGED_CONNSTRING. A command that exits non-zero fails the method with its last output line.
package main

import "github.com/pgimaged/pgimaged/sdk"

func main() {
	sdk.Serve(New())
}
