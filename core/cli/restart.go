package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/pgimaged/pgimaged/core/dcs"
	"github.com/pgimaged/pgimaged/core/engine"
)

// runRestart restarts PostgreSQL through the members' agents, like `patronictl restart`: the
// member named, or every member of the cluster, replicas first and the leader last, each
// waited on until it runs again before the next. With --pending only members whose PostgreSQL
// reports a setting pending a restart.
func runRestart(ctx context.Context, e *env, args []string) int {
	c, fs := newCommand(e, "restart", "-config FILE [--member NAME] [--pending] [--role primary|replica] [--yes]", false)
	member := fs.String("member", "", "the member to restart (default: every member, replicas first, the leader last)")
	pending := fs.Bool("pending", false, "restart only members whose PostgreSQL reports pending_restart")
	role := fs.String("role", "", "restart only members running in this role: primary, replica or standby_leader")
	yes := fs.Bool("yes", false, "do not ask for confirmation")
	fs.BoolVar(yes, "force", false, "the same as --yes, as patronictl spells it")
	timeout := fs.Duration("timeout", 10*time.Minute, "how long to wait for each member to run again")
	cfg, code := c.load(e, fs, args)
	if cfg == nil {
		return code
	}
	switch *role {
	case "", dcs.RolePrimary, dcs.RoleReplica, dcs.RoleStandbyLeader:
	case "master":
		*role = dcs.RolePrimary
	default:
		return e.failf(exitUsage, "restart --role: %q is not a role: primary, replica or standby_leader", *role)
	}
	if *member != "" {
		if err := dcs.ValidMemberName(*member); err != nil {
			return e.failf(exitUsage, "restart --member: %v", err)
		}
	}
	logger := newLogger(e, cfg, orDefault(c.logLevel, "warn"))
	st, err := openDCS(ctx, cfg, logger.Named("dcs"))
	if err != nil {
		return e.failf(exitFailed, "restart: cannot reach the DCS: %v", err)
	}
	defer st.Close()
	cl, err := st.Cluster(ctx)
	if err != nil {
		return e.failf(exitFailed, "restart: cannot read the DCS: %v", err)
	}
	known := true
	if *member != "" {
		if known, err = knownMember(ctx, st, cl, *member); err != nil {
			return e.failf(exitFailed, "restart: cannot read the DCS: %v", err)
		}
	}
	ch, err := engine.ReadChange(ctx, st)
	if err != nil {
		return e.failf(exitFailed, "restart: %v", err)
	}
	stale := ch != nil && ch.Phase == engine.PhaseAsked && !ch.Deadline.IsZero() && time.Now().After(ch.Deadline)
	if ch != nil && ch.Phase != engine.PhaseAborted && !stale && !ch.Waiting(time.Now()) {
		return e.failf(exitRefused, "restart refused: a %s is under way; restart once it is over (pgimaged status shows it)", ch.Describe())
	}
	plan, err := planRestart(cl, restartFilter{Member: *member, Known: known, Role: *role})
	if err != nil {
		return e.failf(exitRefused, "restart refused: %v; nothing was restarted", err)
	}
	for _, note := range plan.Skipped {
		fmt.Fprintf(e.stderr, "pgimaged: %s\n", note)
	}
	if len(plan.Members) == 0 {
		fmt.Fprintln(e.stdout, "no member to restart")
		return exitOK
	}
	if p, err := engine.ReadPause(ctx, st); err == nil && p != nil {
		fmt.Fprintln(e.stderr, "pgimaged: the cluster is in maintenance mode: PostgreSQL is restarted all the same, on this explicit request, as Patroni does")
	}
	if code, ok := confirm(e, *yes, fmt.Sprintf("Restart PostgreSQL on %s of %s", strings.Join(plan.Members, ", "), cfg.Scope),
		"restart stops PostgreSQL on "+strings.Join(plan.Members, ", ")+": confirm on a terminal, or give --yes"); !ok {
		return code
	}
	by := "pgimaged restart"
	if host, err := os.Hostname(); err == nil {
		by += " on " + host
	}
	for _, name := range plan.Members {
		req := engine.RestartRequest{Pending: *pending, Role: *role, By: by, At: time.Now().UTC()}
		if err := engine.RequestRestart(ctx, st, name, req); err != nil {
			return e.failf(exitFailed, "restart: %v", err)
		}
		fmt.Fprintf(e.stderr, "pgimaged: restarting PostgreSQL on member %s\n", name)
		wctx, cancel := context.WithTimeout(ctx, *timeout)
		out, err := engine.WaitRestart(wctx, st, name, req.At, 500*time.Millisecond)
		cancel()
		switch {
		case errors.Is(err, engine.ErrRestartRefused):
			return e.failf(exitRefused, "restart of member %s refused: %v", name, err)
		case err != nil:
			return e.failf(exitFailed, "restart of member %s: %v", name, err)
		case out.OK:
			fmt.Fprintf(e.stdout, "member %s: %s\n", name, out.Message)
		case out.Message == engine.RestartNotSatisfied && *pending:
			fmt.Fprintf(e.stdout, "member %s: not restarted: no setting is pending a restart\n", name)
		case out.Message == engine.RestartNotSatisfied:
			fmt.Fprintf(e.stdout, "member %s: not restarted: %s\n", name, out.Message)
		case strings.HasPrefix(out.Message, "restart refused: "):
			return e.failf(exitRefused, "member %s: %s", name, out.Message)
		default:
			return e.failf(exitFailed, "member %s: %s; the members after it were not restarted", name, out.Message)
		}
	}
	return exitOK
}

// restartFilter is what `pgimaged restart` was asked to restart.
type restartFilter struct {
	// Member is the one member asked for, "" for all; Known: the DCS knows it (see knownMember).
	Member string
	Known  bool
	// Role: only members in this role.
	Role string
}

// restartPlan is the order in which members are restarted, and those left out and why.
type restartPlan struct {
	Members []string
	Skipped []string
}

// busyStates are the states of a member whose agent is busy making or replacing its data
// directory: it is never restarted then.
var busyStates = []string{dcs.StateBootstrapping, dcs.StateCreatingReplica, engine.StateReinitializing, engine.StateRestarting}

// planRestart decides, from the DCS state cl alone, which members a restart asks and in which
// order. Whether a setting is pending a restart is left to each member's agent, which asks its
// PostgreSQL when the request comes (the member key may be a cycle old). The order is replicas
// first, by name, the leader last, as patronictl restart does. A member named that is unknown, whose agent does not run (no member key), that is mid-clone or whose
// PostgreSQL does not run is refused; so is a restart of every member while one is mid-clone.
func planRestart(cl dcs.Cluster, f restartFilter) (restartPlan, error) {
	var plan restartPlan
	members := cl.Members
	if f.Member != "" {
		m, ok := cl.Member(f.Member)
		switch {
		case !ok && !f.Known:
			var names []string
			for _, m := range cl.Members {
				names = append(names, m.Name)
			}
			return plan, fmt.Errorf("the DCS knows no member %s in this cluster (members now: %s)", f.Member, orDefault(strings.Join(names, ", "), "none"))
		case !ok:
			return plan, fmt.Errorf("the agent of member %s does not run (it publishes no member key): there is no PostgreSQL it could restart", f.Member)
		}
		members = []dcs.Member{m}
	}
	var leader *dcs.Member
	for _, m := range members {
		if slices.Contains(busyStates, m.State) {
			return plan, fmt.Errorf("member %s is %s: it is restarted once it runs", m.Name, m.State)
		}
	}
	for _, m := range members {
		role := m.Role
		if role == "master" {
			role = dcs.RolePrimary
		}
		switch {
		case m.State != dcs.StateRunning && f.Member != "":
			return plan, fmt.Errorf("PostgreSQL does not run on member %s (state %s): there is nothing to restart", m.Name, orDefault(m.State, "unknown"))
		case m.State != dcs.StateRunning:
			plan.Skipped = append(plan.Skipped, fmt.Sprintf("member %s skipped: PostgreSQL does not run (state %s)", m.Name, orDefault(m.State, "unknown")))
		case f.Role != "" && role != f.Role:
			plan.Skipped = append(plan.Skipped, fmt.Sprintf("member %s skipped: it runs as %s, not %s", m.Name, role, f.Role))
		case m.Name == cl.Leader:
			leader = &m
		default:
			plan.Members = append(plan.Members, m.Name)
		}
	}
	slices.Sort(plan.Members)
	if leader != nil {
		plan.Members = append(plan.Members, leader.Name)
	}
	return plan, nil
}
