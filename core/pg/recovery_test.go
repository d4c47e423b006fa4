package pg_test

import (
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgimaged/pgimaged/core/pg"
)

var pitr = map[string]string{
	"restore_command":          `cp "/archive/it's here/%f" "%p"`,
	"recovery_target_time":     "2024-01-01 00:00:00+00",
	"recovery_target_action":   "promote",
	"recovery_target_timeline": "latest",
	"primary_conninfo":         `host=10.0.0.1 user=replicator passfile='C:\pg\pass'`,
}

func TestWriteRecoveryBefore12WritesRecoveryConf(t *testing.T) {
	cases := []struct {
		name   string
		r      pg.Recovery
		golden string
	}{
		{"standby", pg.Recovery{Settings: pitr, Standby: true}, "recovery/want/recovery.conf.standby"},
		{"point in time", pg.Recovery{Settings: pitr}, "recovery/want/recovery.conf.pitr"},
		{"standby_mode among the settings", pg.Recovery{Settings: map[string]string{
			"standby_mode": "on", "primary_conninfo": "host=10.0.0.1"}}, "recovery/want/recovery.conf.standby_mode"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := pg.WriteRecovery(dir, 11, tc.r); err != nil {
				t.Fatal(err)
			}
			golden(t, tc.golden, readFile(t, filepath.Join(dir, "recovery.conf")))
			for _, f := range []string{"recovery.signal", "standby.signal", pg.RecoveryFile} {
				if exists(filepath.Join(dir, f)) {
					t.Errorf("%s written for PostgreSQL 11", f)
				}
			}
			if fi, err := os.Stat(filepath.Join(dir, "recovery.conf")); err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("recovery.conf mode %v (%v), want 0600", fi.Mode().Perm(), err)
			}
		})
	}
}

func TestWriteRecoveryFrom12(t *testing.T) {
	cases := []struct {
		name       string
		r          pg.Recovery
		signal     string
		noSignal   string
		wantInFile []string
	}{
		{"standby", pg.Recovery{Standby: true, Settings: map[string]string{"primary_conninfo": "host=10.0.0.1 user=replicator"}},
			"standby.signal", "recovery.signal", []string{"primary_conninfo = 'host=10.0.0.1 user=replicator'\n"}},
		{"standby_mode among the settings", pg.Recovery{Settings: map[string]string{"standby_mode": "true", "restore_command": "cp %f %p"}},
			"standby.signal", "recovery.signal", []string{"restore_command = 'cp %f %p'\n"}},
		{"point in time", pg.Recovery{Settings: pitr},
			"recovery.signal", "standby.signal", []string{
				`restore_command = 'cp "/archive/it''s here/%f" "%p"'` + "\n",
				`primary_conninfo = 'host=10.0.0.1 user=replicator passfile=''C:\\pg\\pass'''` + "\n",
				"recovery_target_action = 'promote'\n",
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			copyDir(t, "testdata/settings/in", dir)
			copyDir(t, "testdata/recovery/in", dir)
			mustWrite(t, filepath.Join(dir, tc.noSignal), "")
			mustWrite(t, filepath.Join(dir, "recovery.conf"), "standby_mode = 'on'\n")
			for round := 1; round <= 2; round++ {
				if err := pg.WriteRecovery(dir, 15, tc.r); err != nil {
					t.Fatal(err)
				}
			}
			if !exists(filepath.Join(dir, tc.signal)) || exists(filepath.Join(dir, tc.noSignal)) {
				t.Errorf("want %s and no %s", tc.signal, tc.noSignal)
			}
			if exists(filepath.Join(dir, "recovery.conf")) {
				t.Error("recovery.conf left behind; PostgreSQL 12 and later refuse to start with it")
			}
			conf := readFile(t, filepath.Join(dir, pg.RecoveryFile))
			for _, w := range tc.wantInFile {
				if !strings.Contains(conf, w) {
					t.Errorf("%s lacks %q:\n%s", pg.RecoveryFile, w, conf)
				}
			}
			if strings.Contains(conf, "standby_mode") {
				t.Errorf("standby_mode written for PostgreSQL 15, which refuses it:\n%s", conf)
			}
			main := readFile(t, filepath.Join(dir, "postgresql.conf"))
			if n := strings.Count(main, "include_if_exists = '"+pg.RecoveryFile+"'"); n != 1 {
				t.Errorf("postgresql.conf includes %s %d times, want 1:\n%s", pg.RecoveryFile, n, main)
			}
			// postgresql.auto.conf is read last: a setting written here must not be overridden there.
			auto := readFile(t, filepath.Join(dir, "postgresql.auto.conf"))
			for name := range tc.r.Settings {
				if name != "standby_mode" && strings.Contains(strings.ToLower(auto), name) {
					t.Errorf("postgresql.auto.conf still sets %s, overriding pgimaged's:\n%s", name, auto)
				}
			}
			if !strings.Contains(auto, "work_mem = '8MB'") {
				t.Errorf("postgresql.auto.conf lost an unrelated setting:\n%s", auto)
			}
		})
	}
}

func TestWriteRecoveryRefusesBadStandbyMode(t *testing.T) {
	err := pg.WriteRecovery(t.TempDir(), 15, pg.Recovery{Settings: map[string]string{"standby_mode": "perhaps"}})
	if err == nil {
		t.Error("WriteRecovery accepted standby_mode = 'perhaps'")
	}
}

func TestRemoveRecovery(t *testing.T) {
	dir := t.TempDir()
	copyDir(t, "testdata/settings/in", dir)
	copyDir(t, "testdata/recovery/in", dir)
	if err := pg.WriteRecovery(dir, 15, pg.Recovery{Standby: true, Settings: map[string]string{"recovery_min_apply_delay": "5min"}}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"recovery.conf", "recovery.signal"} {
		mustWrite(t, filepath.Join(dir, f), "")
	}
	if standby, ending := pg.RecoveryMode(dir); !standby && !ending {
		t.Fatal("no recovery with recovery.conf and recovery.signal present")
	}

	if err := pg.RemoveRecovery(dir); err != nil {
		t.Fatal(err)
	}
	if standby, ending := pg.RecoveryMode(dir); standby || ending {
		t.Error("recovery left after RemoveRecovery")
	}
	for _, f := range []string{"recovery.conf", "recovery.signal", "standby.signal", pg.RecoveryFile} {
		if exists(filepath.Join(dir, f)) {
			t.Errorf("%s left behind", f)
		}
	}
	golden(t, "recovery/want/postgresql.auto.conf", readFile(t, filepath.Join(dir, "postgresql.auto.conf")))

	// Nothing to remove is no error.
	if err := pg.RemoveRecovery(t.TempDir()); err != nil {
		t.Errorf("RemoveRecovery on a directory without recovery settings: %v", err)
	}
}

func TestReadRecoveryReadsWhatWriteRecoveryWrote(t *testing.T) {
	dir := t.TempDir()
	want := map[string]string{"primary_conninfo": "host=10.0.0.1 port=5433 user=replicator passfile='/x y/pgpass'", "restore_command": "cp /a/%f \"%p\""}
	if got, err := pg.ReadRecovery(dir); err != nil || len(got) != 0 {
		t.Fatalf("ReadRecovery with no settings = %v, %v", got, err)
	}
	if err := pg.WriteRecovery(dir, 15, pg.Recovery{Standby: true, Settings: want}); err != nil {
		t.Fatal(err)
	}
	got, err := pg.ReadRecovery(dir)
	if err != nil || !maps.Equal(got, want) {
		t.Fatalf("ReadRecovery = %v, %v; want %v", got, err, want)
	}
}
