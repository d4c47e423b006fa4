package cli

import (
	"context"
	"fmt"
	"os"

	"github.com/pgimaged/pgimaged/core/engine"
)

// runPause puts the cluster in maintenance mode, like patronictl pause: the agents keep
// watching and publishing but start, stop, clone, re-point and promote nothing, and an agent
// stopped meanwhile leaves PostgreSQL running.
func runPause(ctx context.Context, e *env, args []string) int { return setPause(ctx, e, "pause", args) }

// runResume ends maintenance mode, like patronictl resume.
func runResume(ctx context.Context, e *env, args []string) int {
	return setPause(ctx, e, "resume", args)
}

func setPause(ctx context.Context, e *env, name string, args []string) int {
	c, fs := newCommand(e, name, "-config FILE", false)
	cfg, code := c.load(e, fs, args)
	if cfg == nil {
		return code
	}
	logger := newLogger(e, cfg, orDefault(c.logLevel, "error"))
	st, err := openDCS(ctx, cfg, logger.Named("dcs"))
	if err != nil {
		return e.failf(exitFailed, "%s: cannot reach the DCS: %v", name, err)
	}
	defer st.Close()
	var p *engine.Pause
	if name == "pause" {
		p = &engine.Pause{By: "pgimaged pause"}
		if host, err := os.Hostname(); err == nil {
			p.By += " on " + host
		}
	}
	if err := engine.SetPause(ctx, st, p); err != nil {
		return e.failf(exitFailed, "%s: %v", name, err)
	}
	if p != nil {
		fmt.Fprintf(e.stdout, "cluster %s is in maintenance mode: the agents start, stop, clone and re-point nothing until `pgimaged resume`\n", cfg.Scope)
	} else {
		fmt.Fprintf(e.stdout, "cluster %s resumed: the agents act again\n", cfg.Scope)
	}
	return exitOK
}
