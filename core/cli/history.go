package cli

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/pgimaged/pgimaged/core/dcs"
	"github.com/pgimaged/pgimaged/core/engine"
)

// runHistory lists a member's bootstrap and clone attempts as kept in the DCS, oldest first,
// then the cluster's timeline switches (Patroni's history, which `patronictl history` shows);
// -timelines lists only those.
func runHistory(ctx context.Context, e *env, args []string) int {
	c, fs := newCommand(e, "history", "-config FILE [-member NAME] [-timelines] [-json]", true)
	member := fs.String("member", "", "member whose attempts to list (default: the configuration's name)")
	timelines := fs.Bool("timelines", false, "list only the cluster's timeline switches (its changes of primary), as patronictl history does")
	cfg, code := c.load(e, fs, args)
	if cfg == nil {
		return code
	}
	name := orDefault(*member, cfg.Name)
	logger := newLogger(e, cfg, orDefault(c.logLevel, "error"))
	type read struct {
		atts     []dcs.Attempt
		switches []dcs.TimelineSwitch
	}
	got, err := look(ctx, cfg, logger, func(ctx context.Context, st dcs.Store) (read, error) {
		var r read
		var err error
		if !*timelines {
			if r.atts, err = engine.ReadHistory(ctx, st, name); err != nil {
				return r, fmt.Errorf("cannot read the history of member %s: %w", name, err)
			}
		}
		h, err := st.History(ctx)
		if err != nil {
			return r, fmt.Errorf("cannot read the cluster's timeline history: %w", err)
		}
		r.switches = h.Switches
		return r, nil
	})
	if err != nil {
		return e.failf(exitFailed, "%v", err)
	}
	if *timelines {
		if c.jsonOut {
			writeJSON(e.stdout, orEmpty(got.switches))
		} else if len(got.switches) == 0 {
			fmt.Fprintln(e.stdout, "(no timeline switches recorded: the cluster is on the timeline it began on)")
		} else {
			writeSwitches(e.stdout, got.switches)
		}
		return exitOK
	}
	if c.jsonOut {
		writeJSON(e.stdout, orEmpty(got.atts))
		return exitOK
	}
	if len(got.atts) == 0 {
		fmt.Fprintf(e.stdout, "(no attempts recorded for member %s)\n", name)
	} else {
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "STARTED\tMETHOD\tRESULT\tDURATION\tDETAIL")
		for _, a := range got.atts {
			// DETAIL: the error of a failed attempt, the plugin's summary of a successful one.
			result, detail := "ok", a.Summary
			if !a.OK {
				result, detail = fmt.Sprintf("failed (exit %d)", a.Exit), explainError(a.Error, lastErrorWidth)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", a.Started.UTC().Format(time.RFC3339), a.Method, result,
				a.Duration.Round(time.Millisecond), detail)
		}
		_ = tw.Flush()
	}
	if len(got.switches) > 0 {
		fmt.Fprintln(e.stdout)
		writeSwitches(e.stdout, got.switches)
	}
	return exitOK
}
