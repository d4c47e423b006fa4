package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/pgimaged/pgimaged/core/config"
	"github.com/pgimaged/pgimaged/core/dcs"
	"github.com/pgimaged/pgimaged/core/engine"
)

// runHistory lists a member's bootstrap and clone attempts as kept in the DCS, oldest first.
func runHistory(ctx context.Context, e *env, args []string) int {
	var c common
	fs := newFlagSet(e, "history", "-config FILE [-member NAME] [-json]")
	c.register(fs, true)
	member := fs.String("member", "", "member whose attempts to list (default: the configuration's name)")
	if code, ok := parseFlags(e, fs, args, false); !ok {
		return code
	}
	cfg, code := loadConfig(e, c.configFile)
	if cfg == nil {
		return code
	}
	name := orDefault(*member, cfg.Name)
	logger := newLogger(e, cfg, orDefault(c.logLevel, "error"))
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	atts, err := readHistory(cctx, cfg, name, logger)
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
	fmt.Fprintln(tw, "STARTED\tMETHOD\tRESULT\tDURATION\tERROR")
	for _, a := range atts {
		result := "ok"
		if !a.OK {
			result = fmt.Sprintf("failed (exit %d)", a.Exit)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", a.Started.UTC().Format(time.RFC3339), a.Method, result,
			a.Duration.Round(time.Millisecond), explainError(a.Error, lastErrorWidth))
	}
	_ = tw.Flush()
	return exitOK
}

// readHistory reads member's attempts without creating a file DCS that does not exist yet.
func readHistory(ctx context.Context, cfg *config.Config, member string, logger hclog.Logger) ([]dcs.Attempt, error) {
	if cfg.DCS.Kind != config.DCSEtcd {
		path := orDefault(cfg.DCS.Path, DefaultDCSPath(cfg))
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
	}
	st, err := openDCS(ctx, cfg, logger)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	return engine.ReadHistory(ctx, st, member)
}
