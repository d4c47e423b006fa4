package cli

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/pgimaged/pgimaged/core/dcs"
	"github.com/pgimaged/pgimaged/core/engine"
)

// runHistory lists a member's bootstrap and clone attempts as kept in the DCS, oldest first.
func runHistory(ctx context.Context, e *env, args []string) int {
	c, fs := newCommand(e, "history", "-config FILE [-member NAME] [-json]", true)
	member := fs.String("member", "", "member whose attempts to list (default: the configuration's name)")
	cfg, code := c.load(e, fs, args)
	if cfg == nil {
		return code
	}
	name := orDefault(*member, cfg.Name)
	logger := newLogger(e, cfg, orDefault(c.logLevel, "error"))
	atts, err := look(ctx, cfg, logger, func(ctx context.Context, st dcs.Store) ([]dcs.Attempt, error) {
		return engine.ReadHistory(ctx, st, name)
	})
	if err != nil {
		return e.failf(exitFailed, "cannot read the history of member %s: %v", name, err)
	}
	if c.jsonOut {
		if atts == nil {
			atts = []dcs.Attempt{}
		}
		writeJSON(e.stdout, atts)
		return exitOK
	}
	if len(atts) == 0 {
		fmt.Fprintf(e.stdout, "(no attempts recorded for member %s)\n", name)
		return exitOK
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STARTED\tMETHOD\tRESULT\tDURATION\tDETAIL")
	for _, a := range atts {
		// DETAIL: the error of a failed attempt, the plugin's summary of a successful one.
		result, detail := "ok", a.Summary
		if !a.OK {
			result, detail = fmt.Sprintf("failed (exit %d)", a.Exit), explainError(a.Error, lastErrorWidth)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", a.Started.UTC().Format(time.RFC3339), a.Method, result,
			a.Duration.Round(time.Millisecond), detail)
	}
	_ = tw.Flush()
	return exitOK
}
