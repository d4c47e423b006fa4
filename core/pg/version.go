package pg

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/pgimaged/pgimaged/sdk/libpq"
)

// DataDirVersion returns the major version in dir/PG_VERSION: "15" is 15, "9.6" is 9 (what
// matters to pgimaged is only whether it is before or after 10 and 12). A missing PG_VERSION is
// [ErrNotACluster].
func DataDirVersion(dir string) (major int, err error) {
	data, err := os.ReadFile(filepath.Join(dir, "PG_VERSION"))
	if err != nil {
		return 0, fmt.Errorf("while reading the PostgreSQL version of data directory %q: %w", dir, notACluster(err))
	}
	s := strings.TrimSpace(string(data))
	head, _, _ := strings.Cut(s, ".")
	major, err = strconv.Atoi(head)
	if err != nil || major <= 0 {
		return 0, fmt.Errorf("while reading the PostgreSQL version of data directory %q: PG_VERSION holds %q", dir, s)
	}
	return major, nil
}

// BinVersion runs binDir/postgres --version and returns the version as server_version_num
// does: 15.18 is 150018, 9.6.24 is 90624, 16beta2 is 160000 ([libpq.BinVersion]).
func BinVersion(ctx context.Context, binDir string) (num int, err error) {
	return libpq.BinVersion(ctx, binDir)
}

// ParseServerVersion turns the output of postgres --version into a server_version_num
// ([libpq.ParseServerVersion]).
func ParseServerVersion(s string) (int, error) { return libpq.ParseServerVersion(s) }
