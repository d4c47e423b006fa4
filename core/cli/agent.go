package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/pgimaged/pgimaged/core/api"
	"github.com/pgimaged/pgimaged/core/config"
	"github.com/pgimaged/pgimaged/core/dcs"
	"github.com/pgimaged/pgimaged/core/engine"
	"github.com/pgimaged/pgimaged/core/pg"
	"github.com/pgimaged/pgimaged/sdk"
)

// DefaultDCSPath is where the file DCS lives when the configuration has no dcs block: beside
// the data directory, so that members on one host share it.
func DefaultDCSPath(cfg *config.Config) string {
	return filepath.Join(filepath.Dir(filepath.Clean(cfg.DataDir)), "pgimaged-dcs")
}

// look reads the DCS with read for a command that only looks (status, plan, history, reinit's
// checks), giving it 15 seconds. A file DCS that does not exist yet holds nothing: looking must
// not create it (with this user's owner), so read is not called and the zero T is returned.
func look[T any](ctx context.Context, cfg *config.Config, logger hclog.Logger, read func(context.Context, dcs.Store) (T, error)) (T, error) {
	var none T
	if cfg.DCS.Kind != config.DCSEtcd {
		if _, err := os.Stat(fileDCSPath(cfg)); errors.Is(err, os.ErrNotExist) {
			return none, nil
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	st, err := openDCS(ctx, cfg, logger)
	if err != nil {
		return none, err
	}
	defer st.Close()
	return read(ctx, st)
}

// readCluster reads the scope for a command that only looks.
func readCluster(ctx context.Context, cfg *config.Config, logger hclog.Logger) (dcs.Cluster, error) {
	return look(ctx, cfg, logger, func(ctx context.Context, st dcs.Store) (dcs.Cluster, error) {
		return st.Cluster(ctx)
	})
}

// fileDCSPath is where the file DCS lives: the configured path, else [DefaultDCSPath].
func fileDCSPath(cfg *config.Config) string {
	return orDefault(cfg.DCS.Path, DefaultDCSPath(cfg))
}

// openDCS opens a session on the configured DCS.
func openDCS(ctx context.Context, cfg *config.Config, logger hclog.Logger) (dcs.Store, error) {
	switch cfg.DCS.Kind {
	case config.DCSEtcd:
		return dcs.OpenEtcd(ctx, dcs.EtcdConfig{
			Endpoints: cfg.DCS.Endpoints, TTL: cfg.TTL, Username: cfg.DCS.Username, Password: cfg.DCS.Password,
			DialTimeout: cfg.DCS.DialTimeout,
			CAFile:      cfg.DCS.CAFile, CertFile: cfg.DCS.CertFile, KeyFile: cfg.DCS.KeyFile,
			Namespace: cfg.DCS.Namespace,
		}, cfg.Scope, logger)
	default:
		return dcs.OpenFile(ctx, dcs.FileConfig{Path: fileDCSPath(cfg), Namespace: cfg.DCS.Namespace}, cfg.Scope, logger)
	}
}

func runAgent(ctx context.Context, e *env, args []string) int {
	c, fs := newCommand(e, "run", "-config FILE", false)
	cfg, code := c.load(e, fs, args, "postgresql.listen")
	if cfg == nil {
		return code
	}
	logger := newLogger(e, cfg, c.logLevel).With("member", cfg.Name)
	node := newNode(cfg, logger)
	release, code := holdDataDir(e, node, "run", nil)
	if release == nil {
		return code
	}
	defer release()
	if d := node.Validate(ctx); printDiags(e, cfg, d) {
		if cfg.LogFile != "" {
			logger.Error("the agent stops: the configuration has errors", "errors", d.Error())
		}
		return exitConfig
	}
	agent := &engine.Agent{
		Node:     node,
		LoopWait: cfg.LoopWait,
		Started:  engine.ProcessStart(),
		Open: func(ctx context.Context) (dcs.Store, error) {
			st, err := openDCS(ctx, cfg, logger.Named("dcs"))
			if err != nil {
				return nil, err
			}
			// Reading proves the store answers; an unreachable DCS is reported here and waited for.
			if _, err := st.Cluster(ctx); err != nil {
				_ = st.Close()
				return nil, err
			}
			return st, nil
		},
	}
	srv, stopAPI, err := startAPI(cfg, agent, logger)
	if err != nil {
		if cfg.LogFile != "" {
			logger.Error("the agent stops: its HTTP API cannot start", "error", err)
		}
		return e.failf(exitFailed, "while starting the HTTP API: %v", err)
	}
	defer stopAPI()
	agent.Reloaded = reloaded(e, logger, srv, c.logLevel)
	reloadOnSIGHUP(ctx, agent, cfg.Filename, logger)
	logger.Info("pgimaged node agent starting", "scope", cfg.Scope, "data_dir", cfg.DataDir, "version", Version)
	if err := agent.Run(ctx); err != nil {
		if cfg.LogFile != "" { // stderr gets it below; the log file must say why the agent stopped too
			logger.Error("the agent stops", "error", err)
		}
		return e.failf(exitRefused, "%v", err)
	}
	logger.Info("stopped")
	return exitOK
}

func runStatus(ctx context.Context, e *env, args []string) int {
	c, fs := newCommand(e, "status", "-config FILE [-json]", true)
	cfg, code := c.load(e, fs, args)
	if cfg == nil {
		return code
	}
	logger := newLogger(e, cfg, orDefault(c.logLevel, "error"))
	var pending map[string]engine.ReinitRequest
	var paused *engine.Pause
	var standby *engine.StandbyRecord
	var change *engine.PendingChange
	cl, err := look(ctx, cfg, logger, func(ctx context.Context, st dcs.Store) (cl dcs.Cluster, err error) {
		if cl, err = st.Cluster(ctx); err == nil {
			pending, err = pendingReinits(ctx, st)
		}
		if err == nil {
			change, err = engine.ReadChange(ctx, st)
		}
		if err == nil {
			paused, err = engine.ReadPause(ctx, st)
		}
		if err == nil {
			standby, err = engine.ReadStandby(ctx, st)
		}
		return cl, err
	})
	if err != nil {
		return e.failf(exitFailed, "cannot read the DCS: %v", err)
	}
	if c.jsonOut {
		out := statusJSON(cfg, cl)
		if len(pending) > 0 {
			out["pending_reinits"] = pending
		}
		out["paused"] = paused != nil
		if change != nil && change.Waiting(time.Now()) {
			sw := api.ScheduledSwitchover(change.ChangeRequest)
			sw["by"] = change.By
			out["scheduled_switchover"] = sw
		}
		if sc := standbyStatus(cfg, cl, standby); sc != nil { // standby.go
			out["standby_cluster"] = sc
		}
		writeJSON(e.stdout, out)
		return exitOK
	}
	writeStandbyStatus(e, cfg, cl, standby) // standby.go
	writeStatus(e, cfg, cl)
	if paused != nil {
		fmt.Fprintf(e.stdout, "Maintenance mode: paused by %s at %s (pgimaged resume ends it)\n", orDefault(paused.By, "?"), paused.At.Format(time.RFC3339))
	}
	if change != nil && change.Waiting(time.Now()) {
		fmt.Fprintf(e.stdout, "Switchover scheduled: %s (pgimaged switchover --cancel cancels it)\n", change.Describe())
	}
	for _, name := range sortedKeys(pending) {
		req := pending[name]
		agent := "its agent runs and carries it out"
		if _, ok := cl.Member(name); !ok {
			agent = "waiting for its agent, which does not run"
		}
		fmt.Fprintf(e.stdout, "Pending reinit of %s: asked by %s at %s; %s\n", name, orDefault(req.By, "?"), req.At.Format(time.RFC3339), agent)
	}
	return exitOK
}

// pendingReinits are the reinit requests waiting in the DCS, by member; none when st cannot
// list its keys.
func pendingReinits(ctx context.Context, st dcs.Store) (map[string]engine.ReinitRequest, error) {
	l, ok := st.(dcs.Lister)
	if !ok {
		return nil, nil
	}
	names, err := l.List(ctx, strings.TrimSuffix(dcs.ReinitKeyDir, "/"))
	if err != nil {
		return nil, err
	}
	out := map[string]engine.ReinitRequest{}
	for _, name := range names {
		if req, err := engine.PendingReinit(ctx, st, name); err != nil {
			return nil, err
		} else if req != nil {
			out[name] = *req
		}
	}
	return out, nil
}

type memberStatus struct {
	Name   string `json:"name"`
	Leader bool   `json:"leader"`
	dcs.Member
	LagBytes *int64 `json:"lag_bytes,omitempty"`
	// SyncStandby: the sync key names the member a synchronous standby (status_sync.go).
	SyncStandby bool `json:"sync_standby,omitempty"`
}

func statusJSON(cfg *config.Config, cl dcs.Cluster) map[string]any {
	var members []memberStatus
	lead, hasLead := cl.LeaderMember()
	for _, m := range cl.Members {
		ms := memberStatus{Member: m, Name: m.Name, Leader: m.Name == cl.Leader, SyncStandby: syncStandby(cl, m.Name)}
		if hasLead && !ms.Leader && m.XLogLocation > 0 && lead.XLogLocation > 0 {
			lag := max(lead.XLogLocation-m.XLogLocation, 0)
			ms.LagBytes = &lag
		}
		members = append(members, ms)
	}
	out := map[string]any{"scope": cfg.Scope, "leader": cl.Leader, "members": members, "history": cl.History.Switches}
	if cl.Initialize != nil {
		out["initialize"] = *cl.Initialize
	} else {
		out["initialize"] = nil
	}
	return out
}

func writeStatus(e *env, cfg *config.Config, cl dcs.Cluster) {
	init := "(absent: no cluster yet)"
	switch {
	case cl.Bootstrapping():
		init = "(empty: a member is bootstrapping)"
	case cl.Initialize != nil:
		init = *cl.Initialize
	}
	fmt.Fprintf(e.stdout, "Cluster %s   initialize: %s   leader: %s\n\n", cfg.Scope, init, orDefault(cl.Leader, "(none)"))
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MEMBER\tROLE\tSTATE\tADDRESS\tTL\tLAG\tUPSTREAM\tTAGS\tLAST ERROR")
	lead, hasLead := cl.LeaderMember()
	for _, m := range cl.Members {
		role := m.Role
		if m.Name == cl.Leader {
			role += " (leader)"
		} else if syncStandby(cl, m.Name) {
			role = RoleSyncStandby
		}
		lag := ""
		if hasLead && m.Name != cl.Leader && m.XLogLocation > 0 && lead.XLogLocation > 0 {
			lag = humanBytes(max(lead.XLogLocation-m.XLogLocation, 0))
		}
		var tags []string
		for _, k := range sortedKeys(m.Tags) {
			tags = append(tags, fmt.Sprintf("%s=%v", k, m.Tags[k]))
		}
		lastErr, upstream, tl, state := "", "", "", m.State
		if m.PGImaged != nil {
			lastErr = explainError(m.PGImaged.LastError, lastErrorWidth)
			upstream = m.PGImaged.Upstream
			if why := m.PGImaged.NotStreaming; why != "" && state == dcs.StateRunning {
				state = "not streaming"
				if lastErr == "" {
					lastErr = explainError(why, lastErrorWidth)
				}
			}
			if p := m.PGImaged.Clone; p != nil {
				state += " (" + progressText(*p) + ")"
			}
		}
		if m.PendingRestart {
			state += " (pending restart)"
		}
		if m.Timeline > 0 {
			tl = fmt.Sprint(m.Timeline)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.Name, role, state, strings.TrimPrefix(m.ConnURL, "postgres://"),
			tl, lag, upstream, strings.Join(tags, ","), lastErr)
	}
	_ = tw.Flush()
	if len(cl.Members) == 0 {
		fmt.Fprintln(e.stdout, "(no members published)")
	}
	writeReloads(e, cl)
	if len(cl.History.Switches) > 0 {
		fmt.Fprintln(e.stdout)
		writeSwitches(e.stdout, cl.History.Switches)
	}
}

// writeSwitches lists the cluster's timeline switches, oldest first, a line each.
func writeSwitches(w io.Writer, switches []dcs.TimelineSwitch) {
	fmt.Fprintln(w, "Timeline switches (cluster history):")
	for _, sw := range switches {
		from, at := "", "time not recorded"
		if sw.OldLeader != "" {
			from = " from " + sw.OldLeader
		}
		if !sw.Time.IsZero() {
			at = sw.Time.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(w, "  timeline %d at %s: %s%s to %s, %s\n", sw.Timeline, pg.LSN(sw.LSN), orDefault(sw.Reason, "change of primary"), from,
			orDefault(sw.NewLeader, "?"), at)
	}
}

// lastErrorWidth is how much of a member's last error status shows on its line.
const lastErrorWidth = 100

func humanBytes(n int64) string {
	switch {
	case n < 1024:
		return fmt.Sprintf("%d B", n)
	case n < 1024*1024:
		return fmt.Sprintf("%.1f KiB", float64(n)/1024)
	case n < 1024*1024*1024:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1024*1024))
	}
	return fmt.Sprintf("%.1f GiB", float64(n)/(1024*1024*1024))
}

func runPlan(ctx context.Context, e *env, args []string) int {
	c, fs := newCommand(e, "plan", "-config FILE [-json] [--connstring C]", true)
	connstring := fs.String("connstring", "", "plan the one-shot `pgimaged clone --connstring C` instead: its replica methods from source C (libpq string or URL; a password in it is never shown), the DCS not read")
	cfg, code := c.load(e, fs, args)
	if cfg == nil {
		return code
	}
	logger := newLogger(e, cfg, orDefault(c.logLevel, "error"))
	node := newNode(cfg, logger)
	if *connstring != "" {
		if d := node.Validate(ctx, sdk.PathClone); printDiags(e, cfg, d) {
			return exitConfig
		}
		src, err := oneShotSource(cfg, *connstring)
		if err != nil {
			return e.failf(exitUsage, "--connstring: %v", err)
		}
		return printPlan(e, cfg, node.PlanOneShotClone(ctx, src), c.jsonOut, exitOK)
	}
	if d := append(node.Validate(ctx), node.ValidateHost()...); printDiags(e, cfg, d) {
		return exitConfig
	}
	type seen struct {
		cl      dcs.Cluster
		reinit  *engine.ReinitRequest
		standby *engine.StandbyRecord
	}
	var cl *dcs.Cluster
	got, err := look(ctx, cfg, logger, func(ctx context.Context, st dcs.Store) (seen, error) {
		c, err := st.Cluster(ctx)
		if err != nil {
			return seen{}, err
		}
		req, err := engine.PendingReinit(ctx, st, cfg.Name)
		if err != nil {
			return seen{}, err
		}
		rec, err := engine.ReadStandby(ctx, st)
		return seen{c, req, rec}, err
	})
	if err == nil {
		cl = &got.cl
	}
	node.UseStandbyRecord(got.standby) // the DCS decides whether this is a standby cluster
	plan := node.PlanReinit(ctx, cl, err, got.reinit)
	plan.StandbyCluster = engine.StandbyNote(cfg.StandbyCluster, got.standby)
	// The plan is shown also when the DCS cannot be read (it says the node waits); the exit
	// code says the answer is not the DCS's.
	code = exitOK
	if err != nil {
		code = e.failf(exitFailed, "plan: the DCS cannot be read: %v", err)
	}
	return printPlan(e, cfg, plan, c.jsonOut, code)
}

// printPlan prints plan as `pgimaged plan` shows it and returns code.
func printPlan(e *env, cfg *config.Config, plan engine.Plan, jsonOut bool, code int) int {
	if jsonOut {
		writeJSON(e.stdout, plan)
		return code
	}
	fmt.Fprintf(e.stdout, "Member %s of %s, data directory %s\n", cfg.Name, cfg.Scope, plan.DataDir)
	fmt.Fprintf(e.stdout, "PostgreSQL logs to %s\n", plan.ServerLog)
	fmt.Fprintf(e.stdout, "Would: %s\n  because %s\n", strings.ToUpper(plan.Path), plan.Reason)
	if plan.StandbyCluster != "" {
		fmt.Fprintf(e.stdout, "Standby cluster: %s\n", plan.StandbyCluster)
	}
	if plan.Source != "" {
		fmt.Fprintf(e.stdout, "Source: %s\n", plan.Source)
		if plan.SourceWhy != "" {
			fmt.Fprintf(e.stdout, "  chosen as %s\n", plan.SourceWhy)
		}
	}
	if plan.SystemIdentifier != "" {
		fmt.Fprintf(e.stdout, "System identifier: %s\n", plan.SystemIdentifier)
	}
	for i, m := range plan.Methods {
		fmt.Fprintf(e.stdout, "\n%d. method %s (plugin %s)", i+1, m.Method, orDefault(m.Plugin, "none"))
		if m.Attempts > 1 {
			fmt.Fprintf(e.stdout, ", up to %d attempts", m.Attempts)
		}
		if m.KeepData {
			fmt.Fprint(e.stdout, ", keep_data")
		}
		fmt.Fprintln(e.stdout)
		if m.Skipped != "" {
			fmt.Fprintf(e.stdout, "   skipped: %s\n", m.Skipped)
		}
		if m.Error != "" {
			fmt.Fprintf(e.stdout, "   error: %s\n", m.Error)
		}
		for _, cmd := range m.Commands {
			fmt.Fprintf(e.stdout, "   $ %s\n", shellJoin(cmd.Argv))
			for _, k := range sortedKeys(cmd.Env) {
				fmt.Fprintf(e.stdout, "     env %s=%s\n", k, cmd.Env[k])
			}
		}
		for _, n := range m.Notes {
			fmt.Fprintf(e.stdout, "   note: %s\n", n)
		}
	}
	return code
}

// shellJoin quotes argv for display so that it can be pasted into a shell.
func shellJoin(argv []string) string {
	out := make([]string, len(argv))
	for i, a := range argv {
		out[i] = shellQuote(a)
	}
	return strings.Join(out, " ")
}
