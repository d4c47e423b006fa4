package engine

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pgimaged/pgimaged/core/dcs"
	"github.com/pgimaged/pgimaged/core/pg"
)

// ErrForeignCluster: the data directory holds a cluster whose system identifier differs from the
// one the DCS records for this scope. pgimaged refuses to touch it.
var ErrForeignCluster = errors.New("data directory belongs to another cluster")

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
}

// Run drives the node until ctx ends; then it stops PostgreSQL (fast), gives up its keys and
// returns nil. It returns an error only for what waiting cannot fix, such as a data directory
// of another cluster.
func (a *Agent) Run(ctx context.Context) error {
	log := a.Node.logger()
	if a.LoopWait <= 0 {
		a.LoopWait = 10 * time.Second
	}
	srv, err := a.Node.server()
	if err != nil {
		return fmt.Errorf("postgresql.listen: %w", err)
	}
	a.srv = srv
	a.state = dcs.StateStarting
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
			_ = a.store.Close()
			a.store = nil
			continue
		default:
		}
		next, err := a.cycle(ctx)
		switch {
		case errors.Is(err, ErrForeignCluster), IsRefusal(err):
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
	n := a.Node
	cl, err := a.store.Cluster(ctx)
	if err != nil {
		return 0, err
	}
	a.lastFP = a.fingerprint(cl)
	if n.Incomplete() {
		if err := n.cleanIncomplete(); err != nil {
			return a.LoopWait, err
		}
	}
	if n.Adoptable() {
		return a.adopt(ctx, cl)
	}
	if _, err := n.checkDataDir(); err != nil {
		return a.LoopWait, err // a refusal ends Run: nothing is raced for with such a directory
	}
	switch {
	case cl.Initialize == nil:
		return a.bootstrap(ctx)
	case cl.Bootstrapping():
		a.setState("waiting for bootstrap", nil)
		a.publish(ctx)
		return a.LoopWait, nil
	default:
		return a.clone(ctx, cl)
	}
}

// adopt runs the cluster already in the data directory: start it if needed, record the system
// identifier if the DCS has none, hold the leader key as a primary, publish the member.
func (a *Agent) adopt(ctx context.Context, cl dcs.Cluster) (time.Duration, error) {
	n := a.Node
	log := n.logger()
	sysid, err := pg.SystemIdentifier(n.Config.DataDir)
	if err != nil {
		return a.LoopWait, err
	}
	own := strconv.FormatUint(sysid, 10)
	if dcsID := cl.SystemIdentifier(); dcsID != "" && dcsID != own {
		return 0, fmt.Errorf("%w: %s holds system identifier %s, the DCS records %s for scope %q; move the directory away to clone afresh",
			ErrForeignCluster, n.Config.DataDir, own, dcsID, n.Config.Scope)
	}
	a.sysid = own
	replica := !endingRecovery(n.Config.DataDir) && hasStandbySignal(n.Config.DataDir)
	if cl.Initialize == nil && !replica {
		// The DCS lost its keys, or the directory predates the cluster's record: claim it.
		won, err := a.store.TryInitialize(ctx)
		if err != nil {
			return a.LoopWait, err
		}
		if won {
			if err := a.store.SetInitialize(ctx, own); err != nil {
				return a.LoopWait, err
			}
			log.Info("recorded this data directory's system identifier in the DCS", "system_identifier", own)
		}
	}
	if _, running := a.srv.Running(); !running {
		a.setState(dcs.StateStarting, nil)
		a.publish(ctx)
		if err := pg.WriteSettings(n.Config.DataDir, n.settings()); err != nil {
			return a.LoopWait, err
		}
		log.Info("starting the existing cluster", "data_dir", n.Config.DataDir)
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
	if !replica {
		role = dcs.RolePrimary
		held, err := a.store.AcquireLeader(ctx, n.Config.Name)
		if err != nil {
			return a.LoopWait, err
		}
		if !held {
			log.Warn("this member runs as a primary but another member holds the leader key", "leader", cl.Leader)
		}
	}
	a.mu.Lock()
	a.role = role
	a.state = dcs.StateRunning
	a.lastErr = ""
	a.mu.Unlock()
	a.publish(ctx)
	return a.LoopWait, nil
}

func hasStandbySignal(dir string) bool {
	if _, err := os.Stat(filepath.Join(dir, "standby.signal")); err == nil {
		return true
	}
	if b, err := os.ReadFile(filepath.Join(dir, "recovery.conf")); err == nil {
		return standbyModeOn(string(b))
	}
	return false
}

// bootstrap races for initialize and, if this node wins, bootstraps while holding it. Losing the
// DCS session during the bootstrap cancels it: a node never bootstraps without the key.
func (a *Agent) bootstrap(ctx context.Context) (time.Duration, error) {
	n := a.Node
	log := n.logger()
	won, err := a.store.TryInitialize(ctx)
	if err != nil {
		return a.LoopWait, err
	}
	if !won {
		return 0, nil // someone else is bootstrapping or finished; look again
	}
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
	if err != nil {
		att.Exit = 1
		att.Error = n.secrets().Mask(err.Error())
		var se *StepError
		if errors.As(err, &se) {
			att.Tail = se.LogTail
		}
		a.record(att)
		a.failures++
		rctx, rcancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = a.store.ReleaseInitialize(rctx)
		rcancel()
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
	sysid := strconv.FormatUint(res.SystemIdentifier, 10)
	if err := a.store.SetInitialize(ctx, sysid); err != nil {
		// Without the record the cluster cannot be trusted: undo it so the race can run again.
		log.Error("could not record the new cluster in the DCS; removing it", "error", err)
		sctx, scancel := context.WithTimeout(context.Background(), time.Minute)
		_ = a.srv.Stop(sctx, "immediate")
		scancel()
		_ = pg.EmptyDir(n.Config.DataDir)
		n.ClearIncomplete()
		a.failures++
		a.setState(dcs.StateFailed, err)
		return a.backoff(), nil
	}
	n.ClearIncomplete()
	a.failures = 0
	a.sysid = sysid
	log.Info("cluster bootstrapped", "system_identifier", sysid)
	if _, err := a.store.AcquireLeader(ctx, n.Config.Name); err != nil {
		return 0, err
	}
	a.mu.Lock()
	a.role, a.state, a.lastErr = dcs.RolePrimary, dcs.StateRunning, ""
	a.mu.Unlock()
	a.publish(ctx)
	return a.LoopWait, nil
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
	pick := func(m dcs.Member) *Source {
		conn, _, err := pg.ParseConnURL(m.ConnURL)
		if err != nil {
			return nil
		}
		conn.User = n.Config.PostgreSQL.Replication.Username
		if conn.Database == "" {
			conn.Database = "postgres"
		}
		return &Source{Member: m.Name, Conn: conn, Password: n.Config.PostgreSQL.Replication.Password}
	}
	if len(tagged) > 0 {
		if s := pick(tagged[rand.IntN(len(tagged))]); s != nil {
			return s
		}
	}
	if lm, ok := cl.LeaderMember(); ok && lm.Name != n.Config.Name && lm.State == dcs.StateRunning && lm.ConnURL != "" {
		return pick(lm)
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
		a.setState("waiting for a clone source", nil)
		a.publish(ctx)
		return a.LoopWait, nil
	}
	a.setState(dcs.StateCreatingReplica, nil)
	a.publish(ctx)
	log.Info("creating a replica", "source", src.Describe())
	res, err := n.Clone(ctx, CloneOptions{Source: src, ExpectSystemID: want})
	a.record(res.Chain.Attempts...)
	if err != nil {
		if errors.Is(err, ErrNoMethodCanRun) {
			a.setState("waiting for a clone source", nil)
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
	a.failures = 0
	a.sysid = strconv.FormatUint(res.SystemIdentifier, 10)
	a.mu.Lock()
	a.role, a.state, a.lastErr = dcs.RoleReplica, dcs.StateRunning, ""
	a.mu.Unlock()
	a.publish(ctx)
	return a.LoopWait, nil
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
	host := hosts
	if i := indexByte(hosts, ','); i >= 0 {
		host = hosts[:i]
	}
	if host == "*" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "postgres://" + net.JoinHostPort(host, strconv.Itoa(port)) + "/postgres"
}

func indexByte(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
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
		Tags: n.Config.Tags, Version: n.Version,
		PGImaged: &dcs.MemberDetail{SystemIdentifier: a.sysid, LastError: a.lastErr, Attempts: append([]dcs.Attempt(nil), a.history...)},
	}
	a.mu.Unlock()
	if m.Role == "" {
		m.Role = "uninitialized"
	}
	if m.State == dcs.StateRunning {
		m.XLogLocation, m.Timeline = a.walPosition(ctx)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := a.store.PutMember(pctx, m); err != nil && ctx.Err() == nil {
		n.logger().Warn("could not publish the member", "error", err)
	}
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
