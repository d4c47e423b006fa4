package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/pgimaged/pgimaged/core/config"
	"github.com/pgimaged/pgimaged/core/dcs"
	"github.com/pgimaged/pgimaged/core/engine"
)

// runSwitchover hands the primary role to a replica while the primary runs, like `patronictl
// switchover`: the leader's agent shuts PostgreSQL down cleanly, the candidate replays up to
// that shutdown checkpoint, promotes and takes the leader key; the old primary follows it.
func runSwitchover(ctx context.Context, e *env, args []string) int {
	return runChange(ctx, e, engine.Switchover, args)
}

// runFailover makes a member the primary while no member holds the leader key: the candidate
// must be the most advanced of the running members unless --force.
func runFailover(ctx context.Context, e *env, args []string) int {
	return runChange(ctx, e, engine.Failover, args)
}

func runChange(ctx context.Context, e *env, kind engine.ChangeKind, args []string) int {
	name := string(kind)
	usage := "-config FILE [--candidate NAME] [--scheduled TIME] [--yes] | -config FILE --cancel"
	if kind == engine.Failover {
		usage = "-config FILE --candidate NAME [--force] [--yes]"
	}
	c, fs := newCommand(e, name, usage, true)
	candidate := fs.String("candidate", "", "the member to make the primary")
	yes := fs.Bool("yes", false, "do not ask for confirmation")
	var force *bool
	if kind == engine.Failover {
		force = fs.Bool("force", false, "accept a candidate that is not the most advanced member (what it lacks is lost)")
	}
	timeout := fs.Duration("timeout", 5*time.Minute, "how long to wait for the agents to carry the change out")
	var scheduled *string
	var cancelIt *bool
	if kind == engine.Switchover {
		scheduled = fs.String("scheduled", "", "hand over at this time (ISO 8601 with its time zone: 2026-12-07T18:30:00+00:00), not now; the candidate is checked then")
		cancelIt = fs.Bool("cancel", false, "cancel the switchover scheduled for later")
	}
	cfg, code := c.load(e, fs, args)
	if cfg == nil {
		return code
	}
	if cancelIt != nil && *cancelIt {
		return cancelScheduled(ctx, e, cfg)
	}
	if scheduled != nil && *scheduled != "" {
		return scheduleSwitchover(ctx, e, cfg, *scheduled, *candidate, *yes, *timeout)
	}
	if kind == engine.Failover && *candidate == "" {
		return e.failf(exitUsage, "failover needs --candidate NAME: which member becomes the primary is the operator's decision")
	}
	logger := newLogger(e, cfg, orDefault(c.logLevel, "error"))
	st, err := openDCS(ctx, cfg, logger.Named("dcs"))
	if err != nil {
		return e.failf(exitFailed, "%s: cannot reach the DCS: %v", name, err)
	}
	defer st.Close()
	cl, err := st.Cluster(ctx)
	if err != nil {
		return e.failf(exitFailed, "%s: cannot read the DCS: %v", name, err)
	}
	req, err := checkChange(ctx, cfg, st, cl, kind, *candidate, force != nil && *force)
	if err != nil {
		return e.failf(exitRefused, "%s refused: %v", name, err)
	}
	question := fmt.Sprintf("Make member %s the primary of %s", req.Candidate, cfg.Scope)
	switch {
	case req.Leader != "":
		question += fmt.Sprintf(" (member %s is stopped cleanly and follows it)", req.Leader)
	case req.LostWindow > 0:
		question += fmt.Sprintf(", losing up to %d bytes of WAL that other members hold beyond it", req.LostWindow)
	}
	if code, ok := confirm(e, *yes, question, question+": confirm on a terminal, or give --yes"); !ok {
		return code
	}
	req.By = "pgimaged " + name
	if host, err := os.Hostname(); err == nil {
		req.By += " on " + host
	}
	req.At = time.Now().UTC()
	req.Deadline = req.At.Add(*timeout)
	if err := engine.RequestChange(ctx, st, req); err != nil {
		if errors.Is(err, engine.ErrChangePending) {
			return e.failf(exitRefused, "%s refused: %v", name, err)
		}
		return e.failf(exitFailed, "%s: %v", name, err)
	}
	fmt.Fprintf(e.stderr, "pgimaged: %s asked; waiting for the agents (at most %s)\n", req.Describe(), *timeout)
	started := time.Now()
	wctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	out, err := engine.AwaitChange(wctx, st, req, 200*time.Millisecond)
	if err != nil {
		return e.failf(exitFailed, "%s: %v", name, err)
	}
	if c.jsonOut {
		writeJSON(e.stdout, map[string]any{"kind": name, "candidate": req.Candidate, "old_leader": req.Leader, "done": out.Done,
			"leader": out.Leader, "timeline": out.Timeline, "reason": out.Reason, "lost_window": req.LostWindow,
			"seconds": time.Since(started).Seconds()})
	}
	if !out.Done {
		leads := "no member leads"
		if out.Leader != "" {
			leads = "member " + out.Leader + " leads"
		}
		return e.failf(exitFailed, "%s to %s did not happen: %s (%s)", name, req.Candidate, out.Reason, leads)
	}
	if !c.jsonOut {
		fmt.Fprintf(e.stdout, "%s done: member %s leads on timeline %d (%.1f s)\n", name, out.Leader, out.Timeline, time.Since(started).Seconds())
	}
	return exitOK
}

// scheduleSwitchover records a switchover from the leader to candidate (none: the most
// advanced healthy replica at that time) for the time at. The leader's agent checks the
// candidate when the time comes and hands over, or aborts it with the reason.
func scheduleSwitchover(ctx context.Context, e *env, cfg *config.Config, at, candidate string, yes bool, timeout time.Duration) int {
	when, err := engine.ParseSchedule(at, time.Now())
	if err != nil {
		return e.failf(exitUsage, "switchover --scheduled: %v", err)
	}
	logger := newLogger(e, cfg, "error")
	st, err := openDCS(ctx, cfg, logger.Named("dcs"))
	if err != nil {
		return e.failf(exitFailed, "switchover: cannot reach the DCS: %v", err)
	}
	defer st.Close()
	cl, err := st.Cluster(ctx)
	if err != nil {
		return e.failf(exitFailed, "switchover: cannot read the DCS: %v", err)
	}
	if p, err := engine.ReadPause(ctx, st); err != nil {
		return e.failf(exitFailed, "switchover: cannot read the DCS: %v", err)
	} else if p != nil {
		return e.failf(exitRefused, "switchover refused: the cluster is paused (maintenance mode): a switchover cannot be scheduled until pgimaged resume")
	}
	switch _, known := cl.Member(candidate); {
	case cl.Leader == "":
		return e.failf(exitRefused, "switchover refused: no member holds the leader key: a switchover needs a running primary; use failover --candidate")
	case candidate == cl.Leader:
		return e.failf(exitRefused, "switchover refused: member %s is the leader already", candidate)
	case candidate != "" && !known:
		return e.failf(exitRefused, "switchover refused: member %s is not published in scope %s", candidate, cfg.Scope)
	}
	req := engine.ChangeRequest{Kind: engine.Switchover, Leader: cl.Leader, Candidate: candidate, ScheduledAt: when.UTC(),
		At: time.Now().UTC(), Deadline: when.UTC().Add(timeout), By: "pgimaged switchover", Phase: engine.PhaseAsked}
	if host, err := os.Hostname(); err == nil {
		req.By += " on " + host
	}
	question := fmt.Sprintf("Schedule the %s", req.Describe())
	if code, ok := confirm(e, yes, question, question+": confirm on a terminal, or give --yes"); !ok {
		return code
	}
	if err := engine.RequestChange(ctx, st, req); err != nil {
		if errors.Is(err, engine.ErrChangePending) {
			return e.failf(exitRefused, "switchover refused: %v", err)
		}
		return e.failf(exitFailed, "switchover: %v", err)
	}
	_ = engine.MirrorScheduled(ctx, st, &req, time.Now()) // the leader's agent writes it too
	fmt.Fprintf(e.stdout, "%s: member %s hands over then if the candidate passes the switchover's checks; pgimaged switchover --cancel cancels it\n",
		req.Describe(), cl.Leader)
	return exitOK
}

// cancelScheduled removes the switchover scheduled for later.
func cancelScheduled(ctx context.Context, e *env, cfg *config.Config) int {
	logger := newLogger(e, cfg, "error")
	st, err := openDCS(ctx, cfg, logger.Named("dcs"))
	if err != nil {
		return e.failf(exitFailed, "switchover --cancel: cannot reach the DCS: %v", err)
	}
	defer st.Close()
	p, err := engine.CancelScheduled(ctx, st)
	switch {
	case err != nil:
		return e.failf(exitFailed, "switchover --cancel: %v", err)
	case p == nil:
		return e.failf(exitRefused, "switchover --cancel: no switchover is scheduled")
	}
	fmt.Fprintf(e.stdout, "cancelled: %s\n", p.Describe())
	return exitOK
}

// checkChange checks the change against what the members publish; a switchover refused for
// its candidates' lag is checked again once they have published anew (at most loop_wait and a
// second later).
func checkChange(ctx context.Context, cfg *config.Config, st dcs.Store, cl dcs.Cluster, kind engine.ChangeKind, candidate string, force bool) (engine.ChangeRequest, error) {
	if kind == engine.Switchover {
		return engine.CheckSwitchoverSettled(ctx, st.Cluster, cl, candidate, cfg.MaximumLagOnFailover, cfg.LoopWait+time.Second, 200*time.Millisecond)
	}
	return engine.CheckFailover(engine.InSynchronousMode(cl, cfg.Replication.SynchronousMode), candidate, force)
}

// confirm asks question on the terminal unless yes; without a terminal it fails with
// noTerminal (a usage error: the flag that confirms was not given). ok false: the command ends
// with code.
func confirm(e *env, yes bool, question, noTerminal string) (code int, ok bool) {
	if yes {
		return 0, true
	}
	f := os.Stdin
	if !term.IsTerminal(int(f.Fd())) {
		return e.failf(exitUsage, "%s", noTerminal), false
	}
	fmt.Fprintf(e.stderr, "%s? [y/N] ", question)
	answer, _ := bufio.NewReader(f).ReadString('\n')
	if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
		return e.failf(exitFailed, "cancelled; nothing was changed"), false
	}
	return 0, true
}
