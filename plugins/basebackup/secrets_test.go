package main

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/pgimaged/pgimaged/sdk"
)

func TestSecrets(t *testing.T) {
	pf := filepath.Join(t.TempDir(), "pgpass")
	if err := os.WriteFile(pf, []byte("h:5432:*:u:pg\\:pass\n# comment\n*:*:*:v:second\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		req  sdk.CloneRequest
		want []string
	}{
		{"url", sdk.CloneRequest{ConnString: "postgres://u:url%20pw@h/db"}, []string{"url pw"}},
		{"keywords", sdk.CloneRequest{ConnString: `host=h user=u password='kw \'pw'`}, []string{"kw 'pw"}},
		{"pgpass", sdk.CloneRequest{ConnString: "host=h user=u", Env: map[string]string{"PGPASSFILE": pf}}, []string{"pg:pass", "second"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := secrets(tt.req)
			for _, w := range tt.want {
				if !slices.Contains(got, w) {
					t.Errorf("secrets %q lack %q", got, w)
				}
			}
		})
	}
}
