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
	c, fs := newCommand(e, "reinit", "-config FILE [--method M]... [--force]", false)
	fs.Var(&methods, "method", "replica method to clone with instead of the configured chain (repeat for a list)")
	force := fs.Bool("force", false, "do not ask for confirmation")
	cfg, code := c.load(e, fs, args, "postgresql.listen")
	if cfg == nil {
		return code
	}
	logger := newLogger(e, cfg, c.logLevel).With("member", cfg.Name)
	node := newNode(cfg, logger)
	opts := engine.ReinitOptions{Methods: methods}

	cl, err := readCluster(ctx, cfg, logger)
	if err != nil {
		return e.failf(exitFailed, "reinit: cannot read the DCS: %v", err)
	}
	// Refusals come first, before asking and before taking the lock: nothing is touched.
	if err := node.CheckReinit(ctx, cl, opts); err != nil {
		return e.failf(exitRefused, "reinit of member %s refused: %v", cfg.Name, err)
	}
	if !*force {
		f := os.Stdin
		if !term.IsTerminal(int(f.Fd())) {
			return e.failf(exitUsage, "reinit deletes the data directory %s: confirm on a terminal, or give --force", cfg.DataDir)
		}
		fmt.Fprintf(e.stderr, "Re-clone member %s of %s: its data directory %s is deleted. Continue? [y/N] ", cfg.Name, cfg.Scope, cfg.DataDir)
		answer, _ := bufio.NewReader(f).ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
			return e.failf(exitFailed, "reinit cancelled; nothing was changed")
		}
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
	res, err := node.Reinit(ctx, cl, opts)
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

// requestReinit asks the running agent of member through the DCS and waits until it has carried
// the request out (the request key is gone), then reports the member's state.
func requestReinit(ctx context.Context, e *env, member string, open func(context.Context) (dcs.Store, error), opts engine.ReinitOptions) int {
	st, err := open(ctx)
	if err != nil {
		return e.failf(exitFailed, "reinit: cannot reach the DCS: %v", err)
	}
	defer st.Close()
	by := "pgimaged reinit"
	if host, err := os.Hostname(); err == nil {
		by += " on " + host
	}
	if err := engine.RequestReinit(ctx, st, member, engine.ReinitRequest{Methods: opts.Methods, By: by}); err != nil {
		return e.failf(exitFailed, "reinit: %v", err)
	}
	fmt.Fprintf(e.stderr, "pgimaged: the agent of member %s runs; it was asked to re-clone it (follow with `pgimaged status`)\n", member)
	for {
		req, err := engine.PendingReinit(ctx, st, member)
		if err == nil && req == nil {
			break
		}
		select {
		case <-ctx.Done():
			return e.failf(exitFailed, "reinit: stopped waiting; the request stays for the agent")
		case <-time.After(time.Second):
		}
	}
	cl, err := st.Cluster(ctx)
	if err != nil {
		return e.failf(exitFailed, "reinit: the agent took the request, but the DCS cannot be read: %v", err)
	}
	m, ok := cl.Member(member)
	switch {
	case !ok:
		return e.failf(exitFailed, "reinit: member %s is no longer published", member)
	case m.PGImaged != nil && strings.HasPrefix(m.PGImaged.LastError, "reinit refused: "):
		return e.failf(exitRefused, "reinit of member %s %s", member, strings.TrimPrefix(m.PGImaged.LastError, "reinit "))
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
