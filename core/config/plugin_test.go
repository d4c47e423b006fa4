package config_test

import (
	"slices"
	"testing"

	"github.com/pgimaged/pgimaged/core/config"
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
		{"no plugin, no command, no script plugin", config.Method{Label: "barman"}, installed("wale"), ""},
		{"no plugin, no command: the script plugin runs the name", config.Method{Label: "barman"}, installed("wale", "script"), "script"},
		{"a builtin whose plugin is missing never runs its name", config.Method{Label: "basebackup"}, installed("script"), ""},
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
