package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pgimaged/pgimaged/core/config"
	"github.com/pgimaged/pgimaged/core/dcs"
	"github.com/pgimaged/pgimaged/core/pg"
	"github.com/pgimaged/pgimaged/sdk"
)

var (
	// ErrAllMethodsFailed: every replica method that could run failed. The caller tries the whole
	// list again later.
	ErrAllMethodsFailed = errors.New("every replica method failed")
	// ErrNoMethodCanRun: there is no running source and no method has no_master set; wait for a
	// source.
	ErrNoMethodCanRun = errors.New("no replica method can run without a source (none sets no_master)")
	// ErrDataDirNotEmpty: the data directory holds files pgimaged did not create (it is not
	// empty and not marked as pgimaged's own leftover); a bootstrap or clone would have to
	// overwrite or delete them, so it refuses.
	ErrDataDirNotEmpty = errors.New("data directory is not empty")
	// ErrInsideCluster: the data directory lies inside another cluster's data directory.
	ErrInsideCluster = errors.New("data directory is inside another cluster's data directory")
	// ErrHasCluster: the data directory already holds a cluster; it is adopted, never overwritten.
	ErrHasCluster = errors.New("data directory already holds a PostgreSQL cluster")
)

// Source is the member a replica is cloned from.
type Source struct {
	Member   string // the member's name; "" for a source given on the command line or in the config
	Conn     pg.Conn
	Password string
}

// Describe returns the source for people: where and as whom, never the password.
func (s *Source) Describe() string {
	if s == nil {
		return "none"
	}
	d := s.Conn.DSN()
	if s.Member != "" {
		d = s.Member + " (" + d + ")"
	}
	return d
}

// Skip is a replica method that was not tried, and why.
type Skip struct {
	Method string `json:"method"`
	Reason string `json:"reason"`
}

// ChainResult is the outcome of one pass over the replica methods.
type ChainResult struct {
	Method   string        // the method that succeeded; "" when none did
	Result   sdk.Result    // what it reported
	Attempts []dcs.Attempt // every attempt, in order
	Skipped  []Skip
}

// ReplicaMethods is postgresql.create_replica_methods, or ["basebackup"].
func (n *Node) ReplicaMethods() []string { return replicaMethods(n.Config) }

// defaultAttempts is how often a method is tried in one pass when the config does not say.
func defaultAttempts(pluginName string) int {
	if pluginName == "basebackup" {
		return 2
	}
	return 1
}

const defaultRetryWait = 5 * time.Second

// writeSourcePgpass writes the source's credentials into the pgpass file beside the data
// directory (0600; see [Node.PgpassPath]) and returns its path, "" when the source has no
// password. The methods get it as PGPASSFILE, and it is the same file primary_conninfo's
// passfile names afterwards, so a method that writes its own primary_conninfo (pg_basebackup
// -R) names a file that still exists. It is never under /tmp: a pgimaged killed mid-clone
// leaves it where the next start finds it (beside the marked data directory) and rewrites or
// removes it.
func (n *Node) writeSourcePgpass(src *Source) (string, error) {
	if src == nil || src.Password == "" {
		return "", nil
	}
	path := n.PgpassPath()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("while creating the directory of the pgpass file %q: %w", path, err)
	}
	if err := pg.WritePgpass(path, src.Conn.PassEntries(src.Password)...); err != nil {
		return "", err
	}
	return path, nil
}

// removePgpass removes the pgpass file beside the data directory (and the service file a
// killed clone may have left).
func (n *Node) removePgpass() {
	n.removeServiceFile()
	if err := os.Remove(n.PgpassPath()); err != nil && !errors.Is(err, os.ErrNotExist) {
		n.logger().Error("could not remove the pgpass file", "path", n.PgpassPath(), "error", err)
	}
}

// prepareDataDir makes sure the data directory exists (0700) and, unless keep, is empty. Only
// called on a directory that was empty or pgimaged's own marked leftover when the attempt
// began (see [Node.checkDataDir]).
func prepareDataDir(dir string, keep bool) error {
	empty, exists, err := pg.IsEmptyDir(dir)
	if err != nil {
		return fmt.Errorf("while inspecting data directory %q: %w", dir, err)
	}
	if !exists {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("while creating data directory %q: %w", dir, err)
		}
		return nil
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("while setting the mode of data directory %q: %w", dir, err)
	}
	if empty || keep {
		return nil
	}
	if err := pg.EmptyDir(dir); err != nil {
		return fmt.Errorf("while emptying data directory %q: %w", dir, err)
	}
	return nil
}

// cloneChain runs the steps [PlanChain] gives for in (see [Node.chainInput]) until
// one fills the data directory. Before each method a non-empty data directory (the marked
// leftovers of an earlier method) is emptied unless the method sets keep_data, and so is what
// a failed method leaves. Without a source only methods with no_master run (and, for the
// leader of a standby cluster without a host, those whose plugin works without one), with an
// empty connection string. Each method is tried up to its attempts, its wait apart. passfile is the
// pgpass file with the source's credentials ("" for none). The caller ([Node.Clone]) has
// checked that the data directory is empty or pgimaged's own and marked it.
func (n *Node) cloneChain(ctx context.Context, src *Source, in ChainInput, passfile string) (ChainResult, error) {
	var out ChainResult
	log := n.logger()
	cluster := n.cluster()
	connstring := ""
	if src != nil {
		connstring = src.Conn.DSN()
	}
	env, done, err := n.methodEnv(src, passfile)
	if err != nil {
		return out, err
	}
	defer done()
	steps := PlanChain(in)
	for _, st := range steps {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		m, label := st.Method, st.Label
		if st.Skipped != "" {
			out.Skipped = append(out.Skipped, Skip{label, st.Skipped})
			if st.Plugin == "" {
				log.Warn("replica method skipped", "method", label, "reason", st.Skipped)
			} else {
				log.Info("replica method skipped", "method", label, "reason", st.Skipped)
			}
			continue
		}
		for a := 1; a <= st.Attempts; a++ {
			if a > 1 && !sleepCtx(ctx, st.Wait) {
				return out, ctx.Err()
			}
			att, res, err := n.cloneOnce(ctx, m, st.Plugin, sdk.CloneRequest{
				Method: label, Command: config.CommandFor(m, st.Plugin), NoParams: m.NoParams, Options: n.cloneSlotOptions(ctx, st.Plugin, m.Options, src), // cloneslot.go
				Cluster: cluster, ConnString: connstring, Env: env,
			})
			out.Attempts = append(out.Attempts, att)
			if err == nil {
				out.Method, out.Result = label, res
				log.Info("replica created", "method", label, "duration", att.Duration.Round(time.Millisecond), "summary", att.Summary)
				return out, nil
			}
			log.Error("replica method failed", "method", label, "attempt", a, "of", st.Attempts, "error", att.Error)
			if ctx.Err() != nil {
				return out, ctx.Err()
			}
		}
	}
	if !Runnable(steps) {
		return out, ErrNoMethodCanRun
	}
	return out, fmt.Errorf("%w: %s", ErrAllMethodsFailed, summarize(out.Attempts))
}

// summarize names each failed method once with its error; attempts of one method that failed
// the same way are counted, not repeated.
func summarize(atts []dcs.Attempt) string {
	var parts []string
	for i := 0; i < len(atts); i++ {
		a := atts[i]
		if a.OK {
			continue
		}
		same := 1
		for i+1 < len(atts) && !atts[i+1].OK && atts[i+1].Method == a.Method && atts[i+1].Error == a.Error {
			same++
			i++
		}
		label := a.Method
		if same > 1 {
			label = fmt.Sprintf("%s (%d attempts)", a.Method, same)
		}
		parts = append(parts, label+": "+a.Error)
	}
	return strings.Join(parts, "; ")
}

// cloneOnce runs one attempt of one method.
func (n *Node) cloneOnce(ctx context.Context, m *config.Method, pluginName string, req sdk.CloneRequest) (dcs.Attempt, sdk.Result, error) {
	att := dcs.Attempt{Method: m.Label, Started: time.Now()}
	rep := n.reporter(m.Label, pluginName)
	fail := func(err error) (dcs.Attempt, sdk.Result, error) {
		att.Duration = time.Since(att.Started)
		att.Exit = 1
		att.Error = n.secrets().Mask(err.Error())
		att.Tail = rep.lines()
		n.attemptEnded(KindClone, att, rep.bytesDone())
		if !m.KeepData {
			if eerr := pg.EmptyDir(n.Config.DataDir); eerr != nil && !errors.Is(eerr, os.ErrNotExist) {
				n.logger().Error("could not empty the data directory after a failed method", "error", eerr)
			}
			n.cleanWalDirs()
		} else {
			n.logger().Info("leaving data directory as the failed method left it (keep_data)", "method", m.Label)
		}
		return att, sdk.Result{}, err
	}
	if err := n.markMethod(m.Label, m.KeepData); err != nil {
		return fail(err)
	}
	if !m.KeepData {
		n.cleanWalDirs() // what a keep_data method before it left there
	}
	if err := prepareDataDir(n.Config.DataDir, m.KeepData); err != nil {
		return fail(err)
	}
	tl, phase := timelineOf(ctx), time.Now()
	inst, err := n.launch(ctx, m.Label, pluginName)
	if err != nil {
		return fail(err)
	}
	defer inst.Kill()
	if !inst.Info().Can(sdk.CapClone) {
		return fail(fmt.Errorf("plugin %s cannot clone replicas (capabilities: %v)", pluginName, inst.Info().Capabilities))
	}
	tl.span(PhasePluginLaunch, m.Label, phase, time.Now())
	rep.logger.Info("running replica method", "attempt_of", m.Label)
	phase = time.Now()
	res, err := inst.Clone(ctx, req, rep, m.Timeout)
	tl.span(PhaseCloneMethod, m.Label, phase, time.Now())
	if err != nil {
		return fail(err)
	}
	att.OK = true
	att.Duration = time.Since(att.Started)
	att.Tail = rep.lines()
	att.Summary = n.resultSummary(res)
	res.Summary = att.Summary
	n.attemptEnded(KindClone, att, rep.bytesDone())
	return att, res, nil
}

// resultSummary is the line a method's plugin reported with its result, as pgimaged shows it:
// secrets masked, on one line.
func (n *Node) resultSummary(res sdk.Result) string {
	return strings.Join(strings.Fields(n.secrets().Mask(res.Summary)), " ")
}
