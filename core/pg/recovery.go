package pg

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/pgimaged/pgimaged/sdk"
)

// RecoveryFile is the include file [WriteRecovery] writes recovery settings into for
// PostgreSQL 12 and later.
const RecoveryFile = "postgresql.pgimaged-recovery.conf"

// recoveryParameters are the settings that only mean something during recovery, the ones
// [RemoveRecovery] strips from postgresql.auto.conf. standby_mode and trigger_file are the
// pre-12 names.
var recoveryParameters = map[string]bool{
	"archive_cleanup_command":   true,
	"primary_conninfo":          true,
	"primary_slot_name":         true,
	"promote_trigger_file":      true,
	"recovery_end_command":      true,
	"recovery_min_apply_delay":  true,
	"recovery_target":           true,
	"recovery_target_action":    true,
	"recovery_target_inclusive": true,
	"recovery_target_lsn":       true,
	"recovery_target_name":      true,
	"recovery_target_time":      true,
	"recovery_target_timeline":  true,
	"recovery_target_xid":       true,
	"restore_command":           true,
	"standby_mode":              true,
	"trigger_file":              true,
}

// IsRecoveryParameter reports whether name is a setting that only matters during recovery
// (restore_command, recovery_target_*, primary_conninfo, standby_mode, ...).
func IsRecoveryParameter(name string) bool { return recoveryParameters[strings.ToLower(name)] }

// Recovery is what PostgreSQL reads when it starts in recovery: a point-in-time restore, or a
// standby following a primary.
type Recovery struct {
	// Settings are recovery_target_time, restore_command, primary_conninfo, ... as
	// name → value. A standby_mode among them ("on", "true", ...) is the same as Standby.
	Settings map[string]string

	// Standby keeps the server in recovery, following a primary or an archive, instead of
	// ending recovery at the target: standby.signal rather than recovery.signal (12 and later),
	// standby_mode = 'on' (before 12).
	Standby bool
}

// WriteRecovery makes the cluster in dir start in recovery. For major 12 and later it writes the
// settings into postgresql.pgimaged-recovery.conf, includes that from postgresql.conf, creates
// recovery.signal or standby.signal (removing the other and any recovery.conf, which those
// versions refuse to start with) and drops the same settings from postgresql.auto.conf, which
// would otherwise override them. Before 12 it writes recovery.conf.
func WriteRecovery(dir string, major int, r Recovery) error {
	wrap := func(err error) error {
		return fmt.Errorf("while writing recovery settings into data directory %q: %w", dir, err)
	}
	settings := make(map[string]string, len(r.Settings)+1)
	standby := r.Standby
	for k, v := range r.Settings {
		if !validParamName(k) {
			return wrap(fmt.Errorf("%q is not a parameter name", k))
		}
		k = strings.ToLower(k)
		if k == "standby_mode" {
			on, err := sdk.ParseBool(v)
			if err != nil {
				return wrap(fmt.Errorf("standby_mode: %w", err))
			}
			standby = standby || on
			continue
		}
		settings[k] = v
	}

	var b strings.Builder
	if major >= 12 {
		b.WriteString("# Recovery settings written by pgimaged; removed when recovery is not wanted.\n")
	} else {
		b.WriteString("# Written by pgimaged.\n")
		if standby {
			settings["standby_mode"] = "on"
		}
	}
	for _, k := range slices.Sorted(maps.Keys(settings)) {
		fmt.Fprintf(&b, "%s = %s\n", k, QuoteConfValue(settings[k]))
	}

	if major < 12 {
		if err := writeFileAtomic(filepath.Join(dir, "recovery.conf"), []byte(b.String()), 0o600); err != nil {
			return wrap(err)
		}
		return nil
	}
	if err := writeFileAtomic(filepath.Join(dir, RecoveryFile), []byte(b.String()), 0o600); err != nil {
		return wrap(err)
	}
	if err := ensureInclude(dir, RecoveryFile); err != nil {
		return wrap(err)
	}
	if err := removeSettings(filepath.Join(dir, "postgresql.auto.conf"), func(name string) bool {
		_, ours := settings[name]
		return ours
	}); err != nil {
		return wrap(err)
	}
	signal, other := "recovery.signal", "standby.signal"
	if standby {
		signal, other = other, signal
	}
	if err := removeFiles(dir, other, "recovery.conf"); err != nil {
		return wrap(err)
	}
	if err := writeFileAtomic(filepath.Join(dir, signal), nil, 0o600); err != nil {
		return wrap(err)
	}
	return nil
}

// RemoveRecovery makes the cluster in dir start as a primary: it removes recovery.conf,
// recovery.signal, standby.signal and postgresql.pgimaged-recovery.conf, and strips recovery
// settings (see [IsRecoveryParameter]) from postgresql.auto.conf, where tools such as pgBackRest
// leave them. This is what keep_existing_recovery_conf = false asks for.
func RemoveRecovery(dir string) error {
	if err := removeFiles(dir, "recovery.conf", "recovery.signal", "standby.signal", RecoveryFile); err != nil {
		return fmt.Errorf("while removing recovery settings from data directory %q: %w", dir, err)
	}
	if err := removeSettings(filepath.Join(dir, "postgresql.auto.conf"), IsRecoveryParameter); err != nil {
		return fmt.Errorf("while removing recovery settings from data directory %q: %w", dir, err)
	}
	return nil
}

// RecoveryMode tells how the cluster in dir starts: as a standby (standby.signal, or a
// recovery.conf with standby_mode on), in a recovery that ends in a promotion (recovery.signal,
// or a recovery.conf without standby_mode), or neither.
func RecoveryMode(dir string) (standby, ending bool) {
	if _, err := os.Lstat(filepath.Join(dir, "standby.signal")); err == nil {
		return true, false
	}
	if _, err := os.Lstat(filepath.Join(dir, "recovery.signal")); err == nil {
		return false, true
	}
	lines, ok, err := readLines(filepath.Join(dir, "recovery.conf"))
	if !ok || err != nil {
		return false, ok
	}
	for _, line := range lines {
		if name, value, ok := parseConfLine(line); ok && name == "standby_mode" {
			if on, err := sdk.ParseBool(value); err == nil && on {
				return true, false
			}
		}
	}
	return false, true
}

func removeFiles(dir string, names ...string) error {
	for _, n := range names {
		if err := os.Remove(filepath.Join(dir, n)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// ReadRecovery reads back the recovery settings [WriteRecovery] wrote into dir for PostgreSQL
// 12 and later (empty when there are none), so that a running standby's settings can be
// compared with what they should be.
func ReadRecovery(dir string) (map[string]string, error) {
	lines, _, err := readLines(filepath.Join(dir, RecoveryFile))
	if err != nil {
		return nil, fmt.Errorf("while reading the recovery settings of data directory %q: %w", dir, err)
	}
	settings := map[string]string{}
	for _, l := range lines {
		if name, value, ok := parseConfLine(l); ok {
			settings[name] = value
		}
	}
	return settings, nil
}
