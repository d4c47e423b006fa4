package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgimaged/pgimaged/core/dcs"
	"github.com/pgimaged/pgimaged/core/pg"
)

// ErrSystemIDMismatch means the cloned data directory belongs to another cluster than expected.
var ErrSystemIDMismatch = errors.New("system identifier mismatch")

// CloneOptions adjusts a clone.
type CloneOptions struct {
	// Source to clone from; nil when no member is running (only no_master methods run).
	Source *Source
	// ImageOnly stops once a method has filled the data directory: what Patroni expects of a
	// replica method.
	ImageOnly bool
	// ExpectSystemID is the cluster's system identifier (from the DCS). 0: ask the source.
	ExpectSystemID uint64
	// Methods are the replica methods to try instead of the configured chain (a reinit's).
	Methods []string
	// Recovery are recovery settings written over the method's (a standby leader's, from the
	// standby_cluster block).
	Recovery map[string]string
	// StandbyLeader: the clone makes the leader of a standby cluster, with standby_cluster's
	// create_replica_methods (Methods is ignored); see [Node.standbyChainInput].
	StandbyLeader bool
	// KeepCopy: a complete copy of the cluster whose server cannot start for a cause outside
	// the data directory ([pg.EnvironmentCause]: its port taken, shared memory refused...) is
	// kept as a replica's data directory, standby settings and pgpass file included, and the
	// clone fails with [ErrCopyKept]: the next start of that directory is the retry, not
	// another copy.
	KeepCopy bool
}

// ErrCopyKept: the method chain made a complete copy of the cluster, but its server could not
// start for a cause outside the data directory; the copy is kept for the next start.
var ErrCopyKept = errors.New("the complete copy is kept; its start is tried again, not the copy")

// CloneResult is a replica that was made.
type CloneResult struct {
	Chain            ChainResult
	SystemIdentifier uint64
	Running          bool
	// CriticalPath is the timeline of this clone.
	CriticalPath *dcs.CriticalPath
}

// PgpassPath is the pgpass file primary_conninfo refers to: beside the data directory, never
// inside it (a base backup of this member must not carry it along). It is absolute: a relative
// passfile in primary_conninfo would be read relative to the data directory.
func (n *Node) PgpassPath() string {
	d := absDir(n.Config.DataDir)
	return filepath.Join(filepath.Dir(d), filepath.Base(d)+".pgpass")
}

// absDir is dir made absolute (against the working directory), or only cleaned if that fails.
func absDir(dir string) string {
	if a, err := filepath.Abs(dir); err == nil {
		return a
	}
	return filepath.Clean(dir)
}

// Clone makes this member a replica: the method chain fills the data directory; then (unless
// ImageOnly) standby settings pointing at the source are written, PostgreSQL starts, its system
// identifier is checked and pgimaged waits until WAL streams (or, without a source, replays).
//
// The data directory must be missing, empty, or pgimaged's own marked leftover: anything else is
// refused (ErrDataDirNotEmpty, ErrHasCluster, ErrInsideCluster) and left as it is. The
// directory stays marked incomplete until it is complete; when the chain fails, what a
// keep_data method left stays (still marked) for the next attempt, never for adoption, and
// everything else this attempt created is removed.
func (n *Node) Clone(ctx context.Context, opts CloneOptions) (out CloneResult, err error) {
	dir := n.Config.DataDir
	ctx, tl := n.withTimeline(ctx, dcs.PathClone)
	defer func() { out.CriticalPath = tl.result() }()
	if err := n.cleanIncomplete(); err != nil {
		return out, stepErr("inspect data directory", err, nil)
	}
	existed, err := n.checkDataDir()
	if err != nil {
		if errors.Is(err, ErrHasCluster) {
			err = fmt.Errorf("%w (adopt it with `pgimaged run`, or move it away to clone afresh)", err)
		}
		return out, stepErr("inspect data directory", err, nil)
	}
	wals, err := n.checkWalDirs(KindClone)
	if err != nil {
		return out, stepErr("inspect WAL directory", err, nil)
	}
	if err := n.markIncomplete("clone", !existed); err != nil {
		return out, stepErr("create data directory", err, nil)
	}
	if err := n.markWalDirs(wals); err != nil {
		n.settleFailedChain()
		return out, stepErr("create data directory", err, nil)
	}
	passfile, err := n.writeSourcePgpass(opts.Source)
	if err != nil {
		n.settleFailedChain()
		return out, stepErr("write the pgpass file", err, nil)
	}
	// Without a recorded system identifier, ask the source while the method runs.
	type sysidAnswer struct {
		id  uint64
		err error
	}
	asked := make(chan sysidAnswer, 1)
	if opts.ExpectSystemID == 0 && opts.Source != nil {
		go func() {
			id, err := SourceSystemID(ctx, opts.Source)
			asked <- sysidAnswer{id, err}
		}()
	} else {
		asked <- sysidAnswer{opts.ExpectSystemID, nil}
	}
	in := n.chainInput(opts.Methods, opts.Source != nil)
	if opts.StandbyLeader {
		in = n.standbyChainInput(opts.Source != nil)
	}
	chain, err := n.cloneChain(ctx, opts.Source, in, passfile)
	out.Chain = chain
	if err != nil {
		n.settleFailedChain()
		return out, err
	}
	mk, _ := n.readMarker()
	att := &attempt{node: n, dir: dir, createdDir: mk.created}
	if removed, err := pg.RemoveCopyLeftovers(dir); err != nil {
		n.settleFailedChain()
		return out, stepErr("clean the copy", err, nil)
	} else if len(removed) > 0 {
		n.logger().Info("removed from the copy what does not belong to a new replica (the source's server files and replication slots)", "removed", removed)
	}
	fail := func(step string, err error, tail []string) (CloneResult, error) {
		err = stepErr(step, err, tail)
		n.failedAfterChain(&out.Chain, err)
		att.undo()
		n.removePgpass()
		n.ClearIncomplete()
		return out, err
	}
	sysid, err := pg.SystemIdentifier(dir)
	if err != nil {
		return fail("read system identifier", err, nil)
	}
	out.SystemIdentifier = sysid
	answer := <-asked
	if answer.err != nil {
		return fail("ask the source for its system identifier", answer.err, nil)
	}
	want := answer.id
	if want != 0 && want != sysid {
		return fail("check system identifier", fmt.Errorf("%w: the copy has %d, the cluster is %d", ErrSystemIDMismatch, sysid, want), nil)
	}
	if opts.ImageOnly {
		n.ClearIncomplete()
		return out, nil
	}
	m := n.Config.Method(chain.Method)
	phase := time.Now()
	conf := m.RecoveryConf
	if len(opts.Recovery) > 0 {
		conf = map[string]string{}
		maps.Copy(conf, m.RecoveryConf)
		maps.Copy(conf, opts.Recovery)
	}
	if err := n.writeStandby(opts.Source, chain.Result.RecoverySettings, conf, chain.Result.KeepExistingRecovery || m.KeepExistingRecoveryConf); err != nil {
		return fail("standby settings", err, nil)
	}
	srv, err := n.server()
	if err != nil {
		return fail("configure", err, nil)
	}
	att.srv = srv
	if err := pg.WriteSettings(dir, n.settings(false)); err != nil {
		return fail("configure", err, nil)
	}
	att.started = true
	wctx, restoreCause, stopWatch := n.watchRestore(ctx, opts.StandbyLeader && opts.Source == nil, pg.LogSize(n.ServerLogFile()))
	defer stopWatch()
	if err := srv.Start(wctx); err != nil {
		if opts.KeepCopy && ctx.Err() == nil && environmentCause(err) {
			return n.keepCopy(&out, srv, stepErr("start PostgreSQL", err, att.serverTail()))
		}
		return fail("start PostgreSQL", restoreCause(err), att.serverTail())
	}
	if err := srv.WaitReady(wctx); err != nil {
		return fail("wait for PostgreSQL to accept connections", restoreCause(err), att.serverTail())
	}
	stopWatch()
	tl.since(PhaseStandbyStart, phase)
	if opts.Source != nil {
		phase = time.Now()
		wctx, cancel := context.WithTimeout(ctx, n.streamTimeout())
		err := srv.WaitStreaming(wctx)
		cancel()
		if err != nil {
			return fail("wait for WAL streaming", err, att.serverTail())
		}
		tl.since(PhaseStreaming, phase)
	}
	out.Running = true
	n.ClearIncomplete()
	return out, nil
}

// settleFailedChain leaves the data directory after a failed clone: the leftovers of a
// keep_data method stay, marked, for the next attempt (never adopted: invariant 2); otherwise
// what the attempt created goes (the directory itself if it created it) and so does the mark.
// The pgpass file goes in every case: no password stays on disk for a replica that is not
// there.
func (n *Node) settleFailedChain() {
	dir := n.Config.DataDir
	n.removePgpass()
	m, ok := n.readMarker()
	if !ok {
		return
	}
	if method, keep, _ := n.Leftover(); keep {
		n.logger().Warn("the data directory keeps what the failed keep_data method left; it is marked incomplete, handed to the next attempt and never adopted", "data_dir", dir, "method", method)
		return
	}
	if err := pg.EmptyDir(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		n.logger().Error("could not empty the data directory after a failed clone; it stays marked incomplete", "data_dir", dir, "error", err)
		return
	}
	n.cleanWalDirs()
	if m.created {
		if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
			n.logger().Error("could not remove the data directory this clone created", "data_dir", dir, "error", err)
		}
	}
	n.ClearIncomplete()
}

// environmentCause reports whether err is a failed start whose reason, as PostgreSQL logged
// it, lies outside the data directory (see [pg.EnvironmentCause]).
func environmentCause(err error) bool {
	var se *pg.ServerError
	return errors.As(err, &se) && pg.EnvironmentCause(se.Reason)
}

// keepCopy ends a clone whose complete copy could not start for a cause outside it: the server
// is stopped if anything of it runs, the copy stays as it is (standby settings and the pgpass
// file its primary_conninfo names included) and loses its incomplete mark, so that it is
// adopted as this cluster's replica and started again later. The chain's last attempt records
// the failure.
func (n *Node) keepCopy(out *CloneResult, srv *pg.Server, err error) (CloneResult, error) {
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	serr := srv.Stop(sctx, "immediate")
	cancel()
	if serr != nil && !errors.Is(serr, pg.ErrNotRunning) {
		n.failedAfterChain(&out.Chain, err)
		return *out, errors.Join(err, serr)
	}
	err = fmt.Errorf("%w; %w", err, ErrCopyKept)
	n.failedAfterChain(&out.Chain, err)
	n.ClearIncomplete()
	return *out, err
}

// failedAfterChain records in the chain's last attempt, the method that filled the data
// directory, that the clone failed after it (the copy did not start, or is of another
// cluster), with the error and the log lines that explain it (PostgreSQL's, for a server
// step): the history keeps the cause once the copy is removed.
func (n *Node) failedAfterChain(chain *ChainResult, err error) {
	if len(chain.Attempts) == 0 {
		return
	}
	a := &chain.Attempts[len(chain.Attempts)-1]
	a.OK = false
	a.Error = n.secrets().Mask(err.Error())
	var se *StepError
	if errors.As(err, &se) && len(se.LogTail) > 0 {
		a.Tail = se.LogTail
	}
}

func (n *Node) streamTimeout() time.Duration {
	if t := n.Config.PostgreSQL.PGCtlTimeout; t > 0 {
		return 2 * t
	}
	return 2 * time.Minute
}

// writeStandby makes the data directory start as a standby of src: primary_conninfo (with a
// passfile, never a password) plus standby.signal, over the method's recovery settings.
func (n *Node) writeStandby(src *Source, fromPlugin, fromConfig map[string]string, keepExisting bool) error {
	dir := n.Config.DataDir
	if !keepExisting {
		if err := pg.RemoveRecovery(dir); err != nil {
			return err
		}
	}
	settings := map[string]string{}
	maps.Copy(settings, fromPlugin)
	maps.Copy(settings, fromConfig)
	delete(settings, "recovery_target_action")
	if src != nil {
		conn := src.Conn
		params := map[string]string{}
		maps.Copy(params, conn.Params)
		params["application_name"] = n.Config.Name
		if src.Password != "" {
			pf, err := n.writeSourcePgpass(src)
			if err != nil {
				return err
			}
			params["passfile"] = pf
		}
		conn.Params = params
		conn.Database = ""
		settings["primary_conninfo"] = conn.Conninfo() // with sslpassword: PostgreSQL has no other way to get it
		n.slotSetting(settings, src)
	}
	major, err := pg.DataDirVersion(dir)
	if err != nil {
		return err
	}
	return pg.WriteRecovery(dir, major, pg.Recovery{Settings: settings, Standby: true})
}

// dialReplication opens a replication connection to src, as the replication role.
func dialReplication(ctx context.Context, src *Source) (*pgconn.PgConn, error) {
	cfg, err := src.Conn.Config()
	if err != nil {
		return nil, fmt.Errorf("while parsing the source's connection string: %w", err)
	}
	if src.Password != "" {
		cfg.Password = src.Password // else libpq's rules apply: PGPASSFILE, ~/.pgpass
	}
	cfg.RuntimeParams["replication"] = "true"
	delete(cfg.RuntimeParams, "database")
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("while connecting to the source %s: %w", src.Describe(), err)
	}
	return conn, nil
}

// SourceSystemID asks the source for its system identifier over a replication connection
// (IDENTIFY_SYSTEM), as the replication role: that role may not be allowed to open a database.
func SourceSystemID(ctx context.Context, src *Source) (uint64, error) {
	row, err := identifySystem(ctx, src)
	if err != nil {
		return 0, err
	}
	id, err := strconv.ParseUint(strings.TrimSpace(string(row[0])), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("the source %s gave a system identifier %q that is not a number", src.Describe(), row[0])
	}
	return id, nil
}

// identifySystem is the source's answer to IDENTIFY_SYSTEM over a replication connection as
// the replication role: system identifier, timeline, WAL flush position, database.
func identifySystem(ctx context.Context, src *Source) ([][]byte, error) {
	row, err := replicationCommand(ctx, src, "IDENTIFY_SYSTEM")
	if err == nil && len(row) < 3 {
		err = fmt.Errorf("the source %s gave no answer to IDENTIFY_SYSTEM", src.Describe())
	}
	return row, err
}

// replicationCommand runs a command of the replication protocol on the source, over a
// replication connection as the replication role, and returns the first row of its answer.
func replicationCommand(ctx context.Context, src *Source, command string) ([][]byte, error) {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := dialReplication(cctx, src)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	results, err := conn.Exec(cctx, command).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("while asking the source %s: %s: %w", src.Describe(), command, err)
	}
	if len(results) == 0 || len(results[0].Rows) == 0 {
		return nil, fmt.Errorf("the source %s gave no answer to %s", src.Describe(), command)
	}
	return results[0].Rows[0], nil
}
