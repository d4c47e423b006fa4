package config_test

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"

	"github.com/pgimaged/pgimaged/core/config"
	"github.com/pgimaged/pgimaged/sdk"
)

const seedHead = "scope = \"s\"\nname = \"n\"\ndata_dir = \"/srv/pg/n\"\n"

// The seed spells the replica method list create_replica_method: it is the same list, said in
// a warning at its place; later diagnostics about its elements point into it; both spellings at
// once are an error.
func TestCreateReplicaMethodSeedSpelling(t *testing.T) {
	t.Run("singular", func(t *testing.T) {
		src := seedHead + "method \"wal_e\" { command = \"/usr/bin/wale_restore\" }\npostgresql {\n  create_replica_method = [\"wal_e\", \"basebackup\"]\n}\n"
		cfg, diags := config.Parse("seed.hcl", []byte(src))
		if diags.HasErrors() {
			t.Fatalf("diagnostics:%s", describe(diags))
		}
		if got := cfg.PostgreSQL.CreateReplicaMethods; !slices.Equal(got, []string{"wal_e", "basebackup"}) {
			t.Errorf("create_replica_methods = %q", got)
		}
		if len(diags) != 1 || diags[0].Severity != hcl.DiagWarning || !strings.Contains(diags[0].Detail, "same list") ||
			diags[0].Subject == nil || diags[0].Subject.Filename != "seed.hcl" || diags[0].Subject.Start.Line != 6 || diags[0].Subject.Start.Column != 3 {
			t.Errorf("want one warning at seed.hcl:6:3 saying it is the same list, got:%s", describe(diags))
		}
	})
	t.Run("singular with an undefined method", func(t *testing.T) {
		src := seedHead + "postgresql {\n  create_replica_method = [\"basebackup\", \"barman\"]\n}\n"
		_, diags := config.Parse("seed.hcl", []byte(src))
		var undefined *hcl.Diagnostic
		for _, d := range diags {
			if d.Summary == "Undefined method" {
				undefined = d
			}
		}
		if undefined == nil || undefined.Subject.Start.Line != 5 || undefined.Subject.Start.Column != 42 {
			t.Errorf("want the undefined method at seed.hcl:5:42, got:%s", describe(diags))
		}
	})
	t.Run("both", func(t *testing.T) {
		src := seedHead + "postgresql {\n  create_replica_methods = [\"basebackup\"]\n  create_replica_method  = [\"basebackup\"]\n}\n"
		_, diags := config.Parse("seed.hcl", []byte(src))
		if !diags.HasErrors() || len(diags) != 1 || diags[0].Summary != "Conflicting settings" ||
			diags[0].Subject.Start.Line != 6 || diags[0].Subject.Start.Column != 3 || !strings.Contains(diags[0].Detail, "seed.hcl:5") {
			t.Errorf("want one error at seed.hcl:6:3 naming the other at line 5, got:%s", describe(diags))
		}
	})
}

// A command whose program is a relative path is resolved against the pgimaged program's
// directory, as the seed resolves it against the patroni command's; absolute programs and bare
// names (found in PATH) are left as written.
func TestRelativeCommandStartsAtTheProgramDirectory(t *testing.T) {
	prog := t.TempDir()
	saved := config.ProgramDir
	config.ProgramDir = prog
	t.Cleanup(func() { config.ProgramDir = saved })
	for _, tc := range []struct {
		command, want, written string
	}{
		{`scripts/restore --fast`, filepath.Join(prog, "scripts/restore") + " --fast", "scripts/restore"},
		{`./restore 'a b' c`, filepath.Join(prog, "restore") + ` 'a b' c`, "./restore"},
		{`/usr/local/bin/restore --fast`, `/usr/local/bin/restore --fast`, ""},
		{`wal-g backup-fetch`, `wal-g backup-fetch`, ""},
	} {
		t.Run(tc.command, func(t *testing.T) {
			src := seedHead + fmt.Sprintf("method \"custom\" { command = %q }\npostgresql { create_replica_methods = [\"custom\"] }\n", tc.command)
			cfg, diags := config.Parse("seed.hcl", []byte(src))
			if diags.HasErrors() {
				t.Fatalf("diagnostics:%s", describe(diags))
			}
			m := cfg.Method("custom")
			if m.Command != tc.want || m.CommandWritten != tc.written {
				t.Errorf("command %q (written %q), want %q (written %q)", m.Command, m.CommandWritten, tc.want, tc.written)
			}
			if words, err := sdk.SplitCommand(m.Command); err != nil || len(words) == 0 {
				t.Errorf("the resolved command does not split: %v", err)
			}
		})
	}
}
