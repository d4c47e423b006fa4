package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/pgimaged/pgimaged/core/config"
	"github.com/pgimaged/pgimaged/core/dcs"
	"github.com/pgimaged/pgimaged/core/pg"
	"github.com/pgimaged/pgimaged/sdk"
)

// BootstrapOptions adjusts a bootstrap.
type BootstrapOptions struct {
	// ImageOnly stops once the method has filled the data directory and recovery settings are
	// written: what Patroni expects of a custom bootstrap command.
	ImageOnly bool
	// KeepMarker leaves the incomplete marker in place on success; the caller clears it once
	// the cluster is recorded (the node agent, after writing the system identifier to the DCS).
	KeepMarker bool
}

// BootstrapResult is a cluster that came up.
type BootstrapResult struct {
	Method           string
	SystemIdentifier uint64
	Result           sdk.Result
	Running          bool
	// CriticalPath is the timeline of this bootstrap.
	CriticalPath *dcs.CriticalPath
}

// BootstrapMethod is bootstrap.method (its default set by [config.Config.ApplyDefaults]).
func (n *Node) BootstrapMethod() string { return n.Config.Bootstrap.Method }

// bootstrapRequest builds what the bootstrap method's plugin gets.
func (n *Node) bootstrapRequest(m *config.Method) sdk.BootstrapRequest {
	opts := m.Options
	if m.Label == config.DefaultBootstrap {
		opts = append(append(sdk.Options{}, n.Config.Bootstrap.Initdb...), m.Options...)
	}
	return sdk.BootstrapRequest{
		Method: m.Label, Command: config.CommandFor(m, config.PluginNameFor(m, n.plugins().Has)), NoParams: m.NoParams, Options: opts,
		Cluster:   n.cluster(),
		Superuser: sdk.Credentials{Username: n.superuserName(), Password: n.Config.PostgreSQL.Superuser.Password},
	}
}

// Bootstrap creates a new cluster in the data directory with the bootstrap method, then (unless
// ImageOnly) configures, starts and finishes it: recovery to its end, roles, post_bootstrap.
// Methods are never chained and never fall back to initdb. On any failure PostgreSQL is
// stopped and what this attempt created is removed; a data directory that held anything
// before is never touched.
func (n *Node) Bootstrap(ctx context.Context, opts BootstrapOptions) (out BootstrapResult, err error) {
	dir := n.Config.DataDir
	out.Method = n.BootstrapMethod()
	log := n.logger().With("method", out.Method)
	ctx, tl := n.withTimeline(ctx, dcs.PathBootstrap)
	defer func() { out.CriticalPath = tl.result() }()

	if err := n.cleanIncomplete(); err != nil {
		return out, stepErr("inspect data directory", err, nil)
	}
	if m, ok := n.readMarker(); ok {
		// What a keep_data replica method left is kept for the next clone; a bootstrap never
		// builds on it, and it is pgimaged's own to remove.
		if err := n.discardIncomplete(m); err != nil {
			return out, stepErr("inspect data directory", err, nil)
		}
	}
	exists, err := n.checkDataDir()
	if err != nil {
		return out, stepErr("inspect data directory", err, nil)
	}
	wals, err := n.checkWalDirs(KindBootstrap)
	if err != nil {
		return out, stepErr("inspect WAL directory", err, nil)
	}
	att := &attempt{node: n, dir: dir, createdDir: !exists}
	if err := n.markIncomplete("bootstrap", !exists); err != nil {
		return out, stepErr("create data directory", err, nil)
	}
	if err := n.markWalDirs(wals); err != nil {
		n.ClearIncomplete()
		return out, stepErr("create data directory", err, nil)
	}
	if err := prepareDataDir(dir, true); err != nil {
		n.ClearIncomplete()
		return out, stepErr("create data directory", err, nil)
	}
	fail := func(step string, err error, tail []string) (BootstrapResult, error) {
		att.undo()
		n.ClearIncomplete()
		return out, stepErr(step, err, tail)
	}
	done := func() (BootstrapResult, error) {
		if !opts.KeepMarker {
			n.ClearIncomplete()
		}
		return out, nil
	}

	m := n.Config.Method(out.Method)
	pluginName := config.PluginNameFor(m, n.plugins().Has)
	if pluginName == "" {
		return fail("method "+m.Label, errors.New("no plugin runs this method: give it a command or a plugin"), nil)
	}
	rep := n.reporter(m.Label, pluginName)
	phase := time.Now()
	inst, err := n.launch(ctx, m.Label, pluginName)
	if err != nil {
		return fail("method "+m.Label, err, nil)
	}
	if !inst.Info().Can(sdk.CapBootstrap) {
		inst.Kill()
		return fail("method "+m.Label, fmt.Errorf("plugin %s cannot bootstrap a cluster", pluginName), nil)
	}
	tl.span(PhasePluginLaunch, m.Label, phase, time.Now())
	timeout := m.Timeout
	if timeout <= 0 {
		timeout = n.Config.Bootstrap.Timeout
	}
	log.Info("bootstrapping a new cluster", "plugin", pluginName, "data_dir", dir)
	phase = time.Now()
	res, err := inst.Bootstrap(ctx, n.bootstrapRequest(m), rep, timeout)
	inst.Kill()
	if err != nil {
		return fail("method "+m.Label, err, rep.lines())
	}
	tl.span(PhaseMethod, m.Label, phase, time.Now())
	res.Summary = n.resultSummary(res)
	out.Result = res
	log.Info("bootstrap method finished", "summary", res.Summary)
	if !pg.HasCluster(dir) {
		return fail("method "+m.Label, fmt.Errorf("the method succeeded but left no cluster in %s (no PG_VERSION or global/pg_control)", dir), rep.lines())
	}

	recovering, err := n.applyBootstrapRecovery(m, res)
	if err != nil {
		return fail("recovery settings", err, nil)
	}
	if opts.ImageOnly {
		sysid, err := pg.SystemIdentifier(dir)
		if err != nil {
			return fail("read system identifier", err, nil)
		}
		out.SystemIdentifier = sysid
		return done()
	}

	srv, err := n.server()
	if err != nil {
		return fail("configure", err, nil)
	}
	att.srv = srv
	if err := pg.WriteSettings(dir, n.settings(true)); err != nil {
		return fail("configure", err, nil)
	}
	att.started = true
	phase = time.Now()
	if err := srv.Start(ctx); err != nil {
		return fail("start PostgreSQL", err, att.serverTail())
	}
	tl.since(PhasePostgresStart, phase)
	phase = time.Now()
	if err := srv.WaitReady(ctx); err != nil {
		return fail("wait for PostgreSQL to accept connections", err, att.serverTail())
	}
	if recovering {
		rt := n.Config.Bootstrap.RecoveryTimeout
		rctx, cancel := context.WithTimeout(ctx, rt)
		err := srv.WaitPromoted(rctx)
		cancel()
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
				err = fmt.Errorf("recovery did not end within %s (bootstrap.recovery_timeout): %w", rt, err)
			}
			return fail("wait for recovery to end", err, att.serverTail())
		}
		log.Info("recovery ended; the cluster is promoted")
		if !m.KeepExistingRecoveryConf && !res.KeepExistingRecovery {
			// The targets and restore_command of the recovery that is over must not be read
			// again at a later start.
			if err := pg.RemoveRecovery(dir); err != nil {
				return fail("clear recovery settings", err, nil)
			}
		}
	}
	tl.since(PhaseAcceptingConnections, phase)
	phase = time.Now()
	if err := n.ensureRoles(ctx, srv); err != nil {
		return fail("create roles", err, att.serverTail())
	}
	if err := n.postBootstrap(ctx, srv); err != nil {
		return fail("post_bootstrap", err, nil)
	}
	tl.since(PhaseRoles, phase)
	// The new primary is this attempt's own: checkpoint it now, before it is published, so that
	// the replicas' base backups (spread checkpoint by default) find nothing left to write
	// instead of waiting on a paced checkpoint of the roles' and post_bootstrap's buffers.
	phase = time.Now()
	if err := srv.Checkpoint(ctx); err != nil {
		log.Warn("could not checkpoint the new cluster; the replicas' base backups will wait for their own checkpoint", "error", err)
	}
	tl.since(PhaseCheckpoint, phase)
	sysid, err := pg.SystemIdentifier(dir)
	if err != nil {
		return fail("read system identifier", err, nil)
	}
	out.SystemIdentifier = sysid
	out.Running = true
	return done()
}

// applyBootstrapRecovery writes or clears recovery settings after a bootstrap method, and tells
// whether the server will run a recovery that ends (and so must be waited for).
func (n *Node) applyBootstrapRecovery(m *config.Method, res sdk.Result) (bool, error) {
	dir := n.Config.DataDir
	keep := m.KeepExistingRecoveryConf || res.KeepExistingRecovery
	settings := map[string]string{}
	maps.Copy(settings, res.RecoverySettings)
	maps.Copy(settings, m.RecoveryConf)
	standby := m.StandbyMode || (res.Standby && m.RecoveryConf == nil)
	if !keep {
		if err := pg.RemoveRecovery(dir); err != nil {
			return false, err
		}
	}
	if len(settings) > 0 || standby {
		major, err := pg.DataDirVersion(dir)
		if err != nil {
			return false, err
		}
		if err := pg.WriteRecovery(dir, major, pg.Recovery{Settings: settings, Standby: standby}); err != nil {
			return false, err
		}
	}
	_, ending := pg.RecoveryMode(dir)
	return ending, nil
}
