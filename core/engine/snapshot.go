package engine

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/pgimaged/pgimaged/core/dcs"
	"github.com/pgimaged/pgimaged/core/pg"
)

// Snapshot is what the agent knew about its member at the end of its last cycle, for health
// checks that must answer without waiting on PostgreSQL or the DCS. Only Running is looked at
// when the snapshot is taken (the postmaster's pid file and process, no connection).
type Snapshot struct {
	Scope string
	Name  string
	// State and Role are what the member key publishes.
	State     string
	Role      string
	LastError string
	// SystemIdentifier is the data directory's, "" before it is known.
	SystemIdentifier string
	// Leader: this member held the leader key at the last DCS read, in a session still open.
	Leader bool
	// LeaderName is the leader key's holder at the last DCS read, "" for none.
	LeaderName string
	// DCSError is the last DCS read's failure, "" when it succeeded.
	DCSError string
	// Running: the postmaster of the data directory runs now.
	Running bool
	// Queried: PostgreSQL answered the last cycle's query; InRecovery, Streaming, Timeline
	// and Position are its answers.
	Queried    bool
	InRecovery bool
	// Streaming: a WAL receiver streams from an upstream.
	Streaming bool
	Timeline  int
	// NotStreaming is why a running replica meant to stream does not (its WAL receiver's last
	// failure in the server log); "" when it streams or is not meant to.
	NotStreaming string
	// Position is the WAL written (primary) or replayed (standby), in bytes from 0/0.
	Position int64
	// LeaderPosition is the WAL position the leader last published (kept while no leader
	// publishes one), 0 when unknown.
	LeaderPosition int64
	// Paused: the cluster is in maintenance mode (pgimaged pause).
	Paused bool
	// Scheduled is the switchover scheduled for later, nil for none.
	Scheduled *ChangeRequest
	// Cluster is the DCS's content at the last read; nil before the first.
	Cluster *dcs.Cluster
	// LastCycle is when the agent last finished a cycle; zero before the first.
	LastCycle time.Time
	// Busy: a bootstrap or a clone is in flight (the loop is busy, not stuck).
	Busy bool
	// Progress is how far the method in flight has come (with its rate and time left), nil
	// when none runs or it reported nothing yet.
	Progress *dcs.CloneProgress
	// Started is when the agent started.
	Started time.Time
	// Tags are the member's tags, as its configuration sets them.
	Tags map[string]any
	// Server is what PostgreSQL said of itself in the last cycle (when Queried).
	Server ServerDetail
	// Remote is where the standby leader of a standby cluster stands behind its remote; nil
	// on any other member.
	Remote *dcs.RemoteFollow
	// LedAt is when a read of the DCS last showed this member holding the leader key; zero
	// when the last successful read showed it did not.
	LedAt time.Time
	// Failsafe: failsafe mode keeps this member the primary while the DCS cannot be reached
	// (every member it knows accepted it within a ttl).
	Failsafe bool
}

// Primary reports whether this member runs PostgreSQL as a primary and holds the leader key.
func (s Snapshot) Primary() bool {
	return s.Running && s.Queried && !s.InRecovery && (s.Leader || s.Failsafe)
}

// Replica reports whether this member runs PostgreSQL as a standby (streaming or replaying
// from an archive) of this cluster.
func (s Snapshot) Replica() bool {
	return s.Running && s.Queried && s.InRecovery && s.State == dcs.StateRunning
}

// Lag is the leader's published position minus this member's replayed one, in bytes; -1 when
// either is unknown.
func (s Snapshot) Lag() int64 {
	if s.LeaderPosition <= 0 || s.Position <= 0 {
		return -1
	}
	return max(s.LeaderPosition-s.Position, 0)
}

// snapshotHolder keeps the agent's snapshot behind its own lock, so that readers never wait on
// the agent's work.
type snapshotHolder struct {
	mu   sync.Mutex
	snap Snapshot
}

// Snapshot returns what the agent knew at the end of its last cycle. It is cheap and safe to
// call from any goroutine at any rate.
func (a *Agent) Snapshot() Snapshot {
	a.snap.mu.Lock()
	s := a.snap.snap
	a.snap.mu.Unlock()
	if s.Cluster != nil {
		c := *s.Cluster
		s.Cluster = &c
	}
	a.mu.Lock()
	s.State, s.Role, s.LastError = a.state, a.role, a.lastErr
	if a.progress != nil && inFlight(a.state) {
		p := *a.progress
		s.Progress = &p
	}
	a.mu.Unlock()
	s.Failsafe = a.failsafeActive(time.Now())
	s.Busy = s.State == dcs.StateBootstrapping || s.State == dcs.StateCreatingReplica || s.State == StateRestarting
	if srv := a.server(); srv != nil {
		_, s.Running = srv.Running()
	}
	if !s.Running {
		s.Queried = false
	}
	return s
}

// refreshSnapshot reads the DCS and asks PostgreSQL where it stands, once per cycle, for
// Snapshot.
func (a *Agent) refreshSnapshot(ctx context.Context) {
	n := a.Node
	s := Snapshot{Scope: n.Config.Scope, Name: n.Config.Name, LastCycle: time.Now(), Tags: n.Config.Tags}
	a.snap.mu.Lock()
	s.Started = a.snap.snap.Started
	a.snap.mu.Unlock()
	a.mu.Lock()
	s.SystemIdentifier, s.Paused, s.Scheduled = a.sysid, a.paused, a.scheduled
	a.mu.Unlock()
	if a.store != nil {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		cl, err := a.store.Cluster(rctx)
		cancel()
		a.noteDCS(err)
		if err != nil {
			s.DCSError = err.Error()
			a.dcsError(err)
			a.snap.mu.Lock()
			prev := a.snap.snap
			a.snap.mu.Unlock()
			s.Cluster, s.Leader, s.LeaderName, s.LeaderPosition = prev.Cluster, prev.Leader, prev.LeaderName, prev.LeaderPosition
			s.LedAt = prev.LedAt
			if errors.Is(err, dcs.ErrSessionLost) || errors.Is(err, dcs.ErrClosed) {
				s.Leader = false // the key went with the session
				a.noteLeader(false, "", "the DCS session was lost")
			}
		} else {
			s.Cluster = &cl
			s.LeaderName = cl.Leader
			s.Leader = cl.Leader == n.Config.Name
			a.noteLeader(s.Leader, cl.Leader, "")
			if s.Leader {
				s.LedAt = s.LastCycle
			}
			if lm, ok := cl.LeaderMember(); ok {
				s.LeaderPosition = lm.XLogLocation
			} else {
				// The leader's last known position, as Patroni's optime key keeps it once the
				// leader is gone: a replica behind it stays behind (GET /replica?lag=).
				a.snap.mu.Lock()
				s.LeaderPosition = a.snap.snap.LeaderPosition
				a.snap.mu.Unlock()
			}
		}
	} else {
		s.DCSError = "no DCS session"
	}
	if a.server() != nil {
		st := a.pgStatus(ctx)
		s.Running, s.Queried = st.Running, st.Queried
		s.InRecovery, s.Position, s.Timeline, s.Streaming = st.InRecovery, st.Position, st.Timeline, st.Streaming
		a.mu.Lock()
		state, role := a.state, a.role
		a.mu.Unlock()
		s.NotStreaming = n.notStreaming(st, state, role) // snapshot_stream.go
		if s.Queried {
			qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			if conn, err := a.server().Connect(qctx); err == nil {
				queryServerDetail(qctx, conn, &s)
				conn.Close(context.Background())
			}
			cancel()
		}
	}
	if s.Leader && s.Queried && !s.InRecovery {
		s.LeaderPosition = s.Position
	}
	a.refreshRemote(ctx, &s) // standby_remote.go
	a.snap.mu.Lock()
	a.snap.snap = s
	a.snap.mu.Unlock()
}

// dropLeader forgets the leader key in the snapshot (the session that held it is gone).
func (a *Agent) dropLeader() {
	a.snap.mu.Lock()
	a.snap.snap.Leader = false
	a.snap.mu.Unlock()
}

func (a *Agent) dcsError(err error) {
	if err != nil {
		a.snap.mu.Lock()
		a.snap.snap.DCSError = err.Error() // until the next successful read
		a.snap.mu.Unlock()
	}
	if a.Node.Events != nil {
		a.Node.Events.DCSError(err)
	}
}

func (a *Agent) server() *pg.Server {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.srv
}

// APIURL is how Patroni-compatible tools reach this member's API, as Patroni publishes it:
// http(s)://api.connect_address/patroni; "" without an api block.
func (n *Node) APIURL() string {
	api := n.Config.API
	if !api.Enabled() {
		return ""
	}
	scheme := "http"
	if api.TLS() {
		scheme = "https"
	}
	addr := api.Address()
	host, port, err := net.SplitHostPort(addr)
	if err == nil {
		addr = net.JoinHostPort(pg.Loopback(strings.Trim(host, "[]")), port)
	}
	return scheme + "://" + addr + "/patroni"
}
