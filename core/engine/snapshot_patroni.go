package engine

import (
	"context"
	"encoding/json"
	"time"

	"github.com/jackc/pgx/v5"
)

// ServerDetail is what PostgreSQL said of itself in the agent's last cycle beyond recovery
// and position: what Patroni's GET /patroni shows.
type ServerDetail struct {
	// Version is server_version_num (150004 for 15.4).
	Version int
	// PostmasterStart is pg_postmaster_start_time().
	PostmasterStart time.Time
	// PendingRestart: a setting changed in the configuration files needs a restart to apply
	// (pg_settings.pending_restart).
	PendingRestart bool
	// Received is the WAL a standby received, in bytes from 0/0; 0 on a primary or when
	// nothing was received by streaming.
	Received int64
	// ReplayedAt is the commit time of the last transaction a standby replayed; zero when none.
	ReplayedAt time.Time
	// ReplayPaused: a standby's replay is paused (pg_is_wal_replay_paused()).
	ReplayPaused bool
	// Replication lists a primary's WAL senders, as pg_stat_replication shows them.
	Replication []WALSender
}

// WALSender is one row of pg_stat_replication, with Patroni's field names.
type WALSender struct {
	Usename         string `json:"usename"`
	ApplicationName string `json:"application_name"`
	ClientAddr      string `json:"client_addr,omitempty"`
	State           string `json:"state"`
	SyncState       string `json:"sync_state"`
	SyncPriority    int    `json:"sync_priority"`
}

// serverDetailQuery asks in one statement what [ServerDetail] holds.
const serverDetailQuery = `SELECT current_setting('server_version_num')::int,
	pg_postmaster_start_time(),
	EXISTS (SELECT 1 FROM pg_settings WHERE pending_restart),
	CASE WHEN pg_is_in_recovery() THEN COALESCE(pg_last_wal_receive_lsn() - '0/0'::pg_lsn, 0) ELSE 0 END::bigint,
	CASE WHEN pg_is_in_recovery() THEN pg_last_xact_replay_timestamp() END,
	CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() ELSE false END,
	COALESCE((SELECT json_agg(json_build_object('usename', usename, 'application_name', application_name,
		'client_addr', host(client_addr), 'state', state, 'sync_state', sync_state, 'sync_priority', sync_priority))
		FROM pg_stat_replication), '[]')::text`

// queryServerDetail fills s.Server from conn; a failure leaves it empty.
func queryServerDetail(ctx context.Context, conn *pgx.Conn, s *Snapshot) {
	var d ServerDetail
	var replayedAt *time.Time
	var senders string
	if err := conn.QueryRow(ctx, serverDetailQuery).Scan(&d.Version, &d.PostmasterStart, &d.PendingRestart,
		&d.Received, &replayedAt, &d.ReplayPaused, &senders); err != nil {
		return
	}
	if replayedAt != nil {
		d.ReplayedAt = *replayedAt
	}
	if err := json.Unmarshal([]byte(senders), &d.Replication); err != nil {
		d.Replication = nil
	}
	s.Server = d
}
