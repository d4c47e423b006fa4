package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/pgimaged/pgimaged/core/config"
	"github.com/pgimaged/pgimaged/core/dcs"
	"github.com/pgimaged/pgimaged/core/engine"
)

// runStandby is `pgimaged standby promote`: the standby cluster's leader ends recovery and
// becomes the cluster's primary; the DCS records that the cluster is no longer a standby
// cluster.
func runStandby(ctx context.Context, e *env, args []string) int {
	c, fs := newCommand(e, "standby", "promote|follow -config FILE [--yes] [--timeout D] [-json]", true)
	yes := fs.Bool("yes", false, "do not ask for confirmation")
	timeout := fs.Duration("timeout", 5*time.Minute, "how long to wait for the standby leader to promote, or the primary to follow the remote")
	if len(args) == 0 || args[0] != "promote" && args[0] != "follow" {
		if slices.ContainsFunc(args, func(a string) bool { return a == "-h" || a == "--help" || a == "-help" }) {
			_, _ = c.load(e, fs, args)
			return exitOK
		}
		return e.failf(exitUsage, "standby needs a subcommand: pgimaged standby promote|follow -config FILE [--yes]")
	}
	if args[0] == "follow" {
		return runStandbyFollow(ctx, e, c, fs, args[1:], yes, timeout)
	}
	cfg, code := c.load(e, fs, args[1:])
	if cfg == nil {
		return code
	}
	st, cl, code := openUnpaused(ctx, e, c, cfg, "standby promote")
	if st == nil {
		return code
	}
	defer st.Close()
	question := fmt.Sprintf("Promote the standby cluster %s: its standby leader %s stops following the remote and accepts writes", cfg.Scope, cl.Leader)
	if code, ok := confirm(e, *yes, question, question+": confirm on a terminal, or give --yes"); !ok {
		return code
	}
	by := "pgimaged standby promote"
	if host, err := os.Hostname(); err == nil {
		by += " on " + host
	}
	started := time.Now()
	req, err := engine.RequestStandbyPromote(ctx, st, cl, by)
	switch {
	case errors.Is(err, engine.ErrNotStandbyCluster) || errors.Is(err, engine.ErrChangePending):
		return e.failf(exitRefused, "standby promote refused: %v", err)
	case err != nil:
		return e.failf(exitFailed, "standby promote: %v", err)
	}
	fmt.Fprintf(e.stderr, "pgimaged: promotion of %s asked; waiting for it (at most %s)\n", req.Leader, *timeout)
	wctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	done, err := engine.AwaitStandbyPromote(wctx, st, 50*time.Millisecond)
	if err != nil {
		return e.failf(exitFailed, "standby promote: %v", err)
	}
	took := time.Since(started)
	if c.jsonOut {
		writeJSON(e.stdout, map[string]any{"leader": done.Leader, "timeline": done.Timeline, "seconds": took.Seconds()})
		return exitOK
	}
	fmt.Fprintf(e.stdout, "standby cluster promoted: member %s is the primary on timeline %d (%.2f s)\n", done.Leader, done.Timeline, took.Seconds())
	return exitOK
}

// runStandbyFollow is `pgimaged standby follow`: the cluster's primary becomes the standby
// leader of a standby cluster of the remote this configuration's standby_cluster block names —
// rewound toward it, or re-cloned where rejoin = "reimage" allows it — and the DCS records that
// the cluster is a standby cluster of that remote.
func runStandbyFollow(ctx context.Context, e *env, c *common, fs *flag.FlagSet, args []string, yes *bool, timeout *time.Duration) int {
	cfg, code := c.load(e, fs, args)
	if cfg == nil {
		return code
	}
	if cfg.StandbyCluster == nil {
		return e.failf(exitRefused, "standby follow refused: %s has no standby_cluster block naming the cluster to follow (host and port of its primary)", cfg.Filename)
	}
	st, cl, code := openUnpaused(ctx, e, c, cfg, "standby follow")
	if st == nil {
		return code
	}
	defer st.Close()
	remote := engine.BlockOf(cfg.StandbyCluster).Describe()
	question := fmt.Sprintf("Make %s a standby cluster of %s: its primary %s stops accepting writes, is rewound toward the remote and follows it", cfg.Scope, remote, cl.Leader)
	if code, ok := confirm(e, *yes, question, question+": confirm on a terminal, or give --yes"); !ok {
		return code
	}
	by := "pgimaged standby follow"
	if host, err := os.Hostname(); err == nil {
		by += " on " + host
	}
	started := time.Now()
	req, err := engine.RequestStandbyFollow(ctx, st, cl, cfg.StandbyCluster, by)
	switch {
	case errors.Is(err, engine.ErrCannotFollow) || errors.Is(err, engine.ErrChangePending):
		return e.failf(exitRefused, "standby follow refused: %v", err)
	case err != nil:
		return e.failf(exitFailed, "standby follow: %v", err)
	}
	fmt.Fprintf(e.stderr, "pgimaged: %s asked to follow %s; waiting for it (at most %s)\n", req.Leader, remote, *timeout)
	wctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	done, err := engine.AwaitStandbyFollow(wctx, st, 50*time.Millisecond)
	if err != nil {
		return e.failf(exitFailed, "standby follow: %v", err)
	}
	took := time.Since(started)
	if c.jsonOut {
		writeJSON(e.stdout, map[string]any{"standby_leader": done.Leader, "remote": remote, "timeline": done.Timeline, "seconds": took.Seconds()})
		return exitOK
	}
	fmt.Fprintf(e.stdout, "standby cluster of %s: member %s is its standby leader on timeline %d (%.2f s)\n", remote, done.Leader, done.Timeline, took.Seconds())
	return exitOK
}

// openUnpaused opens the DCS for command and reads the cluster; nil (with the exit code, the
// failure printed) when the DCS cannot be reached or read, or the cluster is paused. The caller
// closes the store.
func openUnpaused(ctx context.Context, e *env, c *common, cfg *config.Config, command string) (dcs.Store, dcs.Cluster, int) {
	logger := newLogger(e, cfg, orDefault(c.logLevel, "error"))
	st, err := openDCS(ctx, cfg, logger.Named("dcs"))
	if err != nil {
		return nil, dcs.Cluster{}, e.failf(exitFailed, "%s: cannot reach the DCS: %v", command, err)
	}
	cl, err := st.Cluster(ctx)
	if err == nil {
		var p *engine.Pause
		if p, err = engine.ReadPause(ctx, st); err == nil && p != nil {
			st.Close()
			return nil, dcs.Cluster{}, e.failf(exitRefused, "%s refused: the cluster is paused (maintenance mode): the agents change nothing until pgimaged resume", command)
		}
	}
	if err != nil {
		st.Close()
		return nil, dcs.Cluster{}, e.failf(exitFailed, "%s: cannot read the DCS: %v", command, err)
	}
	return st, cl, 0
}

// standbyStatus is what status says of a standby cluster: the remote it follows (as the DCS
// records it, else as this configuration names it), its standby leader, and the DCS's record,
// which wins over the configuration (note says how they differ). nil for a cluster that is
// not, and never was, a standby cluster.
func standbyStatus(cfg *config.Config, cl dcs.Cluster, rec *engine.StandbyRecord) map[string]any {
	if cfg.StandbyCluster == nil && rec == nil {
		return nil
	}
	promoted := rec != nil && rec.Phase == engine.StandbyPromoted
	out := map[string]any{"promoted": promoted}
	if rec != nil {
		out["record"] = rec
		out["summary"] = rec.Describe()
	}
	block := engine.BlockOf(cfg.StandbyCluster)
	if rec != nil && rec.Remote != nil && !promoted {
		block = rec.Remote
		out["from_dcs"] = true
	}
	if block != nil {
		out["remote"] = block.Describe()
	}
	if cfg.StandbyCluster != nil {
		out["ignored"] = promoted
	}
	if note := engine.StandbyNote(cfg.StandbyCluster, rec); note != "" {
		out["note"] = note
	}
	if lm, ok := cl.LeaderMember(); ok && lm.Role == dcs.RoleStandbyLeader {
		out["standby_leader"] = lm.Name
		if lm.PGImaged != nil && lm.PGImaged.Remote != nil {
			out["lag"] = lm.PGImaged.Remote
		}
	}
	return out
}

// writeStandbyStatus heads status for a standby cluster: whom it follows and who leads it, or
// that it was promoted and this configuration's standby_cluster block is ignored.
func writeStandbyStatus(e *env, cfg *config.Config, cl dcs.Cluster, rec *engine.StandbyRecord) {
	sc := standbyStatus(cfg, cl, rec)
	if sc == nil {
		return
	}
	switch {
	case sc["promoted"] == true && cfg.StandbyCluster != nil:
		fmt.Fprintf(e.stdout, "Standby cluster promoted: %s; the standby_cluster block of this configuration is ignored\n", rec.Describe())
	case sc["promoted"] == true:
		fmt.Fprintf(e.stdout, "Standby cluster promoted: %s\n", rec.Describe())
	case rec != nil && rec.Phase == engine.StandbyFollowAsked:
		fmt.Fprintf(e.stdout, "Pending: %s\n", rec.Describe())
	default:
		leader := "(none)"
		if l, ok := sc["standby_leader"].(string); ok {
			leader = l
		}
		fmt.Fprintf(e.stdout, "Standby cluster of %s   standby leader: %s%s\n", sc["remote"], leader, remoteLag(sc))
		if note, ok := sc["note"].(string); ok {
			fmt.Fprintf(e.stdout, "Note: %s\n", note)
		}
		if rec != nil && rec.Phase == engine.StandbyPromoting {
			fmt.Fprintf(e.stdout, "Pending: %s\n", rec.Describe())
		}
	}
}

// remoteLag is the standby leader's lag behind the remote for the status line, "" when it
// publishes none.
func remoteLag(sc map[string]any) string {
	r, ok := sc["lag"].(*dcs.RemoteFollow)
	if !ok {
		return ""
	}
	behind := "the remote cannot be asked"
	if r.LagBytes != nil {
		behind = fmt.Sprintf("%d bytes", *r.LagBytes)
	}
	if r.Error != "" {
		behind += " (" + r.Error + ")"
	}
	return fmt.Sprintf("   behind the remote: %s, replay delay %.1f s", behind, r.ReplayDelay)
}
