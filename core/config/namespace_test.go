package config_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgimaged/pgimaged/core/config"
)

// The dcs block's namespace defaults to Patroni's, is kept as written on both kinds, and is
// refused at its place when it names no path or climbs out with "..".
func TestDCSNamespace(t *testing.T) {
	for _, tc := range []struct {
		dcs, want, err string
	}{
		{`dcs "file" {}`, config.DefaultNamespace, ""},
		{`dcs "file" { namespace = "/pg/" }`, "/pg/", ""},
		{`dcs "etcd" {
  endpoints = ["127.0.0.1:2379"]
  namespace = "/clusters/"
}`, "/clusters/", ""},
		{`dcs "etcd" { endpoints = ["127.0.0.1:2379"] }`, config.DefaultNamespace, ""},
		{`dcs "file" { namespace = "/" }`, "", "Invalid namespace"},
		{`dcs "file" { namespace = "/a/../../b" }`, "", "Invalid namespace"},
	} {
		src := fmt.Sprintf("scope = \"s\"\nname = \"n\"\ndata_dir = \"/d\"\n%s\n", tc.dcs)
		cfg, diags := config.Parse(filepath.Join(t.TempDir(), "c.hcl"), []byte(src))
		if tc.err != "" {
			if !diags.HasErrors() || !strings.Contains(diags.Error(), tc.err) || diags[0].Subject == nil || diags[0].Subject.Start.Line != 4 {
				t.Errorf("%s: diagnostics %v, want %q on line 4", tc.dcs, diags, tc.err)
			}
			continue
		}
		if diags.HasErrors() {
			t.Errorf("%s: %v", tc.dcs, diags)
			continue
		}
		if cfg.DCS.Namespace != tc.want {
			t.Errorf("%s: namespace %q, want %q", tc.dcs, cfg.DCS.Namespace, tc.want)
		}
	}
}
