package config_test

import (
	"fmt"
	"testing"

	"github.com/pgimaged/pgimaged/core/config"
)

// TestHotStandbyOffRefused: every spelling PostgreSQL reads as a boolean's false is refused for
// hot_standby, whatever the case of the name; those it reads as true, and other parameters, are not.
func TestHotStandbyOffRefused(t *testing.T) {
	for value, refused := range map[string]bool{
		"off": true, "OFF": true, " of ": true, "false": true, "f": true, "fal": true, "no": true, "n": true, "0": true,
		"on": false, "true": false, "yes": false, "1": false,
	} {
		src := fmt.Sprintf("scope = \"s\"\nname = \"n\"\ndata_dir = \"/d\"\npostgresql {\n  parameters = { HOT_standby = %q }\n}\n", value)
		_, diags := config.Parse("m.hcl", []byte(src))
		if got := diags.HasErrors(); got != refused {
			t.Errorf("hot_standby = %q: refused %v, want %v: %v", value, got, refused, diags)
		}
	}
	src := "scope = \"s\"\nname = \"n\"\ndata_dir = \"/d\"\npostgresql {\n  parameters = { wal_compression = \"off\" }\n}\n"
	if _, diags := config.Parse("m.hcl", []byte(src)); diags.HasErrors() {
		t.Errorf("another parameter set to off is refused: %v", diags)
	}
}
