package config_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/pgimaged/pgimaged/core/config"
	"github.com/pgimaged/pgimaged/core/pg"
)

// TestStandbyCluster: the standby_cluster block with Patroni's keys, libpq's multi-host form,
// and PostgreSQL's units for recovery_min_apply_delay.
func TestStandbyCluster(t *testing.T) {
	cases := []struct {
		name, block string
		want        config.StandbyCluster
		remote      *pg.Conn
		recovery    map[string]string
	}{
		{"remote and archive", `
  host                     = "10.1.0.5"
  port                     = 5433
  primary_slot_name        = "site_b"
  create_replica_methods   = ["pgbackrest", "basebackup"]
  restore_command          = "pgbackrest --stanza=main archive-get %f \"%p\""
  archive_cleanup_command  = "pg_archivecleanup /archive %r"
  recovery_min_apply_delay = "5min"`,
			config.StandbyCluster{Host: "10.1.0.5", Ports: []int{5433}, PrimarySlotName: "site_b", CreateReplicaMethods: []string{"pgbackrest", "basebackup"},
				RestoreCommand: `pgbackrest --stanza=main archive-get %f "%p"`, ArchiveCleanupCommand: "pg_archivecleanup /archive %r", RecoveryMinApplyDelay: 5 * time.Minute},
			&pg.Conn{Host: "10.1.0.5", Port: 5433, Database: "postgres"},
			map[string]string{"primary_slot_name": "site_b", "restore_command": `pgbackrest --stanza=main archive-get %f "%p"`,
				"archive_cleanup_command": "pg_archivecleanup /archive %r", "recovery_min_apply_delay": "300000ms"}},
		{"several hosts", `
  host = "10.1.0.5,10.1.0.6"
  port = "5432,5433"
  recovery_min_apply_delay = 1500`,
			config.StandbyCluster{Host: "10.1.0.5,10.1.0.6", Ports: []int{5432, 5433}, CreateReplicaMethods: []string{"basebackup"}, RecoveryMinApplyDelay: 1500 * time.Millisecond},
			&pg.Conn{Host: "10.1.0.5,10.1.0.6", Ports: []int{5432, 5433}, Database: "postgres", Params: map[string]string{"target_session_attrs": "read-write"}},
			map[string]string{"recovery_min_apply_delay": "1500ms"}},
		{"archive only", `
  restore_command = "cp /archive/%f %p"
  create_replica_methods = ["pgbackrest"]`,
			config.StandbyCluster{RestoreCommand: "cp /archive/%f %p", CreateReplicaMethods: []string{"pgbackrest"}},
			nil, map[string]string{"restore_command": "cp /archive/%f %p"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := "scope = \"s\"\nname = \"n\"\ndata_dir = \"/data/pg\"\nstandby_cluster {" + tc.block + "\n}\n"
			cfg, diags := config.Parse("standby.hcl", []byte(src))
			if diags.HasErrors() {
				t.Fatal(describe(diags))
			}
			got := cfg.StandbyCluster
			if got == nil {
				t.Fatal("no StandbyCluster")
			}
			got.DefRange = hcl.Range{}
			if !reflect.DeepEqual(*got, tc.want) {
				t.Errorf("StandbyCluster = %+v\nwant %+v", *got, tc.want)
			}
			if r := got.Remote(); !reflect.DeepEqual(r, tc.remote) {
				t.Errorf("Remote = %#v, want %#v", r, tc.remote)
			}
			if r := got.RecoverySettings(); !reflect.DeepEqual(r, tc.recovery) {
				t.Errorf("RecoverySettings = %v, want %v", r, tc.recovery)
			}
		})
	}
	cfg, diags := config.Parse("none.hcl", []byte("scope = \"s\"\nname = \"n\"\ndata_dir = \"/data/pg\"\n"))
	if diags.HasErrors() || cfg.StandbyCluster != nil {
		t.Errorf("without the block: %+v, %s", cfg.StandbyCluster, describe(diags))
	}
}

// TestStandbyClusterMistakes: each mistake is an error at its place.
func TestStandbyClusterMistakes(t *testing.T) {
	cases := []struct {
		name, block, at, text string
	}{
		{"neither host nor restore_command", `primary_slot_name = "x"`, "standby_cluster {", "restore_command"},
		{"port without host", "port = 5432\nrestore_command = \"cp\"", "5432", "host"},
		{"bad port", `host = "h"` + "\nport = \"5432,x\"", `"5432,x"`, "65535"},
		{"ports do not match hosts", `host = "a,b,c"` + "\nport = \"1,2\"", `"1,2"`, "3 hosts"},
		{"empty host in a list", `host = "a,,b"`, `"a,,b"`, "host"},
		{"bad slot", `host = "h"` + "\nprimary_slot_name = \"Site-B\"", `"Site-B"`, "slot"},
		{"slot without host", "restore_command = \"cp\"\nprimary_slot_name = \"b\"", `"b"`, "host"},
		{"bad delay", `host = "h"` + "\nrecovery_min_apply_delay = \"soon\"", `"soon"`, "duration"},
		{"undefined method", `host = "h"` + "\ncreate_replica_methods = [\"basebackup\", \"nope\"]", `"nope"`, "no method"},
		{"duplicate method", `host = "h"` + "\ncreate_replica_methods = [\"basebackup\", \"basebackup\"]", `"basebackup"]`, "twice"},
		{"unknown key", `host = "h"` + "\nstandby_mode = true", "standby_mode", "standby_mode"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := "scope = \"s\"\nname = \"n\"\ndata_dir = \"/data/pg\"\nstandby_cluster {\n" + tc.block + "\n}\n"
			_, diags := config.Parse("standby.hcl", []byte(src))
			line, col := lineCol(t, src, tc.at)
			for _, d := range diags {
				if d.Severity == hcl.DiagError && d.Subject != nil && d.Subject.Start.Line == line && d.Subject.Start.Column == col &&
					strings.Contains(d.Summary+" "+d.Detail, tc.text) {
					return
				}
			}
			t.Errorf("no error at %d:%d mentioning %q; got:%s", line, col, tc.text, describe(diags))
		})
	}
}
