//go:build linux

package syncfs

import (
	"os"
	"path/filepath"
	"testing"
)

func TestAtLeast(t *testing.T) {
	tests := []struct {
		release string
		want    bool
	}{
		{"5.8.0", true},
		{"5.7.19-generic", false},
		{"6.1.0-18-amd64", true},
		{"5.10", true},
		{"4.19.0", false},
		{"6.18.44-fc-v669", true},
		{"garbage", false},
	}
	for _, tc := range tests {
		if got := atLeast(tc.release, 5, 8); got != tc.want {
			t.Errorf("atLeast(%q, 5, 8) = %v, want %v", tc.release, got, tc.want)
		}
	}
}

// A guard opened on a directory that does not exist yet covers its nearest existing parent's
// file system, and syncs what is written afterwards.
func TestGuardSyncs(t *testing.T) {
	if !Supported() {
		if os.Getenv("CI") == "true" {
			t.Fatal(ErrUnsupported) // CI runs on a kernel where the plugins use syncfs
		}
		t.Skip(ErrUnsupported)
	}
	dir := t.TempDir()
	g, err := Open(filepath.Join(dir, "not", "yet"), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if len(g.files) != 1 {
		t.Errorf("two paths on one file system hold %d descriptors, want 1", len(g.files))
	}
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := g.Sync(); err != nil {
		t.Fatal(err)
	}
}
