package pg

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Promote ends the recovery of a running standby (pg_ctl promote) and waits until it accepts
// writes. A server that is not in recovery is left as it is. A recovery that has paused is
// resumed by the promotion, as PostgreSQL does.
func (s *Server) Promote(ctx context.Context) error {
	if _, ok := s.Running(); !ok {
		return fmt.Errorf("while promoting PostgreSQL in data directory %q: %w", s.DataDir, ErrNotRunning)
	}
	if in, err := s.InRecovery(ctx); err == nil && !in {
		return nil
	}
	timeout := timeoutSeconds(ctx, s.StartTimeout, time.Minute)
	cmd := s.command(ctx, "pg_ctl", "promote", "-w", "-t", strconv.Itoa(timeout), "-D", s.DataDir)
	if out, err := cmd.CombinedOutput(); err != nil {
		return s.failure("promote", fmt.Errorf("pg_ctl promote: %w: %s", err, oneLine(string(out))))
	}
	return s.WaitPromoted(ctx)
}

// InRecovery asks the running server whether it is in recovery.
func (s *Server) InRecovery(ctx context.Context) (bool, error) {
	conn, err := s.Connect(ctx)
	if err != nil {
		return false, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var in bool
	err = conn.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&in)
	return in, err
}

// Reload makes the running server read its configuration files again (pg_ctl reload). A
// standby applies a changed primary_conninfo or primary_slot_name this way (PostgreSQL 13 and
// later) without a restart.
func (s *Server) Reload(ctx context.Context) error {
	if _, ok := s.Running(); !ok {
		return fmt.Errorf("while reloading PostgreSQL in data directory %q: %w", s.DataDir, ErrNotRunning)
	}
	cmd := s.command(ctx, "pg_ctl", "reload", "-D", s.DataDir)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("while reloading PostgreSQL in data directory %q: pg_ctl reload: %w: %s", s.DataDir, err, oneLine(string(out)))
	}
	return nil
}

// Position is where a running server's WAL stands: its timeline, and on a standby what it has
// received and replayed (on a primary both are its current write position).
type Position struct {
	InRecovery bool
	Timeline   int
	// Receiving: a standby's Timeline is its WAL receiver's (received_tli); without one it is
	// pg_control's, which lags behind a timeline switch until the next restartpoint.
	Receiving bool
	Received  LSN
	Replayed  LSN
}

// Newest is the furthest WAL the server holds: what it received or replayed, whichever is later.
func (p Position) Newest() LSN { return max(p.Received, p.Replayed) }

// WALPosition reads the running server's [Position] in one query.
func (s *Server) WALPosition(ctx context.Context) (Position, error) {
	conn, err := s.Connect(ctx)
	if err != nil {
		return Position{}, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return QueryPosition(ctx, conn)
}

// QueryPosition reads the [Position] of the server conn is connected to, in one query. A
// standby's Replayed falls back to what it received before it replayed anything.
func QueryPosition(ctx context.Context, conn *pgx.Conn) (Position, error) {
	var p Position
	var received, replayed int64
	var receiving bool
	// pg_control_checkpoint's timeline lags behind until the next checkpoint (a promotion does
	// not wait for one): a primary's timeline is its current WAL file's, a standby's the one its
	// WAL receiver receives.
	err := conn.QueryRow(ctx, `SELECT pg_is_in_recovery(),
		CASE WHEN pg_is_in_recovery()
			THEN COALESCE((SELECT received_tli FROM pg_stat_wal_receiver), (SELECT timeline_id FROM pg_control_checkpoint()))
			ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END,
		CASE WHEN pg_is_in_recovery() THEN COALESCE(pg_last_wal_receive_lsn(), '0/0'::pg_lsn) - '0/0'::pg_lsn
			ELSE pg_current_wal_lsn() - '0/0'::pg_lsn END::bigint,
		CASE WHEN pg_is_in_recovery() THEN COALESCE(pg_last_wal_replay_lsn(), pg_last_wal_receive_lsn(), '0/0'::pg_lsn) - '0/0'::pg_lsn
			ELSE pg_current_wal_lsn() - '0/0'::pg_lsn END::bigint,
		EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE received_tli > 0)`).Scan(&p.InRecovery, &p.Timeline, &received, &replayed, &receiving)
	if err != nil {
		return Position{}, err
	}
	p.Received, p.Replayed, p.Receiving = LSN(received), LSN(replayed), receiving && p.InRecovery
	return p, nil
}

// ErrNoTimelineHistory means a timeline has no history file: it is timeline 1, or its file is
// gone from pg_wal.
var ErrNoTimelineHistory = errors.New("no timeline history file")

// SwitchPoint reads where timeline tli branched off its parent from pg_wal/<tli>.history in
// dataDir: the parent timeline and the LSN at which it ended.
func SwitchPoint(dataDir string, tli int) (parent int, at LSN, err error) {
	path := filepath.Join(dataDir, "pg_wal", fmt.Sprintf("%08X.history", tli))
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, 0, fmt.Errorf("timeline %d: %w (%s)", tli, ErrNoTimelineHistory, path)
	}
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	found := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		p, perr := strconv.Atoi(fields[0])
		l, lerr := ParseLSN(fields[1])
		if perr != nil || lerr != nil {
			return 0, 0, fmt.Errorf("%s: unreadable line %q", path, sc.Text())
		}
		parent, at, found = p, l, true
	}
	if err := sc.Err(); err != nil {
		return 0, 0, err
	}
	if !found {
		return 0, 0, fmt.Errorf("%s holds no switch point", path)
	}
	return parent, at, nil
}

// ParseLSN reads an LSN written as PostgreSQL does, "16/B374D848".
func ParseLSN(s string) (LSN, error) {
	hi, lo, ok := strings.Cut(strings.TrimSpace(s), "/")
	h, herr := strconv.ParseUint(hi, 16, 32)
	l, lerr := strconv.ParseUint(lo, 16, 32)
	if !ok || herr != nil || lerr != nil {
		return 0, fmt.Errorf("%q is not an LSN", s)
	}
	return LSN(h<<32 | l), nil
}
