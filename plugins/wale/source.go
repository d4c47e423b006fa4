package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgimaged/pgimaged/sdk/libpq"
)

// sourceConnectTimeout bounds the connection to the source when its connection string sets none.
const sourceConnectTimeout = 10 * time.Second

// walDistanceQuery is Patroni's: the WAL between the backup's start and the source's position
// (received or replayed on a standby, written on a primary), in bytes.
const walDistanceQuery = `SELECT CASE WHEN pg_catalog.pg_is_in_recovery()
  THEN GREATEST(pg_catalog.pg_wal_lsn_diff(COALESCE(pg_catalog.pg_last_wal_receive_lsn(), '0/0'), $1::pg_lsn)::bigint,
                pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_last_wal_replay_lsn(), $1::pg_lsn)::bigint)
  ELSE pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), $1::pg_lsn)::bigint END`

// walDistanceQuery9 is the same for PostgreSQL 9.x, whose functions speak of xlog.
const walDistanceQuery9 = `SELECT CASE WHEN pg_catalog.pg_is_in_recovery()
  THEN GREATEST(pg_catalog.pg_xlog_location_diff(COALESCE(pg_catalog.pg_last_xlog_receive_location(), '0/0'), $1::pg_lsn)::bigint,
                pg_catalog.pg_xlog_location_diff(pg_catalog.pg_last_xlog_replay_location(), $1::pg_lsn)::bigint)
  ELSE pg_catalog.pg_xlog_location_diff(pg_catalog.pg_current_xlog_location(), $1::pg_lsn)::bigint END`

// sourcePosition is how far the source's WAL is from a backup's start.
type sourcePosition struct {
	Distance int64
	StartLSN uint64
}

// walDistance connects to the source and measures the WAL between the backup's start and the
// source's position. env carries PGPASSFILE, the source's credentials.
func walDistance(ctx context.Context, connString string, env map[string]string, b backupInfo) (sourcePosition, error) {
	cfg, err := pgx.ParseConfig(libpq.WithPassfile(connString, env["PGPASSFILE"]))
	if err != nil {
		return sourcePosition{}, fmt.Errorf("while reading the source's connection string: %w", err)
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = sourceConnectTimeout
	}
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	if _, ok := cfg.RuntimeParams["application_name"]; !ok {
		cfg.RuntimeParams["application_name"] = "pgimaged-wale"
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return sourcePosition{}, fmt.Errorf("while connecting to the source %s:%d: %w", cfg.Host, cfg.Port, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))

	var setting, unit string
	var versionNum int
	err = conn.QueryRow(ctx, `SELECT s.setting, COALESCE(s.unit, ''), pg_catalog.current_setting('server_version_num')::int
		FROM pg_catalog.pg_settings s WHERE s.name = 'wal_segment_size'`).Scan(&setting, &unit, &versionNum)
	if err != nil {
		return sourcePosition{}, fmt.Errorf("while reading the source's wal_segment_size: %w", err)
	}
	segSize, err := settingBytes(setting, unit)
	if err != nil {
		return sourcePosition{}, fmt.Errorf("while reading the source's wal_segment_size: %w", err)
	}
	start, err := b.StartLSN(segSize)
	if err != nil {
		return sourcePosition{}, fmt.Errorf("while computing where backup %s starts: %w", b.Name, err)
	}
	q := walDistanceQuery
	if versionNum < 100000 {
		q = walDistanceQuery9
	}
	var dist int64
	if err := conn.QueryRow(ctx, q, FormatLSN(start)).Scan(&dist); err != nil {
		return sourcePosition{}, fmt.Errorf("while measuring the source's WAL position against %s: %w", FormatLSN(start), err)
	}
	return sourcePosition{Distance: dist, StartLSN: start}, nil
}

// settingBytes turns a pg_settings value and unit (wal_segment_size: "16777216" "B", or in 9.x
// "2048" "8kB") into bytes.
func settingBytes(setting, unit string) (int64, error) {
	v, err := strconv.ParseInt(setting, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("setting %q: %w", setting, err)
	}
	num := strings.TrimRight(unit, "kMGTB")
	mult := int64(1)
	if num != "" {
		if mult, err = strconv.ParseInt(num, 10, 64); err != nil {
			return 0, fmt.Errorf("unit %q: %w", unit, err)
		}
	}
	switch strings.TrimPrefix(unit, num) {
	case "B", "":
	case "kB":
		mult <<= 10
	case "MB":
		mult <<= 20
	case "GB":
		mult <<= 30
	default:
		return 0, fmt.Errorf("unit %q is not a size", unit)
	}
	return v * mult, nil
}
