package engine

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgimaged/pgimaged/core/config"
	"github.com/pgimaged/pgimaged/core/dcs"
	"github.com/pgimaged/pgimaged/core/pg"
	"github.com/pgimaged/pgimaged/sdk"
)

// The driver's side of a change of primary, re-pointing and rejoin (step_change.go).

// handOverWait bounds how long the old primary of a switchover waits, stopped, for the
// candidate to take over before it resumes.
func (a *Agent) handOverWait() time.Duration {
	return max(30*time.Second, 3*a.Node.Config.TTL)
}

// observeChange adds to obs what the decisions of decide_change.go read from the DCS and the
// running server: the pending change of primary, the time and where the WAL stands.
func (a *Agent) observeChange(ctx context.Context, obs *Observation) {
	obs.Now = time.Now()
	ch, err := ReadChange(ctx, a.store)
	if err != nil {
		// Unknown is not "none": a member that handed over would retake the free key while
		// its candidate promotes. The cycle sees the DCS as unreadable.
		obs.Cluster, obs.DCSError = nil, fmt.Errorf("while reading the pending change of primary: %w", err)
	} else {
		obs.Change, a.lastChange = ch, ch.rawString()
		a.mu.Lock()
		a.scheduled = nil
		if ch != nil && ch.Waiting(obs.Now) {
			r := ch.ChangeRequest
			a.scheduled = &r
		}
		a.mu.Unlock()
	}
	if p, err := ReadPause(ctx, a.store); err == nil {
		obs.Paused = p != nil
		a.mu.Lock()
		a.paused = obs.Paused
		a.mu.Unlock()
	}
	if st := a.pgStatus(ctx); st.Queried {
		obs.WAL = &pg.Position{InRecovery: st.InRecovery, Timeline: st.Timeline, Receiving: st.Receiving,
			Received: pg.LSN(st.Received), Replayed: pg.LSN(st.Position)}
	}
	if ch := obs.Change; ch != nil && ch.Kind == Failover && ch.Candidate == a.Node.Config.Name && ch.Phase == PhaseAsked &&
		obs.Cluster != nil && obs.Cluster.Leader == "" {
		obs.UpstreamPrimary = a.Node.upstreamPrimary(ctx)
	}
}

// tendFailoverKey keeps, on the leader, Patroni's failover key the mirror of the switchover
// scheduled for later that this cycle read ([MirrorScheduled]): written while it waits,
// removed once it ran, was aborted, replaced or cancelled.
func (a *Agent) tendFailoverKey(ctx context.Context) {
	if a.store == nil || a.cl.Leader == "" || a.cl.Leader != a.Node.Config.Name {
		return
	}
	a.mu.Lock()
	scheduled := a.scheduled
	a.mu.Unlock()
	cctx, cancel := context.WithTimeout(ctx, dcsRetryTimeout)
	defer cancel()
	if err := MirrorScheduled(cctx, a.store, scheduled, time.Now()); err != nil {
		a.Node.logger().Warn("could not keep Patroni's failover key in line with the scheduled switchover", "error", err)
	}
}

// upstreamCheckTimeout bounds how long a failover's candidate waits for each server up its
// chain to answer: a host that is down does not answer at all.
const upstreamCheckTimeout = 3 * time.Second

// upstreamHops bounds how far up a chain of cascading standbys the candidate asks.
const upstreamHops = 4

// upstreamPrimary is the host:port of the primary this standby's WAL comes from when that
// server still answers as a primary (pg_is_in_recovery() false): the server its
// primary_conninfo names, or, when that one is a standby itself (replicatefrom), the one that
// standby's WAL receiver streams from (pg_stat_wal_receiver), up to upstreamHops servers.
// Each is asked as the rewind role (the superuser unless one is configured); a standby whose
// sender that role cannot see (PostgreSQL shows it only to superusers and pg_read_all_stats)
// is asked again as the superuser. "" when a server does not answer within
// upstreamCheckTimeout, refuses the connection, streams from nowhere, or there is none to ask.
// A standby cluster's members follow their standby leader or the remote primary, which runs
// as a primary by design: they are not asked.
func (n *Node) upstreamPrimary(ctx context.Context) string {
	if n.standbyBlock() != nil {
		return ""
	}
	settings, err := pg.ReadRecovery(n.Config.DataDir)
	if err != nil || settings["primary_conninfo"] == "" {
		return ""
	}
	conn, _, err := pg.ParseConnURL(passfileKey.ReplaceAllString(settings["primary_conninfo"], "$1"))
	if err != nil {
		return ""
	}
	at := followedHostPort(settings["primary_conninfo"])
	for range upstreamHops {
		primary, sender, answered := askUpstream(ctx, rewindAt(n, "", conn))
		if answered && !primary && sender == "" && n.Config.PostgreSQL.Rewind.Username != n.superuserName() {
			primary, sender, _ = askUpstream(ctx, superuserAt(n, "", conn))
		}
		switch {
		case primary:
			return at
		case sender == "":
			return ""
		}
		host, port, err := net.SplitHostPort(sender)
		p, perr := strconv.Atoi(port)
		if err != nil || perr != nil {
			return ""
		}
		conn.Host, conn.Port, conn.Ports, at = host, p, nil, sender
	}
	return ""
}

// askUpstream asks src whether it runs as a primary and, when it is a standby, where its WAL
// receiver streams from (host:port, "" for nowhere or not visible to src's role); answered is
// false, and the others zero, when src does not answer within upstreamCheckTimeout.
func askUpstream(ctx context.Context, src *Source) (primary bool, sender string, answered bool) {
	cfg, err := src.Conn.Config()
	if err != nil {
		return false, "", false
	}
	if src.Password != "" {
		cfg.Password = src.Password
	}
	cctx, cancel := context.WithTimeout(ctx, upstreamCheckTimeout)
	defer cancel()
	c, err := pgconn.ConnectConfig(cctx, cfg)
	if err != nil {
		return false, "", false
	}
	defer c.Close(context.WithoutCancel(ctx))
	res, err := c.Exec(cctx, "SELECT pg_is_in_recovery()::text, "+
		"COALESCE((SELECT sender_host FROM pg_stat_wal_receiver WHERE status = 'streaming' AND sender_host NOT LIKE '/%'), ''), "+
		"COALESCE((SELECT sender_port::text FROM pg_stat_wal_receiver WHERE status = 'streaming'), '')").ReadAll()
	if err != nil || len(res) == 0 || len(res[0].Rows) == 0 {
		return false, "", false
	}
	row := res[0].Rows[0]
	if string(row[0]) == "false" {
		return true, "", true
	}
	if len(row[1]) == 0 || len(row[2]) == 0 {
		return false, "", true
	}
	return false, net.JoinHostPort(string(row[1]), string(row[2])), true
}

// observeRejoin adds what does not need the DCS: whom the standby follows, the replicatefrom
// tag, the rejoin methods that can run and whether a re-image may replace the directory.
func (n *Node) observeRejoin(obs *Observation) {
	if obs.DataDir == DirCluster {
		if settings, err := pg.ReadRecovery(n.Config.DataDir); err == nil && settings["primary_conninfo"] != "" {
			obs.Following = followedHostPort(settings["primary_conninfo"])
		}
	}
	if v, ok := n.Config.Tags["replicatefrom"].(string); ok {
		obs.ReplicateFrom = v
	}
	for _, label := range n.Config.PostgreSQL.RejoinMethods {
		if config.PluginNameFor(n.Config.Method(label), n.plugins().Has) != "" {
			obs.RejoinMethods = append(obs.RejoinMethods, label)
		}
	}
	obs.Reimage = n.Config.PostgreSQL.Rejoin == config.RejoinReimage
}

// executeChange carries out an effect of step_change.go; false: e is not one of them.
func (a *Agent) executeChange(ctx context.Context, e Effect) (Result, bool) {
	switch e := e.(type) {
	case HandOver:
		defer a.setPG(nil)
		return Result{Err: a.handOverNow(ctx, e.Change)}, true
	case TakeOver:
		defer a.setPG(nil)
		return Result{Err: a.takeOver(ctx, e.Change)}, true
	case AbortChange:
		next := e.Change.ChangeRequest
		next.Phase, next.Reason = PhaseAborted, e.Reason
		ok, err := AdvanceChange(ctx, a.store, e.Change, &next)
		if err == nil && !ok {
			err = errors.New("the change of primary changed while it was being aborted")
		}
		return Result{Err: err}, true
	case RunRejoin:
		defer a.setPG(nil)
		atts, err := a.Node.rejoin(ctx, a.srv, e)
		a.Node.rejoinsEnded(atts)
		a.unsave(atts...)
		return Result{Err: err, Attempts: atts}, true
	}
	return Result{}, false
}

// handOverNow stops the primary cleanly, records its shutdown checkpoint in the request and
// gives up the leader key. Should the request have changed meanwhile (aborted), the primary is
// started again at once.
func (a *Agent) handOverNow(ctx context.Context, ch *PendingChange) error {
	n := a.Node
	lsn, tli, err := n.handOver(ctx, a.srv)
	if err != nil {
		return err
	}
	next := ch.ChangeRequest
	next.Phase, next.CheckpointLSN, next.Timeline = PhaseDemoted, lsn, tli
	next.Deadline = time.Now().Add(a.handOverWait())
	ok, err := AdvanceChange(ctx, a.store, ch, &next)
	if err == nil && !ok {
		err = errors.New("the request changed before the hand-over was recorded")
	}
	if err != nil && !ok {
		// The write may have taken effect: the candidate may promote. The primary starts
		// again only once the request is known not to say demoted.
		recorded, rerr := settleHandOver(ctx, a.store, ch, &next)
		switch {
		case rerr != nil:
			return fmt.Errorf("%w; whether the hand-over was recorded is unknown (%v): PostgreSQL stays stopped", err, rerr)
		case recorded:
			err = nil
		}
	}
	if err != nil {
		if serr := a.srv.Start(ctx); serr != nil {
			return fmt.Errorf("%w; starting the primary again failed: %w", err, serr)
		}
		return err
	}
	n.logger().Info("handed over: PostgreSQL shut down cleanly; giving up the leader key", "checkpoint", lsn, "timeline", tli, "candidate", ch.Candidate)
	return a.store.ReleaseLeader(ctx)
}

// settleHandOver learns whether the hand-over next was recorded after its compare-and-swap
// failed without an answer: it aborts the request as it was before (so that a write still in
// flight can no longer take effect) and, should the request have moved on, reads it back.
// recorded is true when the request says what next says.
func settleHandOver(ctx context.Context, st dcs.Store, was *PendingChange, next *ChangeRequest) (recorded bool, err error) {
	abort := was.ChangeRequest
	abort.Phase, abort.Reason = PhaseAborted, "the old primary could not record its hand-over"
	ok, err := AdvanceChange(ctx, st, was, &abort)
	if err != nil {
		return false, err
	}
	if ok {
		return false, nil
	}
	cur, err := ReadChange(ctx, st)
	if err != nil {
		return false, err
	}
	if cur == nil {
		return false, nil
	}
	want, _ := json.Marshal(next)
	return bytes.Equal(cur.raw, want), nil
}

// takeOver makes this member the primary the request ch names: for a switchover it first
// replays the old primary's shutdown checkpoint (until the request's deadline); then it marks
// the request promoting (so that the old primary no longer resumes), takes the leader key,
// promotes, records the timeline switch and removes the request.
func (a *Agent) takeOver(ctx context.Context, ch *PendingChange) error {
	n := a.Node
	log := n.logger()
	if ch.Phase != PhasePromoting {
		if ch.Kind == Switchover {
			cctx, cancel := context.WithDeadline(ctx, ch.Deadline)
			err := catchUp(cctx, a.srv, ch.Timeline, ch.CheckpointLSN)
			cancel()
			if err != nil {
				return err
			}
		}
		next := ch.ChangeRequest
		next.Phase = PhasePromoting
		ok, err := AdvanceChange(ctx, a.store, ch, &next)
		if err != nil {
			return err
		}
		if !ok {
			return errors.New("the request changed before the promotion (aborted, or another member came first)")
		}
		cur, err := ReadChange(ctx, a.store)
		if err != nil || cur == nil {
			return fmt.Errorf("the request cannot be read after it was marked promoting: %v", err)
		}
		ch = cur
	}
	// The key first: a promotion without it would leave a primary running without the key
	// when the session is lost meanwhile. The request (promoting) keeps every other member
	// from taking the key; a promotion that fails is tried again, holding it, next cycle.
	sw, err := a.promoteHoldingKey(ctx)
	if err != nil {
		return err
	}
	sw.Reason = string(ch.Kind)
	// A failover's old leader is gone with its key: the one this agent last saw holding it,
	// else the history's newest leader.
	sw.OldLeader = cmp.Or(ch.Leader, a.lastLeader)
	if sw.OldLeader == "" || sw.OldLeader == n.Config.Name {
		if h, err := a.store.History(ctx); err == nil {
			if last, ok := h.Latest(); ok {
				sw.OldLeader = last.NewLeader
			}
		}
	}
	if ch.Force && ch.LostWindow > 0 {
		sw.Reason += fmt.Sprintf(" (forced; up to %d bytes of WAL other members held may be lost)", ch.LostWindow)
	}
	if sw.OldLeader == n.Config.Name {
		sw.OldLeader = ""
	}
	if !switched(sw) {
		log.Info("took over as the primary on the cluster's first timeline: no timeline switch to record", "kind", ch.Kind)
	} else if err := recordSwitch(ctx, a.store, sw); err != nil {
		return fmt.Errorf("while recording the switch to timeline %d in the cluster history: %w", sw.Timeline, err)
	}
	if _, err := AdvanceChange(ctx, a.store, ch, nil); err != nil {
		log.Warn("could not remove the finished change request", "error", err)
	}
	log.Info("took over as the primary", "timeline", sw.Timeline, "switch_lsn", pg.LSN(sw.LSN), "kind", ch.Kind)
	n.changeDone(ch.Kind)
	return nil
}

// repoint makes the running standby follow src: its primary_conninfo (and passfile) are
// rewritten, every other recovery setting kept, and PostgreSQL reloaded.
func (n *Node) repoint(ctx context.Context, srv *pg.Server, src *Source) error {
	settings, err := pg.ReadRecovery(n.Config.DataDir)
	if err != nil {
		return err
	}
	delete(settings, "primary_conninfo")
	if err := n.writeStandby(src, nil, settings, false); err != nil {
		return err
	}
	return srv.Reload(ctx)
}

// rejoin runs the rejoin methods on the member's own data directory, toward the leader, until
// one succeeds; then it writes standby settings toward the leader, starts PostgreSQL and waits
// until it streams. The needs-reinit mark is set before anything is changed and stays until a
// method succeeded and the standby settings are written, so that a directory a rewind left
// half-done is never started; it is set again when the rejoined standby fails to stream.
func (n *Node) rejoin(ctx context.Context, srv *pg.Server, e RunRejoin) ([]dcs.Attempt, error) {
	src, rw := memberSource(n, e.Leader), rewindSource(n, e.Leader)
	if src == nil || rw == nil {
		return nil, fmt.Errorf("the leader %s publishes a conn_url that cannot be read: %q", e.Leader.Name, e.Leader.ConnURL)
	}
	return n.rejoinToward(ctx, srv, e.Leader.Name, src, rw, e.Methods, nil)
}

// rejoinToward is [Node.rejoin] toward the server called name: the methods rewind from rw,
// the standby then streams from src with the recovery settings (none: the defaults).
func (n *Node) rejoinToward(ctx context.Context, srv *pg.Server, name string, src, rw *Source, methods []string, settings map[string]string) ([]dcs.Attempt, error) {
	log := n.logger()
	if _, running := srv.Running(); running {
		if err := srv.Stop(ctx, "fast"); err != nil {
			return nil, fmt.Errorf("while stopping PostgreSQL before the rejoin: %w", err)
		}
	}
	if err := n.markNeedsReinit("rejoin in progress toward " + name + " (a rejoin cut short leaves the directory as it is, never started)"); err != nil {
		return nil, err
	}
	if err := checkpointStandbySource(ctx, rw); err != nil { // standby_follow.go
		log.Warn("could not have the standby it rejoins make a restartpoint; pg_rewind may take its timeline for an older one", "source", rw.Describe(), "error", err)
	}
	passfile, err := n.writeSourcePgpass(rw)
	if err != nil {
		return nil, err
	}
	env, done, err := n.methodEnv(rw, passfile)
	if err != nil {
		return nil, err
	}
	defer done()
	var atts []dcs.Attempt
	var errs []error
	for _, label := range methods {
		m := n.Config.Method(label)
		pluginName := config.PluginNameFor(m, n.plugins().Has)
		att, err := n.rejoinOnce(ctx, m, pluginName, sdk.CloneRequest{
			Method: label, Command: config.CommandFor(m, pluginName), NoParams: m.NoParams, Options: rejoinOptions(pluginName, m.Options),
			Cluster: n.cluster(), ConnString: rw.Conn.DSN(), Env: env,
		})
		atts = append(atts, att)
		if err != nil {
			log.Warn("rejoin method failed", "method", label, "error", err)
			errs = append(errs, fmt.Errorf("%s: %w", label, err))
			continue
		}
		if err := n.startRejoined(ctx, srv, src, settings); err != nil {
			atts[len(atts)-1].OK, atts[len(atts)-1].Error = false, n.secrets().Mask(err.Error())
			if ctx.Err() == nil { // not a shutdown: the rejoined directory does not serve as a standby
				if merr := n.markNeedsReinit("the rejoined directory did not stream from " + name + ": " + n.secrets().Mask(err.Error())); merr != nil {
					log.Warn("could not mark the data directory as needing reinit", "error", merr)
				}
			}
			return atts, err
		}
		return atts, nil
	}
	if len(errs) == 0 {
		return atts, errors.New("no rejoin method can run")
	}
	return atts, errors.Join(errs...)
}

// rejoinOnce runs one rejoin method on the data directory as it is: nothing is emptied before
// or after.
func (n *Node) rejoinOnce(ctx context.Context, m *config.Method, pluginName string, req sdk.CloneRequest) (dcs.Attempt, error) {
	att := dcs.Attempt{Method: m.Label, Started: time.Now()}
	rep := n.reporter(m.Label, pluginName)
	end := func(err error) (dcs.Attempt, error) {
		att.Duration = time.Since(att.Started)
		att.OK = err == nil
		att.Tail = rep.lines()
		if err != nil {
			att.Exit, att.Error = 1, n.secrets().Mask(err.Error())
		}
		n.attemptEnded(KindClone, att, rep.bytesDone())
		return att, err
	}
	inst, err := n.launch(ctx, m.Label, pluginName)
	if err != nil {
		return end(err)
	}
	defer inst.Kill()
	if !inst.Info().Can(sdk.CapClone) {
		return end(fmt.Errorf("plugin %s cannot rejoin (capabilities: %v)", pluginName, inst.Info().Capabilities))
	}
	res, err := inst.Clone(ctx, req, rep, m.Timeout)
	if err == nil {
		att.Summary = n.resultSummary(res)
	}
	return end(err)
}

// rejoinOptions are the options a rejoin method runs with: the method's, and for the rewind
// plugin pg_rewind's --no-sync unless the method sets no-sync itself. pg_rewind's sync of the
// whole directory is the same work as the one PostgreSQL makes at its next start: pg_rewind
// leaves the control file saying "in archive recovery", and PostgreSQL's startup syncs every
// file of a directory not shut down cleanly (StartupXLOG, SyncDataDirectory, with
// recovery_init_sync_method) before it replays anything. That is safe because the rejoin
// marks the directory as needing a reinit, on disk, before the rewind, and takes the mark away
// only once a start has synced it ([Node.startRejoined]): a crash in between leaves a directory
// that is never started.
func rejoinOptions(pluginName string, opts sdk.Options) sdk.Options {
	if pluginName != config.DefaultRejoinMethod {
		return opts
	}
	for _, o := range opts {
		if o.Name == "no-sync" {
			return opts
		}
	}
	return append(slices.Clone(opts), sdk.Option{Name: "no-sync", Flag: true})
}

// startRejoined starts the rejoined directory as a standby of src and waits until it streams.
// Once PostgreSQL has started (its startup synced the directory, which the rejoin left unsynced:
// see [rejoinOptions]) the directory is complete and the needs-reinit mark goes: an agent
// stopped while PostgreSQL catches up starts it again as a standby. An agent stopped while
// PostgreSQL starts syncs the directory itself before it takes the mark away.
func (n *Node) startRejoined(ctx context.Context, srv *pg.Server, src *Source, settings map[string]string) error {
	dir := n.Config.DataDir
	if err := n.writeStandby(src, nil, settings, false); err != nil {
		return err
	}
	if err := pg.WriteSettings(dir, n.settings(false)); err != nil {
		return err
	}
	if err := srv.Start(ctx); err != nil {
		if ctx.Err() != nil { // a shutdown, not a directory that cannot start
			if serr := pg.SyncDataDir(dir); serr != nil {
				n.logger().Warn("could not sync the rejoined data directory; it stays marked as needing reinit", "error", serr)
			} else {
				n.clearNeedsReinit()
			}
		}
		return err
	}
	n.clearNeedsReinit()
	if err := srv.WaitReady(ctx); err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, n.streamTimeout())
	defer cancel()
	if err := srv.WaitStreaming(wctx); err != nil {
		return fmt.Errorf("the rejoined standby does not stream from %s: %w", src.Describe(), err)
	}
	return nil
}

// fromLeader returns ctx canceled once the leader key names another member than source — the
// leader the clone copies from — so that a copy from a former primary is abandoned: the next
// cycle makes it again from the new leader, which it then streams from. moved says which
// member leads then ("" while none other does); it stops the watch.
func (a *Agent) fromLeader(ctx context.Context, source string) (context.Context, func() (moved string)) {
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	var leader string // written before done is closed
	go func() {
		defer close(done)
		tick := time.NewTicker(a.LoopWait)
		defer tick.Stop()
		for {
			select {
			case <-cctx.Done():
				return
			case <-tick.C:
			}
			if cl, err := a.store.Cluster(cctx); err == nil && cl.Leader != "" && cl.Leader != source {
				leader = cl.Leader
				cancel()
				return
			}
		}
	}()
	return cctx, func() string {
		cancel()
		<-done
		return leader
	}
}
