package pg_test

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/pgimaged/pgimaged/core/pg"
)

func TestIsEmptyDir(t *testing.T) {
	cases := []struct {
		name        string
		setup       func(t *testing.T, dir string) string
		empty, here bool
		wantErr     bool
	}{
		{"missing", func(t *testing.T, dir string) string { return filepath.Join(dir, "nope") }, true, false, false},
		{"empty", func(t *testing.T, dir string) string { return dir }, true, true, false},
		{"hidden file", func(t *testing.T, dir string) string {
			mustWrite(t, filepath.Join(dir, ".keep"), "")
			return dir
		}, false, true, false},
		{"lost+found", func(t *testing.T, dir string) string {
			mustMkdir(t, filepath.Join(dir, "lost+found"))
			return dir
		}, false, true, false},
		{"a file, not a directory", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "f")
			mustWrite(t, p, "x")
			return p
		}, false, true, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := tc.setup(t, t.TempDir())
			empty, here, err := pg.IsEmptyDir(dir)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if empty != tc.empty || here != tc.here {
				t.Errorf("IsEmptyDir = (empty %v, exists %v), want (%v, %v)", empty, here, tc.empty, tc.here)
			}
		})
	}
}

func TestEmptyDirKeepsDirectoryAndLinkTargets(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "data")
	outside := filepath.Join(root, "wal")
	mustMkdir(t, dir)
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, filepath.Join(outside, "000000010000000000000001"), "wal")
	mustWrite(t, filepath.Join(dir, "PG_VERSION"), "15\n")
	mustWrite(t, filepath.Join(dir, ".hidden"), "")
	mustWrite(t, filepath.Join(dir, "base", "1", "1259"), "rel")
	if err := os.Symlink(outside, filepath.Join(dir, "pg_wal")); err != nil {
		t.Fatal(err)
	}

	if err := pg.EmptyDir(dir); err != nil {
		t.Fatal(err)
	}
	empty, here, err := pg.IsEmptyDir(dir)
	if err != nil || !empty || !here {
		t.Fatalf("after EmptyDir: empty %v, exists %v, err %v; want an empty directory", empty, here, err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("data directory mode after EmptyDir = %v (%v), want 0700", fi.Mode().Perm(), err)
	}
	if !exists(filepath.Join(outside, "000000010000000000000001")) {
		t.Error("EmptyDir removed the contents of a symlink's target outside the data directory")
	}
}

func TestEmptyDirEdges(t *testing.T) {
	if err := pg.EmptyDir(filepath.Join(t.TempDir(), "missing")); err != nil {
		t.Errorf("EmptyDir(missing) = %v, want nil", err)
	}
	for _, dir := range []string{"", "/", "//"} {
		if err := pg.EmptyDir(dir); err == nil {
			t.Errorf("EmptyDir(%q) = nil, want a refusal", dir)
		}
	}
}

func TestHasCluster(t *testing.T) {
	control := readFile(t, "testdata/pg15-cluster/global/pg_control")
	cases := []struct {
		name  string
		files map[string]string
		want  bool
	}{
		{"empty", nil, false},
		{"PG_VERSION only", map[string]string{"PG_VERSION": "15\n"}, false},
		{"pg_control only", map[string]string{"global/pg_control": control}, false},
		{"truncated pg_control", map[string]string{"PG_VERSION": "15\n", "global/pg_control": control[:10]}, false},
		{"cluster", map[string]string{"PG_VERSION": "15\n", "global/pg_control": control}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, content := range tc.files {
				mustWrite(t, filepath.Join(dir, name), content)
			}
			if got := pg.HasCluster(dir); got != tc.want {
				t.Errorf("HasCluster = %v, want %v", got, tc.want)
			}
		})
	}
}

// The fixture is the pg_control of a PostgreSQL 15 cluster made by initdb on a little-endian
// machine; testdata/pg15-cluster.sysid is what pg_controldata printed for it.
func TestSystemIdentifierFixture(t *testing.T) {
	want, err := strconv.ParseUint(strings.TrimSpace(readFile(t, "testdata/pg15-cluster.sysid")), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	control := readFile(t, "testdata/pg15-cluster/global/pg_control")
	corrupt := []byte(control)
	corrupt[100] ^= 0xff

	cases := []struct {
		name    string
		files   map[string]string
		want    uint64
		wantErr error
	}{
		{"valid", map[string]string{"PG_VERSION": "15\n", "global/pg_control": control}, want, nil},
		{"bit flipped", map[string]string{"PG_VERSION": "15\n", "global/pg_control": string(corrupt)}, 0, pg.ErrControlFileCorrupt},
		{"too short", map[string]string{"PG_VERSION": "15\n", "global/pg_control": control[:12]}, 0, pg.ErrControlFileCorrupt},
		{"no pg_control", map[string]string{"PG_VERSION": "15\n"}, 0, pg.ErrNotACluster},
		{"no PG_VERSION", map[string]string{"global/pg_control": control}, 0, pg.ErrNotACluster},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, content := range tc.files {
				mustWrite(t, filepath.Join(dir, name), content)
			}
			got, err := pg.SystemIdentifier(dir)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr != nil && err == nil) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("SystemIdentifier = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestDataDirVersion(t *testing.T) {
	cases := []struct {
		pgVersion string // "" means no PG_VERSION
		want      int
		wantErr   bool
	}{
		{"15\n", 15, false},
		{"9.6\n", 9, false},
		{"10", 10, false},
		{"", 0, true},
		{"banana\n", 0, true},
	}
	for _, tc := range cases {
		t.Run(strings.TrimSpace(tc.pgVersion), func(t *testing.T) {
			dir := t.TempDir()
			if tc.pgVersion != "" {
				mustWrite(t, filepath.Join(dir, "PG_VERSION"), tc.pgVersion)
			}
			got, err := pg.DataDirVersion(dir)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("DataDirVersion = %d, %v; want %d, error %v", got, err, tc.want, tc.wantErr)
			}
			if tc.pgVersion == "" && !errors.Is(err, pg.ErrNotACluster) {
				t.Errorf("missing PG_VERSION: err = %v, want ErrNotACluster", err)
			}
		})
	}
}

// mustWrite writes a file, making its directory.
func mustWrite(t *testing.T, path, content string) {
	t.Helper()
	mustMkdir(t, filepath.Dir(path))
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func mustMkdir(t *testing.T, path string) {
	t.Helper()
	if err := os.MkdirAll(path, 0o700); err != nil {
		t.Fatal(err)
	}
}

// cluster puts a PostgreSQL 15 PG_VERSION and pg_control into dir.
func cluster(t *testing.T, dir string) {
	t.Helper()
	mustWrite(t, filepath.Join(dir, "PG_VERSION"), "15\n")
	mustWrite(t, filepath.Join(dir, "global", "pg_control"), readFile(t, "testdata/pg15-cluster/global/pg_control"))
}

func TestClusterAboveAndBelow(t *testing.T) {
	cases := []struct {
		name         string
		setup        func(t *testing.T, root string) (dir string)
		above, below string // relative to root; "" for none
	}{
		{"nothing anywhere", func(t *testing.T, root string) string {
			mustMkdir(t, filepath.Join(root, "a", "b"))
			return filepath.Join(root, "a")
		}, "", ""},
		{"missing directory", func(t *testing.T, root string) string { return filepath.Join(root, "nope") }, "", ""},
		{"the directory itself is a cluster", func(t *testing.T, root string) string {
			cluster(t, filepath.Join(root, "data"))
			return filepath.Join(root, "data")
		}, "", ""},
		{"inside a cluster, not yet created", func(t *testing.T, root string) string {
			cluster(t, filepath.Join(root, "main"))
			return filepath.Join(root, "main", "x", "y")
		}, "main", ""},
		{"a cluster three levels below", func(t *testing.T, root string) string {
			cluster(t, filepath.Join(root, "srv", "pg", "15", "main"))
			mustWrite(t, filepath.Join(root, "srv", "notes.txt"), "operator")
			return filepath.Join(root, "srv")
		}, "", "srv/pg/15/main"},
		{"a link to a cluster is not followed", func(t *testing.T, root string) string {
			cluster(t, filepath.Join(root, "main"))
			mustMkdir(t, filepath.Join(root, "d"))
			if err := os.Symlink(filepath.Join(root, "main"), filepath.Join(root, "d", "link")); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(root, "d")
		}, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			dir := tc.setup(t, root)
			rel := func(p string) string {
				if p == "" {
					return ""
				}
				r, _ := filepath.Rel(root, p)
				return r
			}
			above, err := pg.ClusterAbove(dir)
			if err != nil {
				t.Fatal(err)
			}
			if rel(above) != tc.above {
				t.Errorf("ClusterAbove = %q, want %q", rel(above), tc.above)
			}
			below, complete, err := pg.ClusterBelow(dir)
			if err != nil {
				t.Fatal(err)
			}
			if rel(below) != tc.below || !complete {
				t.Errorf("ClusterBelow = %q (complete %v), want %q", rel(below), complete, tc.below)
			}
		})
	}
}
