package engine

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pgimaged/pgimaged/core/config"
	"github.com/pgimaged/pgimaged/core/dcs"
	"github.com/pgimaged/pgimaged/core/pg"
)

// ErrForeignCluster means the data directory holds a cluster whose system identifier differs from the
// one the DCS records for this scope. pgimaged refuses to touch it.
var ErrForeignCluster = errors.New("data directory belongs to another cluster")

// ErrRefused means the data directory holds a cluster pgimaged cannot safely start or change (for
// example a damaged pg_control).
var ErrRefused = errors.New("pgimaged refuses the data directory")

// maxHistory is how many attempts a member publishes.
const maxHistory = 10

// Agent is the node loop of `pgimaged run`, a short driver of [Step]: on each cycle it
// observes once (the DCS, the data directory, PostgreSQL asked once), steps, carries out the
// effects and feeds each awaited effect's result back, and keeps the member published.
type Agent struct {
	Node *Node
	// Open opens a DCS session. The agent opens a new one when a session is lost.
	Open func(ctx context.Context) (dcs.Store, error)
	// LoopWait is the longest time between two cycles when nothing changes.
	LoopWait time.Duration
	// ReadBackWait is the pause between reads that settle an uncertain DCS write (default 1s).
	ReadBackWait time.Duration
	// Started is when the agent's process started ([ProcessStart]), where its critical path
	// begins; zero: when Run is called.
	Started time.Time

	// st is the state machine's state, owned by the loop.
	st State
	// cl is the DCS state the cycle observed.
	cl dcs.Cluster

	mu      sync.Mutex
	store   dcs.Store
	state   string
	role    string
	lastErr string
	history []dcs.Attempt
	srv     *pg.Server
	sysid   string
	lastFP  string
	// snap is what Snapshot returns, refreshed after each cycle.
	snap snapshotHolder
	// peers are the members as last read, to name a replica's upstream.
	peers []dcs.Member
	// unsaved are attempts not yet written into the DCS history.
	unsaved []dcs.Attempt
	// progress is the running method's progress, published at most every progressEvery.
	progress   *dcs.CloneProgress
	progressAt time.Time
	rate       rateMeter
	// started is the agent_start phase, ended by the first read of the DCS.
	started dcs.Phase
	// path is the critical path of the last bootstrap or clone, published in the member key.
	path *dcs.CriticalPath
	// pgNow is what PostgreSQL answered this cycle; nil until asked, and again after an
	// effect that starts, stops or replaces it.
	pgNow *pgStatus
	// run is the critical path of the last bootstrap or clone, and when it ended.
	run struct {
		tl   *timeline
		done time.Time
	}
	// tryingAt is when this member last raced for initialize.
	tryingAt time.Time
	// lastLeader is the member that held the leader key when the DCS was last read with one
	// held: the old leader a failover records once that key has expired.
	lastLeader string
	// lastChange is the pending change of primary as the cycle read it ("" for none).
	lastChange string
	// lastStandby is the standby cluster's record as the cycle read it ("" for none).
	lastStandby string
	// toldStandby: what the log last said of the DCS's standby_cluster block against this
	// configuration's (standby_follow.go).
	toldStandby string
	// paused: the cluster was in maintenance mode when last read; stopping the agent then
	// leaves PostgreSQL running.
	paused bool
	// scheduled: the switchover scheduled for later when the change key was last read; nil
	// for none.
	scheduled *ChangeRequest

	// Reloaded, if set, is called by the loop with each configuration a reload took (after
	// Node.Config holds it), for what lives outside the engine: log level and file, the API's
	// credentials.
	Reloaded func(*config.Config)
	// reloadCh carries reload requests to the loop ([Agent.Reload]); lastReload is how the last
	// one ended, published in the member key.
	reloadOnce sync.Once
	reloadCh   chan reloadRequest
	lastReload *dcs.ReloadOutcome
	// repl is what the upkeep of slots and synchronous replication remembers.
	repl replicationState
	// events is what was last logged about the DCS and the leader key.
	events keyEvents
	// failsafe is failsafe mode's state (failsafe.go).
	failsafe failsafeState
}

// Run drives the node until ctx ends; then it stops PostgreSQL (fast), gives up its keys and
// returns nil. It returns an error only for what waiting cannot fix, such as a data directory
// of another cluster.
func (a *Agent) Run(ctx context.Context) error {
	n := a.Node
	log := n.logger()
	if a.LoopWait <= 0 {
		a.LoopWait = config.DefaultLoopWait // an Agent built without a configuration's loop_wait
	}
	srv, err := n.server()
	if err != nil {
		return fmt.Errorf("postgresql.listen: %w", err)
	}
	a.mu.Lock()
	a.srv = srv
	a.mu.Unlock()
	a.st = State{Name: n.Config.Name, Scope: n.Config.Scope, DataDir: n.Config.DataDir, LoopWait: a.LoopWait,
		TTL: n.Config.TTL, NeedsReinitMark: n.NeedsReinitPath(), Status: dcs.StateStarting}
	a.sync()
	a.started = dcs.Phase{Name: PhaseAgentStart, Start: a.Started}
	if a.started.Start.IsZero() {
		a.started.Start = time.Now()
	}
	a.snap.mu.Lock()
	a.snap.snap = Snapshot{Scope: n.Config.Scope, Name: n.Config.Name, Started: time.Now()}
	a.snap.mu.Unlock()
	a.followProgress(ctx)
	a.followFailsafe(ctx)
	defer a.shutdown()

	var watch <-chan struct{}
	waitingSaid := false
	for {
		if ctx.Err() != nil {
			return nil
		}
		if a.store == nil {
			st, err := a.Open(ctx)
			if err != nil {
				a.dcsError(err)
				a.noteDCS(err)
				if !waitingSaid {
					log.Warn("waiting for the DCS", "error", err)
					waitingSaid = true
				}
				if !sleepCtx(ctx, min(a.LoopWait, 2*time.Second)) {
					return nil
				}
				continue
			}
			a.store = st
			watch = st.Watch(ctx) // ends when the store is closed
		}
		select {
		case <-a.store.Lost():
			// The keys this node held are gone; only a new session can take them again.
			log.Warn("DCS session lost; opening a new one")
			a.dcsError(dcs.ErrSessionLost)
			a.dropLeader()
			a.noteLeader(false, "", "the DCS session was lost")
			_ = a.store.Close()
			a.store = nil
			continue
		default:
		}
		next, err := a.cycle(ctx)
		if err == nil && ctx.Err() == nil {
			a.tendReplication(ctx)
			a.tendConfigKey(ctx) // patroniconfig.go
			a.tendFailoverKey(ctx)
		}
		if ctx.Err() == nil {
			if errors.Is(err, dcs.ErrSessionLost) || errors.Is(err, dcs.ErrClosed) || errors.Is(err, dcs.ErrUnavailable) {
				a.dcsError(err)
			}
			a.refreshSnapshot(ctx)
		}
		switch {
		case IsFatal(err):
			return err
		case errors.Is(err, dcs.ErrSessionLost), errors.Is(err, dcs.ErrClosed):
			log.Warn("DCS session lost; opening a new one", "error", err)
			_ = a.store.Close()
			a.store = nil
			continue
		case errors.Is(err, dcs.ErrUnavailable):
			if !waitingSaid {
				log.Warn("waiting for the DCS", "error", err)
				waitingSaid = true
			}
			next = min(a.LoopWait, 2*time.Second)
		case err != nil && ctx.Err() == nil:
			log.Error("cycle failed", "error", err)
		default:
			waitingSaid = false
		}
		if next <= 0 {
			continue
		}
		if !a.wait(ctx, next, &watch) {
			return nil
		}
	}
}

// cycle observes once, then steps and carries out the effects until Step ends the cycle. It
// returns how long to wait before the next cycle (0: at once) unless a change in the DCS comes
// first.
func (a *Agent) cycle(ctx context.Context) (time.Duration, error) {
	a.setPG(nil)
	obs := a.observe(ctx)
	st, effs := Step(a.st, obs)
	for {
		a.st = st
		a.sync()
		last := effs[len(effs)-1]
		for _, e := range effs[:len(effs)-1] {
			a.execute(ctx, e)
		}
		switch e := last.(type) {
		case Wait:
			return e.D, nil
		case Fail:
			return e.D, e.Err
		}
		res := a.execute(ctx, last)
		if ctx.Err() != nil {
			return 0, nil
		}
		obs.Result = &res
		st, effs = Step(a.st, obs)
	}
}

// observe reads the DCS, the pending reinit request, the data directory and PostgreSQL.
func (a *Agent) observe(ctx context.Context) Observation {
	n := a.Node
	cl, err := a.store.Cluster(ctx)
	if err != nil {
		return n.observe(ctx, nil, err, nil, func() pgStatus { return a.pgStatus(ctx) })
	}
	if a.started.End.IsZero() {
		a.started.End = time.Now()
		n.logger().Debug("phase", "name", PhaseAgentStart, "seconds", a.started.Seconds())
	}
	a.cl = cl
	if cl.Leader != "" {
		a.lastLeader = cl.Leader
	}
	a.lastFP = a.fingerprint(cl)
	a.mu.Lock()
	a.peers = cl.Members
	a.mu.Unlock()
	req, rerr := PendingReinit(ctx, a.store, n.Config.Name)
	rec, recErr := a.readStandbyRecord(ctx) // standby_follow.go
	obs := n.observe(ctx, &cl, nil, req, func() pgStatus { return a.pgStatus(ctx) })
	obs.ReinitError = rerr
	a.observeChange(ctx, &obs)
	a.observeStandbyRecord(&obs, rec, recErr) // standby_promote.go
	a.observeRestart(ctx, &obs)
	return obs
}

// pgStatus is what PostgreSQL answered this cycle, asked now if it was not yet.
func (a *Agent) pgStatus(ctx context.Context) pgStatus {
	a.mu.Lock()
	now, srv := a.pgNow, a.srv
	a.mu.Unlock()
	if now != nil {
		return *now
	}
	st := a.Node.queryPG(ctx, srv)
	a.setPG(&st)
	return st
}

func (a *Agent) setPG(st *pgStatus) {
	a.mu.Lock()
	a.pgNow = st
	a.mu.Unlock()
}

// sync copies what the state machine publishes for Snapshot and the progress reports.
func (a *Agent) sync() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.state, a.role, a.sysid = a.st.Status, a.st.Role, a.st.SysID
	a.lastErr = a.Node.secrets().Mask(a.st.LastErr)
	a.history = slices.Clone(a.st.History)
}

// execute carries out one effect; an awaited effect's outcome is its result.
func (a *Agent) execute(ctx context.Context, e Effect) Result {
	n := a.Node
	log := n.logger()
	switch e := e.(type) {
	case TryInitialize:
		a.tryingAt = time.Now()
		won, err := a.store.TryInitialize(ctx)
		return Result{Won: won, Err: err}
	case SetInitialize:
		return Result{Err: a.store.SetInitialize(ctx, e.SysID)}
	case ReadBackInitialize:
		written, known := a.readBackInitialize(ctx, e.SysID)
		return Result{Written: written, Known: known}
	case ReleaseInitialize:
		return Result{OK: a.releaseInitialize(ctx)}
	case AcquireLeader:
		held, err := a.store.AcquireLeader(ctx, n.Config.Name)
		return Result{Held: held, Err: err}
	case RunBootstrap:
		defer a.setPG(nil)
		return a.runBootstrap(ctx)
	case RunChain:
		defer a.setPG(nil)
		return a.runChain(ctx, e)
	case CloneRemote:
		defer a.setPG(nil)
		return a.cloneRemote(ctx)
	case StartPG:
		defer a.setPG(nil)
		if e.Primary && !alive(a.store) {
			// The key was taken in a session that is gone since: another member may lead.
			return Result{Err: fmt.Errorf("before starting a primary: %w", dcs.ErrSessionLost), Prepare: true}
		}
		if err := pg.WriteSettings(n.Config.DataDir, n.settings(e.Primary)); err != nil {
			return Result{Err: err, Prepare: true}
		}
		if err := a.srv.Start(ctx); err != nil {
			return Result{Err: err}
		}
		return Result{Err: a.srv.WaitReady(ctx)}
	case StopPG:
		defer a.setPG(nil)
		if e.Mode == StopImmediate {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			_ = a.srv.Stop(sctx, "immediate")
			cancel()
			return Result{}
		}
		return Result{Err: a.stopServer(ctx)}
	case WriteStandby:
		src := memberSource(n, e.Leader)
		if src == nil {
			return Result{Err: fmt.Errorf("the leader %s publishes a conn_url that cannot be read: %q", e.Leader.Name, e.Leader.ConnURL)}
		}
		if e.Reload {
			return Result{Err: n.repoint(ctx, a.srv, src)}
		}
		return Result{Err: n.writeStandby(src, nil, nil, false)}
	case PromoteStandby:
		return Result{Err: a.promoteStandby(ctx, e)} // standby_promote.go
	case FollowRemote:
		return Result{Err: n.followRemote(ctx, a.srv, e)} // standby_leader.go
	case FollowStandby:
		defer a.setPG(nil)
		return a.followStandby(ctx, e) // standby_follow.go
	case CleanLeftover:
		defer a.setPG(nil)
		return Result{Err: n.cleanIncomplete()}
	case RemoveCluster:
		defer a.setPG(nil)
		n.cleanWalDirs()
		if err := pg.EmptyDir(n.Config.DataDir); err != nil {
			log.Error("could not remove the new cluster", "error", err)
		} else {
			n.ClearIncomplete()
		}
	case Mark:
		switch e.Kind {
		case MarkLed:
			n.markLed(e.On)
		case MarkComplete:
			n.ClearIncomplete()
		case MarkNeedsReinit:
			if !e.On {
				n.clearNeedsReinit()
			} else if err := n.markNeedsReinit(e.Reason); err != nil {
				log.Error("could not mark the data directory as needing reinit", "error", err)
			}
		}
	case Publish:
		a.publish(ctx, e.Member)
		if e.EndPath && a.run.tl != nil {
			a.published(ctx, a.run.tl, a.run.done)
			a.run.tl = nil
		}
	case DeleteReinit:
		a.endReinit(ctx)
	case EndRestart:
		a.endRestart(ctx, e)
	case HandOver, TakeOver, AbortChange, RunRejoin:
		res, _ := a.executeChange(ctx, e)
		return res
	case Log:
		args := make([]any, len(e.Args))
		for i, v := range e.Args {
			if err, ok := v.(error); ok {
				v = n.secrets().Mask(err.Error())
			}
			args[i] = v
		}
		switch e.Level {
		case "error":
			log.Error(e.Msg, args...)
		case "warn":
			log.Warn(e.Msg, args...)
		case "info":
			log.Info(e.Msg, args...)
		default:
			log.Debug(e.Msg, args...)
		}
	}
	return Result{}
}

// runBootstrap runs the bootstrap method while this session holds initialize. Losing the DCS
// session during the bootstrap cancels it: a node never bootstraps without the key.
func (a *Agent) runBootstrap(ctx context.Context) Result {
	n := a.Node
	log := n.logger()
	ctx, tl := n.withTimeline(ctx, dcs.PathBootstrap)
	tl.prepend(a.started)
	tl.since(PhaseInitialize, a.tryingAt)
	lost := a.store.Lost()
	if !alive(a.store) {
		// The session that won initialize is gone (its lease ran out since): another
		// member may have bootstrapped meanwhile.
		return Result{Err: fmt.Errorf("before the bootstrap: %w", dcs.ErrSessionLost)}
	}
	bctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-lost:
			log.Error("DCS session lost during the bootstrap; abandoning it")
			cancel()
		case <-bctx.Done():
		}
	}()
	started := time.Now()
	res, err := n.Bootstrap(bctx, BootstrapOptions{KeepMarker: true})
	cancel()
	att := dcs.Attempt{Method: n.BootstrapMethod(), OK: err == nil, Started: started, Duration: time.Since(started), Summary: res.Result.Summary}
	if err != nil {
		att.Exit = 1
		att.Error = n.secrets().Mask(err.Error())
		var se *StepError
		if errors.As(err, &se) {
			att.Tail = se.LogTail
		}
	}
	n.attemptEnded(KindBootstrap, att, 0)
	a.unsave(att)
	a.run.tl, a.run.done = tl, time.Now()
	if err != nil {
		return Result{Err: err, Attempts: []dcs.Attempt{att}}
	}
	return Result{SysID: strconv.FormatUint(res.SystemIdentifier, 10), Attempts: []dcs.Attempt{att}}
}

// runChain clones as e plans it; with e.Reinit, as [Node.Reinit] does.
func (a *Agent) runChain(ctx context.Context, e RunChain) Result {
	n := a.Node
	var (
		res       CloneResult
		err       error
		tl        *timeline
		abandoned bool // the leader the copy came from no longer leads: the next cycle clones again
	)
	if e.Reinit != nil {
		var rctx context.Context
		rctx, tl = n.withTimeline(ctx, dcs.PathClone)
		res, err = n.Reinit(rctx, a.cl, ReinitOptions{Methods: e.Plan.Methods})
	} else {
		var src *Source
		if e.Plan.Source.Name != "" {
			src = memberSource(n, e.Plan.Source)
		}
		want, perr := strconv.ParseUint(e.Plan.SysID, 10, 64)
		if perr != nil {
			return Result{Err: fmt.Errorf("the DCS initialize key holds %q, not a system identifier", e.Plan.SysID)}
		}
		n.logger().Info("creating a replica", "source", src.Describe(), "chosen_as", e.Plan.SourceWhy)
		var cctx context.Context
		cctx, tl = n.withTimeline(ctx, dcs.PathClone)
		tl.prepend(a.started)
		tl.since(PhaseLeaderSeen, a.started.End)
		moved := func() string { return "" }
		if name := e.Plan.Source.Name; name != "" && name == a.cl.Leader {
			cctx, moved = a.fromLeader(cctx, name)
		}
		res, err = n.Clone(cctx, CloneOptions{Source: src, ExpectSystemID: want, KeepCopy: true})
		if leader := moved(); leader != "" && err != nil {
			n.logger().Warn("the leader changed during the clone: the copy from the former leader is abandoned and made again from the new one",
				"former_leader", e.Plan.Source.Name, "leader", leader)
			abandoned = true
		}
	}
	a.run.tl, a.run.done = tl, time.Now()
	a.unsave(res.Chain.Attempts...)
	out := Result{Err: err, Attempts: res.Chain.Attempts, Canceled: err != nil && (ctx.Err() != nil || abandoned)}
	if err == nil {
		out.SysID = strconv.FormatUint(res.SystemIdentifier, 10)
	}
	return out
}

// alive reports whether st's session has not been lost (as far as it knows).
func alive(st dcs.Store) bool {
	select {
	case <-st.Lost():
		return false
	default:
		return true
	}
}

// unsave keeps attempts for the DCS history.
func (a *Agent) unsave(atts ...dcs.Attempt) {
	a.mu.Lock()
	a.unsaved = append(a.unsaved, atts...)
	a.mu.Unlock()
}

// wait sleeps up to d, returning early when the DCS changes in a way that matters to this
// node's decision (its own member key changing does not). false: ctx ended.
func (a *Agent) wait(ctx context.Context, d time.Duration, watch *<-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		case <-a.store.Lost():
			return true
		case req := <-a.reloads():
			a.applyReload(ctx, req)
			return true
		case _, ok := <-*watch:
			if !ok {
				*watch = nil
				continue
			}
			if a.dcsWakes(ctx) {
				return true
			}
		}
	}
}

// dcsWakes reports whether what changed in the DCS is something the next cycle acts on.
func (a *Agent) dcsWakes(ctx context.Context) bool {
	cl, err := a.store.Cluster(ctx)
	if err != nil || a.fingerprint(cl) != a.lastFP {
		return true
	}
	if req, _ := PendingReinit(ctx, a.store, a.Node.Config.Name); req != nil {
		return true
	}
	if req, _ := ReadRestart(ctx, a.store, a.Node.Config.Name); req != nil && !req.Done {
		return true
	}
	if ch, err := ReadChange(ctx, a.store); err == nil && ch.rawString() != a.lastChange {
		return true
	}
	if p, err := ReadPause(ctx, a.store); err == nil && (p != nil) != a.paused {
		return true
	}
	return a.standbyRecordChanged(ctx) // standby_promote.go
}

// fingerprint sums up what the decision depends on: initialize, the leader, and the other
// members' states, roles, addresses and clonefrom tags.
func (a *Agent) fingerprint(cl dcs.Cluster) string {
	var b strings.Builder
	if cl.Initialize == nil {
		b.WriteString("init:none|")
	} else {
		b.WriteString("init:" + *cl.Initialize + "|")
	}
	b.WriteString("leader:" + cl.Leader + "|")
	fmt.Fprintf(&b, "timeline:%d|", cl.History.Timeline())
	for _, m := range cl.Members {
		if m.Name == a.Node.Config.Name {
			continue
		}
		fmt.Fprintf(&b, "%s:%s:%s:%s:%v|", m.Name, m.State, m.Role, m.ConnURL, m.CloneFrom())
	}
	return b.String()
}

// stopServer stops PostgreSQL fast and, if that fails, immediately.
func (a *Agent) stopServer(ctx context.Context) error {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	err := a.srv.Stop(sctx, "fast")
	if err == nil {
		return nil
	}
	a.Node.logger().Warn("a fast shutdown failed; stopping PostgreSQL immediately", "error", err)
	if ierr := a.srv.Stop(sctx, "immediate"); ierr != nil {
		return fmt.Errorf("while stopping PostgreSQL: %w", errors.Join(err, ierr))
	}
	return nil
}

// leaderSource is the leader as a source to follow, nil when it has not published itself.
func leaderSource(n *Node, cl dcs.Cluster) *Source {
	lm, ok := cl.LeaderMember()
	if !ok || lm.ConnURL == "" {
		return nil
	}
	return memberSource(n, lm)
}

// memberSource is member m as a source, reached at its conn_url as the replication role; nil
// when its conn_url cannot be read.
func memberSource(n *Node, m dcs.Member) *Source {
	conn, _, err := pg.ParseConnURL(m.ConnURL)
	if err != nil {
		return nil
	}
	return replicationSource(n, m.Name, conn)
}

// readBackInitialize settles a SetInitialize of sysid that failed in a way that may still
// have written: did the write take effect? written: initialize holds sysid. known: a read
// succeeded.
func (a *Agent) readBackInitialize(ctx context.Context, sysid string) (written, known bool) {
	for i := range readBackTries {
		if i > 0 && !sleepCtx(ctx, a.readBackWait()) {
			return false, false
		}
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		cl, rerr := a.store.Cluster(rctx)
		cancel()
		if rerr == nil {
			return cl.SystemIdentifier() == sysid, true
		}
	}
	return false, false
}

// readBackTries bounds the reads that settle an uncertain write within one cycle.
const readBackTries = 5

func (a *Agent) readBackWait() time.Duration {
	if a.ReadBackWait > 0 {
		return a.ReadBackWait
	}
	return time.Second
}

// releaseInitialize gives up the empty initialize if this session holds it, retrying a few
// times; a lost session has released it already. false: the DCS could not be reached, and the
// next cycle tries again before anything else.
func (a *Agent) releaseInitialize(ctx context.Context) bool {
	log := a.Node.logger()
	for i := range readBackTries {
		if i > 0 && !sleepCtx(ctx, a.readBackWait()) {
			return false
		}
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		err := a.store.ReleaseInitialize(rctx)
		cancel()
		if err == nil || errors.Is(err, dcs.ErrSessionLost) || errors.Is(err, dcs.ErrClosed) {
			return true
		}
		log.Warn("could not release initialize; trying again", "error", err)
	}
	log.Error("could not release initialize; the next cycle tries again")
	return false
}

// published ends a critical path with the phase that published its outcome (from start until
// now) and publishes the member again with that path.
func (a *Agent) published(ctx context.Context, tl *timeline, start time.Time) {
	tl.since(PhasePublished, start)
	path := tl.result()
	a.mu.Lock()
	a.path = path
	a.mu.Unlock()
	a.publishNow(ctx)
	if path != nil {
		a.Node.logger().Debug("critical path", "kind", path.Kind, "seconds", path.Total().Seconds(), "phases", path.String())
	}
}

// anyNoMaster reports whether the configured chain runs a method without a source.
func (n *Node) anyNoMaster() bool { return Runnable(PlanChain(n.chainInput(nil, false))) }

// ConnURL is how other members reach this one: postgresql.connect_address, else listen.
func (n *Node) ConnURL() string {
	addr := n.Config.PostgreSQL.ConnectAddress
	if addr == "" {
		addr = n.Config.PostgreSQL.Listen
	}
	hosts, port, err := pg.SplitListen(addr)
	if err != nil {
		return ""
	}
	if port == 0 {
		port = 5432
	}
	host, _, _ := strings.Cut(hosts, ",")
	return "postgres://" + net.JoinHostPort(pg.Loopback(host), strconv.Itoa(port)) + "/postgres"
}

// publish writes the member key: m as Step made it, with this node's address, tags and
// version, and what it measures (WAL position, upstream, progress). Failures are logged; the
// next cycle publishes again.
func (a *Agent) publish(ctx context.Context, m dcs.Member) {
	if a.store == nil {
		return
	}
	n := a.Node
	m.ConnURL, m.Tags, m.Version, m.APIURL = n.ConnURL(), n.Config.Tags, n.Version, n.APIURL()
	if m.PGImaged == nil {
		m.PGImaged = &dcs.MemberDetail{}
	}
	m.PGImaged.LastError = n.secrets().Mask(m.PGImaged.LastError)
	if r := m.PGImaged.Refused; r != nil {
		r.Reason = n.secrets().Mask(r.Reason)
	}
	a.mu.Lock()
	m.PGImaged.CriticalPath = a.path
	m.PGImaged.Reload = a.lastReload
	if inFlight(m.State) {
		m.PGImaged.Clone = a.progress
	} else {
		a.progress = nil
	}
	peers := a.peers
	a.mu.Unlock()
	if m.State == dcs.StateRunning {
		st := a.pgStatus(ctx)
		if st.Queried {
			m.XLogLocation, m.Timeline, m.PendingRestart = st.Position, st.Timeline, st.PendingRestart
		}
		if m.Role == dcs.RoleReplica && st.Streaming && st.SenderHost != "" {
			m.PGImaged.Upstream = matchUpstream(n.Config.Name, st.SenderHost, st.SenderPort, peers)
		}
		m.PGImaged.NotStreaming = n.notStreaming(st, m.State, m.Role) // snapshot_stream.go
		if m.Role == dcs.RoleStandbyLeader {
			m.PGImaged.Remote = a.Snapshot().Remote // standby_remote.go
		}
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := a.store.PutMember(pctx, m); err != nil && ctx.Err() == nil {
		a.dcsError(err)
		n.logger().Warn("could not publish the member", "error", err)
	}
	a.saveHistory(pctx)
}

// publishNow publishes the member as the loop last left it (for progress reports, which come
// while a method runs).
func (a *Agent) publishNow(ctx context.Context) {
	a.mu.Lock()
	m := dcs.Member{Name: a.Node.Config.Name, State: a.state, Role: a.role,
		PGImaged: &dcs.MemberDetail{SystemIdentifier: a.sysid, LastError: a.lastErr, Attempts: slices.Clone(a.history)}}
	a.mu.Unlock()
	if m.Role == "" {
		m.Role = "uninitialized"
	}
	a.publish(ctx, m)
}

// shutdown stops PostgreSQL (fast), gives up the keys and ends the session.
func (a *Agent) shutdown() {
	log := a.Node.logger()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	a.mu.Lock()
	paused := a.paused
	a.mu.Unlock()
	if a.store != nil { // asked once more: a pause set since the last cycle counts
		if p, err := ReadPause(ctx, a.store); err == nil {
			paused = p != nil
		}
	}
	if a.srv != nil && paused {
		if _, running := a.srv.Running(); running {
			log.Warn("maintenance mode: PostgreSQL is left running")
		}
	} else if a.srv != nil {
		if _, running := a.srv.Running(); running {
			log.Info("stopping PostgreSQL (fast)")
			if err := a.srv.Stop(ctx, "fast"); err != nil {
				log.Error("could not stop PostgreSQL", "error", err)
			}
		}
	}
	if a.store != nil {
		_ = a.store.ReleaseLeader(ctx)
		_ = a.store.DeleteMember(ctx, a.Node.Config.Name)
		_ = a.store.Close()
	}
}
