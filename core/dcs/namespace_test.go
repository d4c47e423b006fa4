package dcs_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/pgimaged/pgimaged/core/dcs"
)

// The file store keeps a scope's keys under its namespace, as Patroni does, and a namespace
// never leads out of the store's directory.
func TestFileNamespace(t *testing.T) {
	for _, tc := range []struct{ namespace, want string }{
		{"", "service/batman"},
		{"/service/", "service/batman"},
		{"/pg/clusters/", "pg/clusters/batman"},
		{"relative", "relative/batman"},
		{"/../../escape", "escape/batman"},
	} {
		dir := t.TempDir()
		s, err := dcs.OpenFile(t.Context(), dcs.FileConfig{Path: dir, Namespace: tc.namespace}, "batman", testLogger(t))
		if err != nil {
			t.Fatalf("namespace %q: %v", tc.namespace, err)
		}
		if err := s.PutMember(t.Context(), dcs.Member{Name: "node1"}); err != nil {
			t.Fatalf("namespace %q: %v", tc.namespace, err)
		}
		if _, err := os.Stat(filepath.Join(dir, tc.want, "members", "node1")); err != nil {
			t.Errorf("namespace %q: the member key is not under %s: %v", tc.namespace, tc.want, err)
		}
		s.Close()
	}
}
