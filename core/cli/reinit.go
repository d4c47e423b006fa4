package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/pgimaged/pgimaged/core/config"
	"github.com/pgimaged/pgimaged/core/dcs"
	"github.com/pgimaged/pgimaged/core/engine"
)

// methodList is a flag given once per method.
type methodList []string

func (m *methodList) String() string { return strings.Join(*m, ",") }

func (m *methodList) Set(v string) error {
	if v == "" {
		return errors.New("empty method name")
	}
	*m = append(*m, v)
	return nil
}

// runReinit replaces this member's data directory with a new clone, like `patronictl reinit`.
// It is refused on the leader, on a primary and on a directory of another cluster. It holds
// the data directory's lock for the whole reinit, so it runs only while no agent does.
func runReinit(ctx context.Context, e *env, args []string) int {
	var methods methodList
	c, fs := newCommand(e, "reinit", "-config FILE [--member NAME] [--method M]... [--force]", false)
	fs.Var(&methods, "method", "replica method to clone with instead of the configured chain (repeat for a list)")
	force := fs.Bool("force", false, "do not ask for confirmation")
	member := fs.String("member", "", "the member to re-clone, through its agent, from any host that reaches the DCS (default: this configuration's member)")
	cfg, code := c.load(e, fs, args)
	if cfg == nil {
		return code
	}
	opts := engine.ReinitOptions{Methods: methods}
	if *member != "" && *member != cfg.Name {
		logger := newLogger(e, cfg, orDefault(c.logLevel, "warn"))
		return reinitMember(ctx, e, cfg, logger, *member, opts, *force)
	}
	if printDiags(e, cfg, cfg.Require("pgimaged reinit", "postgresql.listen")) {
		return exitConfig
	}
	logger := newLogger(e, cfg, c.logLevel).With("member", cfg.Name)
	node := newNode(cfg, logger)

	cl, err := readCluster(ctx, cfg, logger)
	if err != nil {
		return e.failf(exitFailed, "reinit: cannot read the DCS: %v", err)
	}
	// Refusals come first, before asking and before taking the lock: nothing is touched.
	if err := node.CheckReinit(ctx, cl, opts); err != nil {
		return e.failf(exitRefused, "reinit of member %s refused: %v", cfg.Name, err)
	}
	if code, ok := confirmReinit(e, *force, cfg.DataDir, fmt.Sprintf("member %s of %s", cfg.Name, cfg.Scope)); !ok {
		return code
	}
	release, code := holdDataDir(e, node, "reinit", func() int {
		// An agent runs for this member: it carries the request out.
		return requestReinit(ctx, e, cfg.Name, func(ctx context.Context) (dcs.Store, error) {
			return openDCS(ctx, cfg, logger.Named("dcs"))
		}, opts)
	})
	if release == nil {
		return code
	}
	defer release()
	if d := node.Validate(ctx); printDiags(e, cfg, d) {
		return exitConfig
	}
	endProgress := showProgress(e, node)
	defer endProgress()
	res, err := node.Reinit(ctx, cl, opts)
	endProgress()
	if err != nil {
		code := exitFailed
		if errors.Is(err, engine.ErrReinitRefused) {
			code = exitRefused
		}
		return e.failf(code, "reinit of member %s: %v", cfg.Name, err)
	}
	fmt.Fprintf(e.stdout, "member %s re-cloned with method %s; PostgreSQL runs in %s as a standby (`pgimaged run` adopts it)\n",
		cfg.Name, res.Chain.Method, cfg.DataDir)
	return exitOK
}

// confirmReinit asks on the terminal before what's data directory dir is deleted, unless
// force. false comes with the exit code: no terminal to ask on, or the answer was no.
func confirmReinit(e *env, force bool, dir, what string) (int, bool) {
	return confirm(e, force, fmt.Sprintf("Re-clone %s: its data directory %s is deleted. Continue", what, dir),
		fmt.Sprintf("reinit deletes the data directory %s: confirm on a terminal, or give --force", dir))
}

// reinitMember is `reinit --member NAME` for a member other than the configuration's own: it
// asks that member's agent through the DCS, from any host that reaches the DCS. The leader, a
// running primary and a member the DCS does not know are refused before anything is written.
// When the member's agent does not run, the request waits in the DCS for it (exit 5).
func reinitMember(ctx context.Context, e *env, cfg *config.Config, logger hclog.Logger, member string, opts engine.ReinitOptions, force bool) int {
	if err := dcs.ValidMemberName(member); err != nil {
		return e.failf(exitUsage, "reinit --member: %v", err)
	}
	st, err := openDCS(ctx, cfg, logger.Named("dcs"))
	if err != nil {
		return e.failf(exitFailed, "reinit: cannot reach the DCS: %v", err)
	}
	defer st.Close()
	cl, err := st.Cluster(ctx)
	if err != nil {
		return e.failf(exitFailed, "reinit: cannot read the DCS: %v", err)
	}
	known, err := knownMember(ctx, st, cl, member)
	if err != nil {
		return e.failf(exitFailed, "reinit: cannot read the DCS: %v", err)
	}
	if why := memberReinitRefusal(cl, member, known); why != "" {
		return e.failf(exitRefused, "reinit of member %s refused: %s", member, why)
	}
	m, published := cl.Member(member)
	dir := "on its host"
	if published && m.PGImaged != nil && m.PGImaged.SystemIdentifier != "" {
		dir = "of system " + m.PGImaged.SystemIdentifier + " on its host"
	}
	if code, ok := confirmReinit(e, force, dir, fmt.Sprintf("member %s of %s", member, cfg.Scope)); !ok {
		return code
	}
	if err := engine.RequestReinit(ctx, st, member, engine.ReinitRequest{Methods: opts.Methods, By: reinitBy()}); err != nil {
		return e.failf(exitFailed, "reinit: %v", err)
	}
	if !published {
		return e.failf(exitPending, "the agent of member %s does not run: the request waits in the DCS (%s) and its agent carries it out when it starts; `pgimaged status` shows it pending",
			member, engine.ReinitKey(member))
	}
	return waitReinit(ctx, e, st, member)
}

// knownMember reports whether the DCS knows member: it publishes its key, keeps its history of
// attempts, or holds a reinit request for it already.
func knownMember(ctx context.Context, st dcs.Store, cl dcs.Cluster, member string) (bool, error) {
	if _, ok := cl.Member(member); ok {
		return true, nil
	}
	for _, key := range []string{engine.HistoryKey(member), engine.ReinitKey(member)} {
		if _, ok, err := st.Get(ctx, key); err != nil || ok {
			return ok, err
		}
	}
	return false, nil
}

// memberReinitRefusal says why member may not be re-cloned, as the DCS cl tells, "" when it
// may; known says whether the DCS knows the member at all (see knownMember).
func memberReinitRefusal(cl dcs.Cluster, member string, known bool) string {
	m, published := cl.Member(member)
	switch {
	case cl.Leader == member:
		return fmt.Sprintf("member %s holds the leader key: the leader is never re-cloned", member)
	case published && m.IsRunning() && m.IsPrimary():
		return fmt.Sprintf("member %s publishes a running primary: a primary is never re-cloned", member)
	case !known:
		var names []string
		for _, m := range cl.Members {
			names = append(names, m.Name)
		}
		return fmt.Sprintf("the DCS knows no member %s in this cluster (no member key, no history of attempts; members now: %s)",
			member, orDefault(strings.Join(names, ", "), "none"))
	case cl.SystemIdentifier() == "":
		return "the DCS records no cluster (initialize holds no system identifier): there is nothing to clone"
	}
	return ""
}

// reinitBy says who asks for a reinit: this command on this host.
func reinitBy() string {
	by := "pgimaged reinit"
	if host, err := os.Hostname(); err == nil {
		by += " on " + host
	}
	return by
}

// requestReinit asks the running agent of member through the DCS and waits until it has carried
// the request out (see waitReinit).
func requestReinit(ctx context.Context, e *env, member string, open func(context.Context) (dcs.Store, error), opts engine.ReinitOptions) int {
	st, err := open(ctx)
	if err != nil {
		return e.failf(exitFailed, "reinit: cannot reach the DCS: %v", err)
	}
	defer st.Close()
	if err := engine.RequestReinit(ctx, st, member, engine.ReinitRequest{Methods: opts.Methods, By: reinitBy()}); err != nil {
		return e.failf(exitFailed, "reinit: %v", err)
	}
	return waitReinit(ctx, e, st, member)
}

// waitReinit waits until member's agent has carried out the reinit request (the request key is
// gone), then reports the member's state. When the member's key vanishes meanwhile (its agent
// stopped), waiting ends: the request stays for the agent (exit 5).
func waitReinit(ctx context.Context, e *env, st dcs.Store, member string) int {
	fmt.Fprintf(e.stderr, "pgimaged: the agent of member %s runs; it was asked to re-clone it (follow with `pgimaged status`)\n", member)
	follow := followPublishedProgress(e)
	defer follow(nil)
	for {
		req, err := engine.PendingReinit(ctx, st, member)
		if err == nil && req == nil {
			break
		}
		if c, err := st.Cluster(ctx); err == nil {
			if m, ok := c.Member(member); ok && m.PGImaged != nil {
				follow(m.PGImaged.Clone)
			}
			if _, ok := c.Member(member); !ok && req != nil {
				return e.failf(exitPending, "the agent of member %s stopped before it carried the request out: the request waits in the DCS (%s) for it to start again",
					member, engine.ReinitKey(member))
			}
		}
		select {
		case <-ctx.Done():
			return e.failf(exitFailed, "reinit: stopped waiting; the request stays for the agent")
		case <-time.After(time.Second):
		}
	}
	follow(nil)
	cl, err := st.Cluster(ctx)
	if err != nil {
		return e.failf(exitFailed, "reinit: the agent took the request, but the DCS cannot be read: %v", err)
	}
	m, ok := cl.Member(member)
	switch {
	case !ok:
		return e.failf(exitFailed, "reinit: member %s is no longer published", member)
	case m.PGImaged != nil && m.PGImaged.Refused != nil && m.PGImaged.Refused.Request == dcs.RequestReinit:
		return e.failf(exitRefused, "reinit of member %s refused: %s", member, m.PGImaged.Refused.Reason)
	case m.State == dcs.StateFailed:
		msg := ""
		if m.PGImaged != nil {
			msg = m.PGImaged.LastError
		}
		return e.failf(exitFailed, "reinit of member %s failed: %s", member, msg)
	}
	fmt.Fprintf(e.stdout, "member %s re-cloned by its agent; state %s\n", member, m.State)
	return exitOK
}
