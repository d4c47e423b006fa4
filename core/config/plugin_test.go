package config_test

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/hcl/v2"

	"github.com/pgimaged/pgimaged/core/config"
	"github.com/pgimaged/pgimaged/sdk"
)

func TestPluginNameFor(t *testing.T) {
	installed := func(names ...string) func(string) bool {
		return func(n string) bool { return slices.Contains(names, n) }
	}
	tests := []struct {
		name      string
		method    config.Method
		available func(string) bool
		want      string
	}{
		{"plugin attribute wins", config.Method{Label: "wal_e", Plugin: "pgbackrest", Command: "x"}, installed("wale"), "pgbackrest"},
		{"label with underscore finds wale", config.Method{Label: "wal_e"}, installed("wale", "script"), "wale"},
		{"label as written first", config.Method{Label: "basebackup"}, installed("basebackup"), "basebackup"},
		{"label case and dashes folded", config.Method{Label: "PG-BackRest"}, installed("pgbackrest"), "pgbackrest"},
		{"command means script even if a plugin is named like the label", config.Method{Label: "wal_e", Command: "patroni_wale_restore"}, installed("wale", "script"), "script"},
		{"no plugin, no command", config.Method{Label: "barman"}, installed("wale"), ""},
		{"nil lookup", config.Method{Label: "wale"}, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := config.PluginNameFor(&tt.method, tt.available); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRefusedOption(t *testing.T) {
	rng := func(line int) hcl.Range {
		return hcl.Range{Filename: "x.hcl", Start: hcl.Pos{Line: line, Column: 3}, End: hcl.Pos{Line: line, Column: 9}}
	}
	opts := sdk.Options{{Name: "verbose", Flag: true}, {Name: "format", Value: "tar"}, {Name: "max-rate", Value: "1M"}, {Name: "dbname", Value: "x"}}
	ranges := []hcl.Range{rng(1), rng(2), rng(3), rng(4)}
	diags := config.RefusedOption(opts, ranges, []string{"format", "dbname", "pgdata"})
	var got []int
	for _, d := range diags {
		if d.Severity != hcl.DiagError || d.Subject == nil {
			t.Fatalf("got %+v", d)
		}
		got = append(got, d.Subject.Start.Line)
	}
	if diff := cmp.Diff([]int{2, 4}, got); diff != "" {
		t.Errorf("refused options at lines (-want +got):\n%s", diff)
	}
	if diags := config.RefusedOption(opts, ranges, config.InitdbRefused); len(diags) != 0 {
		t.Errorf("nothing refused expected, got%s", describe(diags))
	}
}
