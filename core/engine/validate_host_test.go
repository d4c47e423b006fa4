package engine_test

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/hcl/v2"

	"github.com/pgimaged/pgimaged/internal/pgtest"
	"github.com/pgimaged/pgimaged/internal/testenv"
)

// onlyDiag returns the one diagnostic of diags, failing unless there is exactly one with summary.
func onlyDiag(t *testing.T, diags hcl.Diagnostics, summary string) *hcl.Diagnostic {
	t.Helper()
	if len(diags) != 1 || diags[0].Summary != summary {
		t.Fatalf("diagnostics %v, want one %q", diags, summary)
	}
	return diags[0]
}

// TestValidateHostListenPort: a port another program holds is an error at postgresql.listen; a
// free one, and one held by this data directory's own running server, are not.
func TestValidateHostListenPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	busy := ln.Addr().(*net.TCPAddr).Port

	n := loadNode(t, filepath.Join(t.TempDir(), "data"), fmt.Sprintf("postgresql {\n  listen = \"127.0.0.1:%d\"\n}", busy))
	d := onlyDiag(t, n.ValidateHost(), "Port in use")
	if r := d.Subject; filepath.Base(r.Filename) != "node1.hcl" || r.Start.Line != 5 || r.Start.Column != 12 {
		t.Errorf("the diagnostic points at %s, want node1.hcl:5:12 (the listen value)", r)
	}

	free := pgtest.FreePort(t)
	n = loadNode(t, filepath.Join(t.TempDir(), "data"), fmt.Sprintf("postgresql {\n  listen = \"127.0.0.1:%d\"\n}", free))
	if diags := n.ValidateHost(); len(diags) != 0 {
		t.Errorf("a free port: unexpected diagnostics %v", diags)
	}

	p := pgtest.StartPrimary(t, pgtest.Options{})
	n = loadNode(t, p.DataDir, fmt.Sprintf("postgresql {\n  listen = \"127.0.0.1:%d\"\n}", p.Port))
	if diags := n.ValidateHost(); len(diags) != 0 {
		t.Errorf("the port of this data directory's own server: unexpected diagnostics %v", diags)
	}
	other := loadNode(t, filepath.Join(t.TempDir(), "data"), fmt.Sprintf("postgresql {\n  listen = \"127.0.0.1:%d\"\n}", p.Port))
	onlyDiag(t, other.ValidateHost(), "Port in use")
}

// TestValidateHostDataDirOwner: a data directory of another account, one that cannot be created,
// and a cluster with a mode PostgreSQL refuses are errors at data_dir; the account's own
// directories are not.
func TestValidateHostDataDirOwner(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Fatal("the engine's tests run as the PostgreSQL account, not root")
	}
	rootOwned := testenv.PGBinDir(t) // installed by root, not writable by others
	cases := []struct {
		name    string
		dataDir func(t *testing.T) string
		summary string
	}{
		{"own, missing", func(t *testing.T) string { return filepath.Join(t.TempDir(), "data") }, ""},
		{"own cluster, 0750", func(t *testing.T) string {
			d := filepath.Join(t.TempDir(), "data")
			placeCluster(t, d)
			chmod(t, d, 0o750)
			return d
		}, ""},
		{"another account's", func(*testing.T) string { return rootOwned }, "Data directory of another account"},
		{"cannot be created", func(*testing.T) string { return filepath.Join(rootOwned, "sub", "data") }, "Data directory cannot be created"},
		{"own cluster, group-writable", func(t *testing.T) string {
			d := filepath.Join(t.TempDir(), "data")
			placeCluster(t, d)
			chmod(t, d, 0o770)
			return d
		}, "Data directory mode refused by PostgreSQL"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := loadNode(t, tc.dataDir(t), "")
			diags := n.ValidateHost()
			if tc.summary == "" {
				if len(diags) != 0 {
					t.Errorf("unexpected diagnostics %v", diags)
				}
				return
			}
			d := onlyDiag(t, diags, tc.summary)
			if r := d.Subject; r.Start.Line != 3 || r.Start.Column != 12 {
				t.Errorf("the diagnostic points at %s, want line 3, column 12 (the data_dir value)", r)
			}
		})
	}
}

func chmod(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}
