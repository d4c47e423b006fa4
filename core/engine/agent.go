package engine

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
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

// Agent is the node loop of `pgimaged run`: it decides on each cycle whether to adopt, bootstrap,
// wait or clone, carries that out, and keeps the member published.
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

	mu       sync.Mutex
	store    dcs.Store
	state    string
	role     string
	lastErr  string
	history  []dcs.Attempt
	failures int
	srv      *pg.Server
	sysid    string
	lastFP   string
	// fenced is the report of a fence, kept until the member runs again.
	fenced       string
	lastDecision string
	// pending is a bootstrap whose record in initialize is not settled yet.
	pending *pendingBootstrap
	// mustRelease: initialize may still be held empty by this session after a failure.
	mustRelease bool
	// snap is what Snapshot returns, refreshed after each cycle.
	snap snapshotHolder
	// peers are the members as last read, to name a replica's upstream.
	peers []dcs.Member
	// unsaved are attempts not yet written into the DCS history.
	unsaved []dcs.Attempt
	// progress is the running method's progress, published at most every progressEvery.
	progress   *dcs.CloneProgress
	progressAt time.Time
	// started is the agent_start phase, ended by the first read of the DCS.
	started dcs.Phase
	// path is the critical path of the last bootstrap or clone, published in the member key.
	path *dcs.CriticalPath
}

// Run drives the node until ctx ends; then it stops PostgreSQL (fast), gives up its keys and
// returns nil. It returns an error only for what waiting cannot fix, such as a data directory
// of another cluster.
func (a *Agent) Run(ctx context.Context) error {
	log := a.Node.logger()
	if a.LoopWait <= 0 {
		a.LoopWait = config.DefaultLoopWait // an Agent built without a configuration's loop_wait
	}
	srv, err := a.Node.server()
	if err != nil {
		return fmt.Errorf("postgresql.listen: %w", err)
	}
	a.mu.Lock()
	a.srv = srv
	a.state = dcs.StateStarting
	a.mu.Unlock()
	a.started = dcs.Phase{Name: PhaseAgentStart, Start: a.Started}
	if a.started.Start.IsZero() {
		a.started.Start = time.Now()
	}
	a.snap.mu.Lock()
	a.snap.snap = Snapshot{Scope: a.Node.Config.Scope, Name: a.Node.Config.Name, Started: time.Now()}
	a.snap.mu.Unlock()
	a.followProgress(ctx)
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
			_ = a.store.Close()
			a.store = nil
			continue
		default:
		}
		next, err := a.cycle(ctx)
		if ctx.Err() == nil {
			if errors.Is(err, dcs.ErrSessionLost) || errors.Is(err, dcs.ErrClosed) || errors.Is(err, dcs.ErrUnavailable) {
				a.dcsError(err)
			}
			a.refreshSnapshot(ctx)
		}
		switch {
		case errors.Is(err, ErrForeignCluster), errors.Is(err, ErrRefused), IsRefusal(err):
			a.setState(dcs.StateFailed, err)
			a.publish(ctx)
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
		case _, ok := <-*watch:
			if !ok {
				*watch = nil
				continue
			}
			cl, err := a.store.Cluster(ctx)
			if err != nil || a.fingerprint(cl) != a.lastFP {
				return true
			}
			if req, _ := PendingReinit(ctx, a.store, a.Node.Config.Name); req != nil {
				return true
			}
		}
	}
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
	for _, m := range cl.Members {
		if m.Name == a.Node.Config.Name {
			continue
		}
		fmt.Fprintf(&b, "%s:%s:%s:%s:%v|", m.Name, m.State, m.Role, m.ConnURL, m.CloneFrom())
	}
	return b.String()
}

func (a *Agent) setState(state string, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.state = state
	if err != nil {
		a.lastErr = a.Node.secrets().Mask(err.Error())
	}
}

func (a *Agent) record(atts ...dcs.Attempt) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.history = append(a.history, atts...)
	a.unsaved = append(a.unsaved, atts...)
	if len(a.history) > maxHistory {
		a.history = a.history[len(a.history)-maxHistory:]
	}
}

// backoff is the wait after the failures-th failure in a row.
func (a *Agent) backoff() time.Duration {
	d := time.Second << min(a.failures, 6)
	return min(d, max(a.LoopWait, 30*time.Second))
}

// cycle makes one decision and acts on it. It returns how long to wait before the next cycle
// (0: at once) unless a change in the DCS comes first.
func (a *Agent) cycle(ctx context.Context) (time.Duration, error) {
	if a.pending != nil {
		return a.settleBootstrap(ctx)
	}
	if a.mustRelease && !a.releaseInitialize(ctx) {
		return 0, fmt.Errorf("while releasing initialize: %w", dcs.ErrUnavailable)
	}
	cl, err := a.store.Cluster(ctx)
	if err != nil {
		// Without the DCS only what is purely local is done: a half-made directory of
		// pgimaged's own (and a server left running in it) goes at once.
		if act := Decide(a.Node.Observe(ctx, nil, err)); act.Kind == ActClean {
			if _, cerr := a.clean(ctx, act); cerr != nil {
				return 0, errors.Join(err, cerr)
			}
		}
		return 0, err
	}
	if a.started.End.IsZero() {
		a.started.End = time.Now()
		log := a.Node.logger()
		log.Debug("phase", "name", PhaseAgentStart, "seconds", a.started.Seconds())
	}
	a.lastFP = a.fingerprint(cl)
	a.mu.Lock()
	a.peers = cl.Members
	a.mu.Unlock()
	obs := a.Node.Observe(ctx, &cl, nil)
	if obs.DataDir == DirEmpty {
		// The directory that needed a reinit, or that this member led with, is gone.
		a.Node.clearNeedsReinit()
		a.Node.markLed(false)
	}
	if obs.ReinitRequested, err = PendingReinit(ctx, a.store, a.Node.Config.Name); err != nil {
		return 0, err
	}
	act := Decide(obs)
	a.logDecision(act)
	if act.ReinitRefused != "" {
		a.dropReinit(ctx, act.ReinitRefused)
	}
	switch act.Kind {
	case ActReclone:
		return a.reclone(ctx, cl, obs.ReinitRequested)
	case ActClean:
		return a.clean(ctx, act)
	case ActRefuse:
		return 0, a.refusal(act, cl)
	case ActWait:
		a.setState(act.State, nil)
		a.publish(ctx)
		return a.LoopWait, nil
	case ActBootstrap:
		return a.bootstrap(ctx)
	case ActClone:
		return a.clone(ctx, cl)
	case ActFence:
		return a.fence(ctx, act)
	case ActReinit:
		return a.needsReinit(ctx, act)
	default:
		return a.adopt(ctx, cl, act)
	}
}

// logDecision logs a decision when it differs from the previous cycle's.
func (a *Agent) logDecision(act Action) {
	key := string(act.Kind) + "|" + act.Reason
	if key == a.lastDecision {
		return
	}
	a.lastDecision = key
	log := a.Node.logger()
	switch act.Kind {
	case ActFence, ActReinit, ActRefuse:
		log.Warn("decision: "+string(act.Kind), "reason", act.Reason)
	default:
		log.Debug("decision: "+string(act.Kind), "reason", act.Reason)
	}
}

// refusal is the error that ends the agent for a data directory it must not touch.
func (a *Agent) refusal(act Action, cl dcs.Cluster) error {
	n := a.Node
	switch {
	case act.SystemIdentifier != "" && cl.SystemIdentifier() != "" && act.SystemIdentifier != cl.SystemIdentifier():
		return fmt.Errorf("%w: %s holds system identifier %s, the DCS records %s for scope %q; move the directory away to clone afresh",
			ErrForeignCluster, n.Config.DataDir, act.SystemIdentifier, cl.SystemIdentifier(), n.Config.Scope)
	case act.SystemIdentifier == "":
		return fmt.Errorf("%w: %s: %s", ErrDataDirNotEmpty, n.Config.DataDir, act.Reason)
	}
	return fmt.Errorf("%w: %s: %s", ErrRefused, n.Config.DataDir, act.Reason)
}

// clean empties pgimaged's own half-made data directory, stopping a server that runs in it.
func (a *Agent) clean(ctx context.Context, act Action) (time.Duration, error) {
	if act.Stop {
		a.Node.logger().Warn("a PostgreSQL runs in the half-made data directory a previous attempt left; stopping it")
		if err := a.stopServer(ctx); err != nil {
			a.setState(dcs.StateFailed, err)
			a.publish(ctx)
			return a.LoopWait, err
		}
	}
	if err := a.Node.cleanIncomplete(); err != nil {
		return a.LoopWait, err
	}
	a.Node.markLed(false)
	return 0, nil
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

// fence stops a PostgreSQL that runs as a primary while another member holds the leader key.
func (a *Agent) fence(ctx context.Context, act Action) (time.Duration, error) {
	log := a.Node.logger()
	log.Error("fencing: stopping PostgreSQL, which runs as a primary while another member leads", "reason", act.Reason)
	reported := fmt.Errorf("fenced: %s", act.Reason)
	if err := a.stopServer(ctx); err != nil {
		a.setState(StateFenced, fmt.Errorf("%w; stopping it failed: %w", reported, err))
		a.publish(ctx)
		return a.backoff(), nil
	}
	a.Node.markLed(false)
	if err := a.Node.markNeedsReinit(reported.Error()); err != nil {
		log.Error("could not mark the fenced data directory as needing reinit", "error", err)
	}
	a.mu.Lock()
	a.role, a.fenced = dcs.RoleReplica, reported.Error()
	a.mu.Unlock()
	a.setState(StateFenced, reported)
	a.publish(ctx)
	log.Warn("PostgreSQL stopped (fenced); the data directory is left as it is")
	return 0, nil
}

// needsReinit publishes that the data directory cannot follow the leader; nothing is changed.
func (a *Agent) needsReinit(ctx context.Context, act Action) (time.Duration, error) {
	a.mu.Lock()
	a.role, a.sysid = dcs.RoleReplica, act.SystemIdentifier
	msg := "needs reinit: " + act.Reason + " (marked by " + a.Node.NeedsReinitPath() + ", which an operator removes once the directory is replaced)"
	if a.fenced != "" {
		msg = a.fenced + "; " + msg
	}
	a.mu.Unlock()
	a.Node.markLed(false)
	if !a.Node.MarkedNeedsReinit() {
		if err := a.Node.markNeedsReinit(msg); err != nil {
			a.Node.logger().Error("could not mark the data directory as needing reinit", "error", err)
		}
		a.Node.logger().Error("the data directory needs a reinit; it is left as it is and not started", "reason", act.Reason, "mark", a.Node.NeedsReinitPath())
	}
	a.setState(StateNeedsReinit, errors.New(msg))
	a.publish(ctx)
	return a.LoopWait, nil
}

// adopt runs the cluster already in the data directory as the decision says: take the leader
// key before starting a primary, record the system identifier if the DCS has none, write
// standby settings to follow the leader when it rejoins, start it, publish the member.
func (a *Agent) adopt(ctx context.Context, cl dcs.Cluster, act Action) (time.Duration, error) {
	n := a.Node
	log := n.logger()
	a.sysid = act.SystemIdentifier
	if act.ClaimInitialize {
		claimed, err := a.claimInitialize(ctx, act.SystemIdentifier)
		if err != nil {
			return a.LoopWait, err
		}
		if !claimed {
			return 0, nil // another member took initialize: decide again
		}
	}
	if act.Primary {
		held, err := a.store.AcquireLeader(ctx, n.Config.Name)
		if err != nil {
			return a.LoopWait, err
		}
		if !held {
			// Never start or keep a primary without the key: decide again with the new state.
			log.Warn("could not take the leader key; deciding again", "leader", cl.Leader)
			return min(a.LoopWait, time.Second), nil
		}
		n.markLed(true)
	} else {
		n.markLed(false)
	}
	if act.Rejoin {
		src := leaderSource(n, cl)
		if src == nil {
			return a.LoopWait, nil
		}
		log.Warn("the data directory looked like a primary while another member leads; it follows the leader as a standby", "leader", cl.Leader)
		if err := n.writeStandby(src, nil, nil, false); err != nil {
			a.setState(dcs.StateFailed, err)
			a.publish(ctx)
			return a.backoff(), nil
		}
	}
	if act.Start != KeepRunning {
		a.setState(dcs.StateStarting, nil)
		a.publish(ctx)
		if err := pg.WriteSettings(n.Config.DataDir, n.settings(act.Primary)); err != nil {
			return a.LoopWait, err
		}
		log.Info("starting the existing cluster", "data_dir", n.Config.DataDir, "as", map[bool]string{true: "primary", false: "standby"}[act.Primary])
		if err := a.srv.Start(ctx); err != nil {
			a.setState(dcs.StateFailed, err)
			a.publish(ctx)
			a.failures++
			return a.backoff(), nil
		}
		if err := a.srv.WaitReady(ctx); err != nil {
			a.setState(dcs.StateFailed, err)
			a.publish(ctx)
			a.failures++
			return a.backoff(), nil
		}
	}
	a.failures = 0
	role := dcs.RoleReplica
	if act.Primary {
		role = dcs.RolePrimary
	}
	a.mu.Lock()
	a.role = role
	a.state = dcs.StateRunning
	a.lastErr, a.fenced = "", ""
	a.mu.Unlock()
	a.publish(ctx)
	return a.LoopWait, nil
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

// claimInitialize records sysid as the cluster's when the DCS has no initialize. false: another
// member took initialize first. A failed write releases initialize again; an uncertain one is
// settled by reading the key back first.
func (a *Agent) claimInitialize(ctx context.Context, sysid string) (bool, error) {
	log := a.Node.logger()
	won, err := a.store.TryInitialize(ctx)
	if err != nil && uncertain(err) {
		a.releaseInitialize(ctx)
	}
	if err != nil || !won {
		return false, err
	}
	err = a.store.SetInitialize(ctx, sysid)
	if err == nil {
		log.Info("recorded this data directory's system identifier in the DCS", "system_identifier", sysid)
		return true, nil
	}
	written, known := a.readBackInitialize(ctx, sysid, err)
	if written {
		log.Info("recorded this data directory's system identifier in the DCS (confirmed by reading it back)", "system_identifier", sysid)
		return true, nil
	}
	if known {
		a.releaseInitialize(ctx)
	}
	// Not known either way: the DCS is unreachable. The empty key stays bound to this
	// session; the next cycle reads the DCS again, and the key vanishes if the session ends.
	return false, fmt.Errorf("while recording this data directory's system identifier %s in the DCS: %w", sysid, err)
}

// readBackInitialize settles a SetInitialize that failed with err: did the write take effect?
// written: initialize holds sysid. known: the answer is certain (a read succeeded, or the
// write failed in a way that cannot have written).
func (a *Agent) readBackInitialize(ctx context.Context, sysid string, err error) (written, known bool) {
	if !uncertain(err) {
		return false, true
	}
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

// uncertain reports whether a failed DCS write may still have taken effect.
func uncertain(err error) bool {
	return errors.Is(err, dcs.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded)
}

// releaseInitialize gives up the empty initialize if this session holds it, retrying a few
// times; a lost session has released it already. false: the DCS could not be reached, and the
// next cycle tries again before anything else.
func (a *Agent) releaseInitialize(ctx context.Context) bool {
	log := a.Node.logger()
	a.mustRelease = true
	for i := range readBackTries {
		if i > 0 && !sleepCtx(ctx, a.readBackWait()) {
			return false
		}
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		err := a.store.ReleaseInitialize(rctx)
		cancel()
		if err == nil || errors.Is(err, dcs.ErrSessionLost) || errors.Is(err, dcs.ErrClosed) {
			a.mustRelease = false
			return true
		}
		log.Warn("could not release initialize; trying again", "error", err)
	}
	log.Error("could not release initialize; the next cycle tries again")
	return false
}

// bootstrap races for initialize and, if this node wins, bootstraps while holding it. Losing the
// DCS session during the bootstrap cancels it: a node never bootstraps without the key. Every
// failure releases initialize.
func (a *Agent) bootstrap(ctx context.Context) (time.Duration, error) {
	n := a.Node
	log := n.logger()
	trying := time.Now()
	won, err := a.store.TryInitialize(ctx)
	if err != nil {
		if uncertain(err) {
			// The key may have been created all the same: give it up rather than hold it
			// without bootstrapping.
			a.releaseInitialize(ctx)
		}
		return a.LoopWait, err
	}
	if !won {
		return 0, nil // someone else is bootstrapping or finished; look again
	}
	ctx, tl := n.withTimeline(ctx, dcs.PathBootstrap)
	tl.prepend(a.started)
	tl.since(PhaseInitialize, trying)
	log.Info("won the initialize race; bootstrapping", "method", n.BootstrapMethod())
	a.setState(dcs.StateBootstrapping, nil)
	a.publish(ctx)
	bctx, cancel := context.WithCancel(ctx)
	lost := a.store.Lost()
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
	att := dcs.Attempt{Method: n.BootstrapMethod(), OK: err == nil, Started: started, Duration: time.Since(started)}
	defer func() { n.attemptEnded(KindBootstrap, att, 0) }()
	if err != nil {
		att.Exit = 1
		att.Error = n.secrets().Mask(err.Error())
		var se *StepError
		if errors.As(err, &se) {
			att.Tail = se.LogTail
		}
		a.record(att)
		a.failures++
		a.releaseInitialize(ctx)
		a.setState(dcs.StateFailed, err)
		a.publish(ctx)
		log.Error("bootstrap failed; released initialize so that another member can try", "error", err, "retry_in", a.backoff())
		select {
		case <-lost:
			return 0, dcs.ErrSessionLost
		default:
		}
		return a.backoff(), nil
	}
	a.record(att)
	a.pending = &pendingBootstrap{sysid: strconv.FormatUint(res.SystemIdentifier, 10), timeline: tl, done: time.Now()}
	a.pending.err = a.store.SetInitialize(ctx, a.pending.sysid)
	return a.settleBootstrap(ctx)
}

// pendingBootstrap is a bootstrapped cluster whose system identifier is being recorded in
// initialize.
type pendingBootstrap struct {
	sysid string
	err   error // the SetInitialize error; nil: it was written
	// timeline is the bootstrap's critical path; done is when the bootstrap itself ended.
	timeline *timeline
	done     time.Time
}

// settleBootstrap finishes a bootstrap once the outcome of writing its system identifier is
// known: written (also when only a read-back shows it) → take the leader key; not written →
// stop and remove the new cluster and release initialize. While the DCS cannot say, the new
// cluster is kept and the agent asks again on the next cycle.
func (a *Agent) settleBootstrap(ctx context.Context) (time.Duration, error) {
	n := a.Node
	log := n.logger()
	p := a.pending
	written := p.err == nil
	if !written {
		var known bool
		written, known = a.readBackInitialize(ctx, p.sysid, p.err)
		if !known {
			log.Warn("could not tell whether the new cluster's system identifier reached the DCS; asking again", "error", p.err)
			a.setState(dcs.StateBootstrapping, fmt.Errorf("recording the system identifier %s in the DCS: %w", p.sysid, p.err))
			return min(a.LoopWait, 2*time.Second), nil
		}
	}
	a.pending = nil
	if !written {
		// Without the record the cluster cannot be trusted: undo it so the race can run again.
		log.Error("could not record the new cluster in the DCS; removing it and releasing initialize", "error", p.err)
		sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		_ = a.srv.Stop(sctx, "immediate")
		scancel()
		if err := pg.EmptyDir(n.Config.DataDir); err != nil {
			log.Error("could not remove the new cluster", "error", err)
		} else {
			n.ClearIncomplete()
		}
		a.releaseInitialize(ctx)
		a.failures++
		a.setState(dcs.StateFailed, fmt.Errorf("recording the system identifier %s in the DCS: %w", p.sysid, p.err))
		a.publish(ctx)
		return a.backoff(), nil
	}
	n.ClearIncomplete()
	a.failures = 0
	a.sysid = p.sysid
	log.Info("cluster bootstrapped", "system_identifier", p.sysid)
	n.markLed(true) // the bootstrapper is the cluster's primary
	held, err := a.store.AcquireLeader(ctx, n.Config.Name)
	if err != nil {
		return 0, err
	}
	if !held {
		log.Warn("could not take the leader key after the bootstrap; the next cycle tries again")
	}
	a.mu.Lock()
	a.role, a.state, a.lastErr = dcs.RolePrimary, dcs.StateRunning, ""
	a.mu.Unlock()
	a.publish(ctx)
	a.published(ctx, p.timeline, p.done)
	return a.LoopWait, nil
}

// published ends a critical path with the phase that published its outcome (from start until
// now) and publishes the member again with that path.
func (a *Agent) published(ctx context.Context, tl *timeline, start time.Time) {
	tl.since(PhasePublished, start)
	path := tl.result()
	a.mu.Lock()
	a.path = path
	a.mu.Unlock()
	a.publish(ctx)
	if path != nil {
		a.Node.logger().Debug("critical path", "kind", path.Kind, "seconds", path.Total().Seconds(), "phases", path.String())
	}
}

// CloneSource picks the member to clone from: a running member tagged clonefrom (at random
// among them), else the leader. nil when none is running.
func CloneSource(n *Node, cl dcs.Cluster) *Source {
	var tagged []dcs.Member
	for _, m := range cl.Members {
		if m.Name != n.Config.Name && m.State == dcs.StateRunning && m.CloneFrom() && m.ConnURL != "" {
			tagged = append(tagged, m)
		}
	}
	if len(tagged) > 0 {
		if s := memberSource(n, tagged[rand.IntN(len(tagged))]); s != nil {
			return s
		}
	}
	if lm, ok := cl.LeaderMember(); ok && lm.Name != n.Config.Name && lm.State == dcs.StateRunning && lm.ConnURL != "" {
		return memberSource(n, lm)
	}
	return nil
}

// clone makes this member a replica of the cluster recorded in initialize.
func (a *Agent) clone(ctx context.Context, cl dcs.Cluster) (time.Duration, error) {
	n := a.Node
	log := n.logger()
	src := CloneSource(n, cl)
	want, err := strconv.ParseUint(cl.SystemIdentifier(), 10, 64)
	if err != nil {
		return a.LoopWait, fmt.Errorf("the DCS initialize key holds %q, not a system identifier", cl.SystemIdentifier())
	}
	if src == nil && !n.anyNoMaster() {
		a.setState(StateWaitingSource, nil)
		a.publish(ctx)
		return a.LoopWait, nil
	}
	cctx, tl := n.withTimeline(ctx, dcs.PathClone)
	tl.prepend(a.started)
	tl.since(PhaseLeaderSeen, a.started.End)
	a.setState(dcs.StateCreatingReplica, nil)
	a.publish(ctx)
	log.Info("creating a replica", "source", src.Describe())
	res, err := n.Clone(cctx, CloneOptions{Source: src, ExpectSystemID: want})
	done := time.Now()
	a.record(res.Chain.Attempts...)
	if err != nil {
		if errors.Is(err, ErrNoMethodCanRun) {
			a.setState(StateWaitingSource, nil)
			a.publish(ctx)
			return a.LoopWait, nil
		}
		if ctx.Err() != nil {
			return 0, nil
		}
		a.failures++
		a.setState(dcs.StateFailed, err)
		a.publish(ctx)
		log.Error("creating the replica failed; the whole method list is tried again", "error", err, "retry_in", a.backoff())
		return a.backoff(), nil
	}
	a.runsAsReplica(ctx, res.SystemIdentifier, tl, done)
	return a.LoopWait, nil
}

// runsAsReplica records a clone that ended at done: the member runs as a replica of the
// cluster sysid; it is published with the clone's critical path tl.
func (a *Agent) runsAsReplica(ctx context.Context, sysid uint64, tl *timeline, done time.Time) {
	a.failures = 0
	a.sysid = strconv.FormatUint(sysid, 10)
	a.mu.Lock()
	a.role, a.state, a.lastErr = dcs.RoleReplica, dcs.StateRunning, ""
	a.mu.Unlock()
	a.publish(ctx)
	a.published(ctx, tl, done)
}

func (n *Node) anyNoMaster() bool {
	for _, label := range n.ReplicaMethods() {
		if n.Config.Method(label).NoMaster {
			return true
		}
	}
	return false
}

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
	if host == "*" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "postgres://" + net.JoinHostPort(host, strconv.Itoa(port)) + "/postgres"
}

// publish writes the member key. Failures are logged; the next cycle publishes again.
func (a *Agent) publish(ctx context.Context) {
	if a.store == nil {
		return
	}
	n := a.Node
	a.mu.Lock()
	m := dcs.Member{
		Name: n.Config.Name, ConnURL: n.ConnURL(), State: a.state, Role: a.role,
		Tags: n.Config.Tags, Version: n.Version, APIURL: n.APIURL(),
		PGImaged: &dcs.MemberDetail{SystemIdentifier: a.sysid, LastError: a.lastErr, Attempts: append([]dcs.Attempt(nil), a.history...), CriticalPath: a.path},
	}
	if inFlight(a.state) {
		m.PGImaged.Clone = a.progress
	} else {
		a.progress = nil
	}
	a.mu.Unlock()
	if m.Role == "" {
		m.Role = "uninitialized"
	}
	if m.State == dcs.StateRunning {
		m.XLogLocation, m.Timeline = a.walPosition(ctx)
		if m.Role == dcs.RoleReplica {
			m.PGImaged.Upstream = a.upstream(ctx)
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

// walPosition reads the server's WAL position (written on a primary, replayed on a replica).
func (a *Agent) walPosition(ctx context.Context) (int64, int) {
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := a.srv.Connect(qctx)
	if err != nil {
		return 0, 0
	}
	defer conn.Close(context.Background())
	var lsn int64
	var tli int
	err = conn.QueryRow(qctx, `SELECT CASE WHEN pg_is_in_recovery()
		THEN COALESCE(pg_last_wal_replay_lsn(), pg_last_wal_receive_lsn(), '0/0'::pg_lsn) - '0/0'::pg_lsn
		ELSE pg_current_wal_lsn() - '0/0'::pg_lsn END::bigint,
		(SELECT timeline_id FROM pg_control_checkpoint())`).Scan(&lsn, &tli)
	if err != nil {
		return 0, 0
	}
	return lsn, tli
}

// shutdown stops PostgreSQL (fast), gives up the keys and ends the session.
func (a *Agent) shutdown() {
	log := a.Node.logger()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if a.srv != nil {
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
