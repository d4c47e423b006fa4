package engine

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/pgimaged/pgimaged/core/config"
	"github.com/pgimaged/pgimaged/core/dcs"
	"github.com/pgimaged/pgimaged/core/pg"
)

// reloadRequest is a configuration handed to the agent's loop (or, with invalid set instead,
// the diagnostics of one that does not validate), and where its outcome goes.
type reloadRequest struct {
	cfg     *config.Config
	invalid []string
	reply   chan dcs.ReloadOutcome
}

// reloads is the channel the loop takes reload requests from, between cycles.
func (a *Agent) reloads() chan reloadRequest {
	a.reloadOnce.Do(func() { a.reloadCh = make(chan reloadRequest) })
	return a.reloadCh
}

// Reload hands cfg, a configuration loaded and validated afresh, to the agent's loop, which
// takes it between two cycles, and returns how that ended ([Agent.applyReload]). It waits until
// the loop has taken it (the loop is busy while a method runs) or ctx ends.
func (a *Agent) Reload(ctx context.Context, cfg *config.Config) (dcs.ReloadOutcome, error) {
	return a.askReload(ctx, reloadRequest{cfg: cfg})
}

// RefuseReload is a reload whose configuration file does not validate: diagnostics are its
// diagnostics, as text. The agent keeps the configuration it has; its loop publishes the
// outcome like any other.
func (a *Agent) RefuseReload(ctx context.Context, diagnostics []string) (dcs.ReloadOutcome, error) {
	return a.askReload(ctx, reloadRequest{invalid: diagnostics})
}

func (a *Agent) askReload(ctx context.Context, req reloadRequest) (dcs.ReloadOutcome, error) {
	req.reply = make(chan dcs.ReloadOutcome, 1)
	select {
	case a.reloads() <- req:
	case <-ctx.Done():
		return dcs.ReloadOutcome{}, fmt.Errorf("the agent's loop did not take the reload (it is busy, with a clone say): %w", ctx.Err())
	}
	select {
	case out := <-req.reply:
		return out, nil
	case <-ctx.Done():
		return dcs.ReloadOutcome{}, fmt.Errorf("the agent took the reload and still applies it (`pgimaged status` shows the outcome): %w", ctx.Err())
	}
}

// ConfigInUse is the configuration the agent runs with now.
func (a *Agent) ConfigInUse() *config.Config {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.Node.Config
}

// applyReload takes req's configuration in the loop, which owns the node: refused whole when
// it does not validate (req.invalid), or when
// a setting changed that cannot change while the agent runs ([config.CompareLive]); else the
// configuration replaces the old one, and a running PostgreSQL gets it ([Agent.reloadPG]).
func (a *Agent) applyReload(ctx context.Context, req reloadRequest) {
	n := a.Node
	log := n.logger()
	if req.cfg == nil {
		out := dcs.ReloadOutcome{At: time.Now().UTC(), Invalid: true, Errors: req.invalid}
		a.mu.Lock()
		a.lastReload = &out
		a.mu.Unlock()
		req.reply <- out
		return
	}
	diff := config.CompareLive(n.Config, req.cfg)
	out := dcs.ReloadOutcome{At: time.Now().UTC(), Changed: diff.Changed}
	for _, r := range diff.Refused {
		at := req.cfg.RangeOf(r.Setting)
		out.Refused = append(out.Refused, fmt.Sprintf("%s:%d:%d: %s cannot change while the agent runs: %s", at.Filename, at.Start.Line, at.Start.Column, r.Setting, r.Reason))
	}
	if len(out.Refused) > 0 {
		log.Error("reload refused: the configuration is kept as it was", "refused", out.Refused)
	} else {
		a.mu.Lock()
		n.Config = req.cfg
		if a.srv != nil {
			a.srv.Password = req.cfg.PostgreSQL.Superuser.Password
		}
		a.mu.Unlock()
		if req.cfg.LoopWait > 0 {
			a.LoopWait, a.st.LoopWait = req.cfg.LoopWait, req.cfg.LoopWait
		}
		if a.Reloaded != nil {
			a.Reloaded(req.cfg)
		}
		a.reloadPG(ctx, diff, &out)
		if out.OK() {
			log.Info("configuration reloaded", "changed", out.Changed, "pending_restart", out.PendingRestart, "rotated", out.Rotated)
		} else {
			log.Error("configuration reloaded, but not all of it took effect", "changed", out.Changed, "errors", out.Errors)
		}
	}
	a.mu.Lock()
	a.lastReload = &out
	a.mu.Unlock()
	req.reply <- out
}

// reloadPG gives a running PostgreSQL the configuration just taken: the settings file and
// pg_hba.conf written again, then, on the primary (the leader, out of recovery), the roles'
// passwords set when they changed, and on a standby its pgpass file and primary_conninfo
// written with the replication role's settings, toward the server it follows; then PostgreSQL
// re-reads its files. What PostgreSQL rejects and what waits for a restart go into out.
func (a *Agent) reloadPG(ctx context.Context, diff config.Reload, out *dcs.ReloadOutcome) {
	n := a.Node
	a.setPG(nil)
	st := a.pgStatus(ctx)
	if !st.Running {
		return // the files are written when it starts
	}
	if !st.Queried {
		out.Errors = append(out.Errors, "PostgreSQL runs but does not answer: its configuration files are written when it next starts")
		return
	}
	primary := !st.InRecovery
	if err := pg.WriteSettings(n.Config.DataDir, n.settings(primary)); err != nil {
		out.Errors = append(out.Errors, err.Error())
		return
	}
	passwords := diff.Has(config.SettingSuperuserPassword) || diff.Has(config.SettingReplicationPassword) || diff.Has(config.SettingRewindPassword)
	switch {
	case primary && passwords && a.cl.Leader == n.Config.Name:
		if err := n.ensureRoles(ctx, a.srv); err != nil {
			out.Errors = append(out.Errors, n.secrets().Mask(err.Error()))
		} else {
			rotated := []string{n.superuserName(), n.Config.PostgreSQL.Replication.Username}
			if rw := n.Config.PostgreSQL.Rewind.Username; diff.Has(config.SettingRewindPassword) && rw != "" && !slices.Contains(rotated, rw) {
				rotated = append(rotated, rw)
			}
			out.Rotated = slices.Compact(rotated)
		}
	case st.InRecovery && diff.Has("postgresql.authentication.replication"):
		if err := n.rewriteStandby(); err != nil {
			out.Errors = append(out.Errors, n.secrets().Mask(err.Error()))
		}
	}
	rep, err := a.srv.ReloadConf(ctx)
	a.setPG(nil)
	if err != nil {
		out.Errors = append(out.Errors, err.Error())
		return
	}
	for _, e := range rep.HBAErrors {
		out.Errors = append(out.Errors, "PostgreSQL rejects "+e+" (it keeps the pg_hba rules it had)")
	}
	for _, e := range rep.SettingErrors {
		out.Errors = append(out.Errors, "PostgreSQL rejects "+e)
	}
	out.PendingRestart = rep.PendingRestart
	a.snap.mu.Lock()
	a.snap.snap.Server.PendingRestart = len(rep.PendingRestart) > 0
	a.snap.mu.Unlock()
}

// rewriteStandby writes the standby's pgpass file and primary_conninfo again toward the server
// primary_conninfo names, with the replication role's password and TLS settings as the
// configuration has them now; the other recovery settings stay.
func (n *Node) rewriteStandby() error {
	settings, err := pg.ReadRecovery(n.Config.DataDir)
	if err != nil {
		return err
	}
	conninfo := settings["primary_conninfo"]
	if conninfo == "" {
		return nil // it replays from an archive: no connection to give a password to
	}
	conn, _, err := pg.ParseConnURL(passfileKey.ReplaceAllString(conninfo, "$1"))
	if err != nil {
		return fmt.Errorf("while reading the standby's primary_conninfo to write it again: %w", err)
	}
	delete(conn.Params, "application_name")
	delete(settings, "primary_conninfo")
	return n.writeStandby(replicationSource(n, "", conn), nil, settings, false)
}
