package pg

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// SyncFile is the include file that holds synchronous_standby_names while pgimaged keeps it
// (synchronous mode): included after [SettingsFile], so it wins over the parameters, and
// removed when synchronous mode is off.
const SyncFile = "postgresql.pgimaged-sync.conf"

// WriteSynchronousStandbyNames writes value as synchronous_standby_names into [SyncFile] of
// dir (included from postgresql.conf), or removes the file when set is false. changed reports
// whether the file changed: PostgreSQL applies it on a reload.
func WriteSynchronousStandbyNames(dir, value string, set bool) (changed bool, err error) {
	path := filepath.Join(dir, SyncFile)
	old, rerr := os.ReadFile(path)
	exists := rerr == nil
	if rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
		return false, fmt.Errorf("while reading %q: %w", path, rerr)
	}
	if !set {
		if !exists {
			return false, nil
		}
		if err := os.Remove(path); err != nil {
			return false, fmt.Errorf("while removing %q: %w", path, err)
		}
		return true, nil
	}
	content := []byte("# Written by pgimaged in synchronous mode; edits here are overwritten.\n" +
		"synchronous_standby_names = " + QuoteConfValue(value) + "\n")
	if exists && bytes.Equal(old, content) {
		return false, nil
	}
	if err := writeFileAtomic(path, content, 0o600); err != nil {
		return false, fmt.Errorf("while writing %q: %w", path, err)
	}
	if err := ensureInclude(dir, SyncFile); err != nil {
		return false, fmt.Errorf("while including %q from postgresql.conf: %w", SyncFile, err)
	}
	return true, nil
}

// SynchronousStandbyNames is synchronous_standby_names naming members, each quoted (so that
// any application_name matches exactly): all of them synchronous at once.
func SynchronousStandbyNames(members []string) string {
	quoted := make([]string, len(members))
	for i, m := range members {
		quoted[i] = `"` + strings.ReplaceAll(m, `"`, `""`) + `"`
	}
	if len(quoted) == 1 {
		return quoted[0]
	}
	return "FIRST " + strconv.Itoa(len(quoted)) + " (" + strings.Join(quoted, ", ") + ")"
}

// Slot is a physical replication slot as pg_replication_slots shows it.
type Slot struct {
	Name   string
	Active bool
}

// PhysicalSlots lists the physical replication slots of the server conn is connected to.
func PhysicalSlots(ctx context.Context, conn *pgx.Conn) ([]Slot, error) {
	rows, err := conn.Query(ctx, `SELECT slot_name, active FROM pg_replication_slots WHERE slot_type = 'physical' ORDER BY slot_name`)
	if err != nil {
		return nil, fmt.Errorf("while listing replication slots: %w", err)
	}
	slots, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Slot, error) {
		var s Slot
		err := r.Scan(&s.Name, &s.Active)
		return s, err
	})
	if err != nil {
		return nil, fmt.Errorf("while listing replication slots: %w", err)
	}
	return slots, nil
}

// CreatePhysicalSlot creates the physical replication slot name, reserving WAL at once; one
// that exists already is not an error.
func CreatePhysicalSlot(ctx context.Context, conn *pgx.Conn, name string) error {
	_, err := conn.Exec(ctx, `SELECT pg_create_physical_replication_slot($1, true)`, name)
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "42710" { // duplicate_object
		return nil
	}
	if err != nil {
		return fmt.Errorf("while creating replication slot %q: %w", name, err)
	}
	return nil
}

// DropSlot drops the replication slot name; one that is gone already is not an error.
func DropSlot(ctx context.Context, conn *pgx.Conn, name string) error {
	_, err := conn.Exec(ctx, `SELECT pg_drop_replication_slot($1)`, name)
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "42704" { // undefined_object
		return nil
	}
	if err != nil {
		return fmt.Errorf("while dropping replication slot %q: %w", name, err)
	}
	return nil
}

// Replica is a standby connected to this server, as pg_stat_replication shows it.
type Replica struct {
	// ApplicationName is the standby's application_name: pgimaged's replicas give their
	// member name.
	ApplicationName string
	// State is the WAL sender's state ("streaming", "catchup", ...), SyncState its sync_state
	// ("sync", "quorum", "potential", "async").
	State, SyncState string
	// Flush is where the standby has flushed WAL to, in bytes.
	Flush int64
}

// StatReplication lists the standbys connected to the server conn is connected to.
func StatReplication(ctx context.Context, conn *pgx.Conn) ([]Replica, error) {
	rows, err := conn.Query(ctx, `SELECT application_name, COALESCE(state, ''), COALESCE(sync_state, ''),
		COALESCE((flush_lsn - '0/0')::bigint, 0) FROM pg_stat_replication`)
	if err != nil {
		return nil, fmt.Errorf("while reading pg_stat_replication: %w", err)
	}
	reps, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Replica, error) {
		var x Replica
		err := r.Scan(&x.ApplicationName, &x.State, &x.SyncState, &x.Flush)
		return x, err
	})
	if err != nil {
		return nil, fmt.Errorf("while reading pg_stat_replication: %w", err)
	}
	return reps, nil
}
