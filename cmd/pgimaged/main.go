// Command pgimaged makes PostgreSQL data directories appear: it bootstraps the first member of a
// cluster and clones replicas for the others, with methods that are plugins.
package main

import (
	"os"

	"github.com/pgimaged/pgimaged/core/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
}
