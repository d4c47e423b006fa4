package pg

import (
	"context"
	"fmt"
	"time"
)

// ReloadReport is what a running server says once it has re-read its configuration files.
type ReloadReport struct {
	// HBAErrors are the lines of pg_hba.conf PostgreSQL rejects (pg_hba_file_rules); while
	// there is one, it keeps the rules it had.
	HBAErrors []string
	// SettingErrors are the settings of the configuration files it could not apply
	// (pg_file_settings), other than those waiting for a restart.
	SettingErrors []string
	// PendingRestart are the parameters whose new value takes effect only after a restart
	// (pg_settings.pending_restart).
	PendingRestart []string
}

// reloadWait bounds the wait until the server has re-read its configuration files.
const reloadWait = 30 * time.Second

// ReloadConf has the running server re-read its configuration files (pg_reload_conf()), waits
// until it has (pg_conf_load_time() moves), and reports what it rejected and what waits for a
// restart.
func (s *Server) ReloadConf(ctx context.Context) (ReloadReport, error) {
	var rep ReloadReport
	conn, err := s.Connect(ctx)
	if err != nil {
		return rep, fmt.Errorf("while connecting to reload PostgreSQL: %w", err)
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	var before, now time.Time
	if err := conn.QueryRow(ctx, "SELECT pg_conf_load_time()").Scan(&before); err != nil {
		return rep, fmt.Errorf("while reading pg_conf_load_time(): %w", err)
	}
	if _, err := conn.Exec(ctx, "SELECT pg_reload_conf()"); err != nil {
		return rep, fmt.Errorf("while reloading PostgreSQL (pg_reload_conf): %w", err)
	}
	// The postmaster passes the signal on to this backend, which re-reads the files before a
	// later statement: each query below is one more chance.
	deadline := time.Now().Add(reloadWait)
	for {
		if err := conn.QueryRow(ctx, "SELECT pg_conf_load_time()").Scan(&now); err != nil {
			return rep, fmt.Errorf("while reading pg_conf_load_time(): %w", err)
		}
		if now.After(before) {
			break
		}
		if time.Now().After(deadline) {
			return rep, fmt.Errorf("PostgreSQL did not re-read its configuration files within %s of pg_reload_conf()", reloadWait)
		}
		select {
		case <-ctx.Done():
			return rep, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	queries := []struct {
		sql string
		out *[]string
	}{
		{`SELECT format('pg_hba.conf:%s: %s', line_number, error) FROM pg_hba_file_rules WHERE error IS NOT NULL ORDER BY line_number`, &rep.HBAErrors},
		{`SELECT format('%s:%s: %s: %s', sourcefile, sourceline, name, error) FROM pg_file_settings
			WHERE error IS NOT NULL AND name NOT IN (SELECT name FROM pg_settings WHERE pending_restart) ORDER BY seqno`, &rep.SettingErrors},
		{`SELECT name FROM pg_settings WHERE pending_restart ORDER BY name`, &rep.PendingRestart},
	}
	for _, q := range queries {
		rows, err := conn.Query(ctx, q.sql)
		if err != nil {
			return rep, fmt.Errorf("while asking PostgreSQL what its reload rejected: %w", err)
		}
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				rows.Close()
				return rep, fmt.Errorf("while asking PostgreSQL what its reload rejected: %w", err)
			}
			*q.out = append(*q.out, s)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return rep, fmt.Errorf("while asking PostgreSQL what its reload rejected: %w", err)
		}
	}
	return rep, nil
}
