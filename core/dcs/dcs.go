// Package dcs is pgimaged's view of the distributed configuration store (DCS): the place where the
// members of one cluster (a scope) agree on who bootstraps, who leads and who is there.
//
// Keys live under /service/<scope>/ and are laid out like Patroni's, so a pgimaged node can read a
// cluster that Patroni manages:
//
//	initialize        "" while a node bootstraps, then the system identifier (decimal) for good
//	leader            the leader's member name, bound to its owner's session
//	members/<name>    the member as JSON (see [Member]), bound to its owner's session
//	history           the changes of primary, Patroni's JSON list (see [TimelineSwitch]), permanent
//	sync              the synchronous standbys, Patroni's {"leader", "sync_standby"} ([SyncKey])
//	pgimaged/...      pgimaged's own permanent keys ([Store.Put]): reinit/<member> holds an
//	                  operator's reinit request, history/<member> the member's attempts,
//	                  switches what pgimaged records of each change of primary beyond Patroni's
//	                  history (the old leader)
//
// Patroni writes an empty initialize without a TTL, so a node that dies while bootstrapping blocks the
// cluster for ever. Here the empty initialize is bound to its owner's session like the leader and the
// member keys: when the owner ends its session or dies, the key vanishes and another node may
// bootstrap. [Store.SetInitialize] replaces it with the system identifier, which is permanent.
//
// A [Store] is one node's session on one scope. Two backends exist: [OpenFile] keeps the keys in a
// directory on one host and binds them to a lock the owning process holds while it lives;
// [OpenEtcd] keeps them in etcd (v3 API) and binds them to a lease that the store keeps alive.
// Both create their session lazily, on the first call that writes a session-bound key, so a store
// that only reads ([Store.Cluster], [Store.Watch]) leaves nothing behind.
package dcs

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
)

var (
	// ErrNotHeld reports an attempt to change a key that this session does not own.
	ErrNotHeld = errors.New("key is not held by this session")

	// ErrUnavailable reports that the store could not be reached; it wraps the cause. Callers wait
	// and retry. An operation that fails this way never reports that a key is held.
	ErrUnavailable = errors.New("dcs unavailable")

	// ErrSessionLost reports that the session ended while the store was open (an etcd lease
	// expired, a session lock file vanished): every key it held must be considered gone. Such a
	// store only serves reads; open a new one to take keys again.
	ErrSessionLost = errors.New("dcs session lost")

	// ErrClosed reports a call on a store after Close.
	ErrClosed = errors.New("dcs store closed")
)

// Cluster is a snapshot of one scope.
type Cluster struct {
	// Initialize is nil when the initialize key is absent, points to "" while a node bootstraps and
	// to the cluster's system identifier afterwards.
	Initialize *string
	// Leader is the leader's member name, "" when there is none.
	Leader string
	// Members are the published members, sorted by name.
	Members []Member
	// History is the cluster's changes of primary, oldest first.
	History History
	// Sync is Patroni's sync key: the members the primary replicates to synchronously; nil
	// when the key is absent (synchronous mode is off).
	Sync *SyncState
}

// Bootstrapping reports whether a node holds the empty initialize key.
func (c Cluster) Bootstrapping() bool { return c.Initialize != nil && *c.Initialize == "" }

// SystemIdentifier returns the system identifier stored in initialize, "" when there is none yet.
func (c Cluster) SystemIdentifier() string {
	if c.Initialize == nil {
		return ""
	}
	return *c.Initialize
}

// Member returns the member called name.
func (c Cluster) Member(name string) (Member, bool) {
	for _, m := range c.Members {
		if m.Name == name {
			return m, true
		}
	}
	return Member{}, false
}

// LeaderMember returns the member that holds the leader key, when it has published itself.
func (c Cluster) LeaderMember() (Member, bool) {
	if c.Leader == "" {
		return Member{}, false
	}
	return c.Member(c.Leader)
}

// Store is one node's session with the DCS for one scope. Ephemeral keys (the empty initialize,
// leader, members/<name>) are bound to this session and vanish when it ends or the process dies.
// A Store is safe for concurrent use.
type Store interface {
	// Cluster reads the scope.
	Cluster(ctx context.Context) (Cluster, error)

	// TryInitialize atomically creates an empty initialize bound to this session. true: this node
	// won the race (or already holds the empty key). false with a nil error: the key exists, held
	// by another session or holding a system identifier.
	TryInitialize(ctx context.Context) (bool, error)

	// SetInitialize replaces the empty initialize this session holds with sysid, permanently. It
	// returns ErrNotHeld when this session does not hold the empty key.
	SetInitialize(ctx context.Context, sysid string) error

	// ReleaseInitialize deletes initialize if it is still empty and held by this session; it does
	// nothing otherwise.
	ReleaseInitialize(ctx context.Context) error

	// AcquireLeader creates leader = name bound to this session when the key is absent or already
	// this session's. A key that already names name under another session is taken over: member
	// names are unique, so it is this member's from an earlier session (say, an etcd lease that
	// outlived an outage). true: this session holds it.
	AcquireLeader(ctx context.Context, name string) (bool, error)

	// ReleaseLeader deletes leader if this session holds it; it does nothing otherwise.
	ReleaseLeader(ctx context.Context) error

	// PutMember writes members/<m.Name> bound to this session. A key of the same name bound to
	// another session is taken over: member names are unique within a cluster.
	PutMember(ctx context.Context, m Member) error

	// DeleteMember deletes members/<name> if this session holds it. An absent key is not an
	// error; a key held by another live session is ErrNotHeld.
	DeleteMember(ctx context.Context, name string) error

	// Put writes a permanent key under the scope, one not bound to the session: key is a path
	// under [KeyPrefix] (pgimaged's own keys, apart from Patroni's).
	Put(ctx context.Context, key string, value []byte) error

	// History reads the cluster's changes of primary (Patroni's history key).
	History(ctx context.Context) (History, error)

	// AppendTimelineSwitch appends sw to the cluster's history by compare-and-swap: only if the
	// history still holds what prev was read from (by History or Cluster), else
	// ErrHistoryChanged, and the caller reads it again. sw must come after prev's newest switch
	// (a higher timeline, a switch LSN not before its). Of two writers that read the same
	// history, one wins.
	AppendTimelineSwitch(ctx context.Context, prev History, sw TimelineSwitch) error

	// Get reads a permanent key written by Put; false when it is absent.
	Get(ctx context.Context, key string) ([]byte, bool, error)

	// Delete removes a permanent key; an absent key is not an error.
	Delete(ctx context.Context, key string) error

	// CompareAndSwap replaces a permanent key only if it holds old — nil: only if it is absent,
	// an atomic create — with new (nil: deletes it). false with a nil error: the key held
	// something else and nothing was written. Of two writers that read the same value, one wins.
	CompareAndSwap(ctx context.Context, key string, old, new []byte) (bool, error)

	// Watch returns a channel that receives a value, without blocking the store and coalesced,
	// whenever anything under the scope changes (for the file backend within 100 ms), including a
	// key vanishing because its owner died. It is closed when ctx ends or the store is closed.
	// Start watching before reading the cluster so no change falls in between.
	Watch(ctx context.Context) <-chan struct{}

	// Lost is closed when the session ends: its keys must no longer be assumed held. That
	// happens on Close and when the session is lost underneath the store (see ErrSessionLost).
	Lost() <-chan struct{}

	// Close ends the session: the ephemeral keys of this session vanish; a system identifier
	// written into initialize stays.
	Close() error
}

// lostSignal is a store's [Store.Lost] channel, closed once (markLost) when the session ends.
type lostSignal struct {
	once sync.Once
	ch   chan struct{}
}

// Lost is closed when the session ends.
func (l *lostSignal) Lost() <-chan struct{} { return l.ch }

func (l *lostSignal) markLost() { l.once.Do(func() { close(l.ch) }) }

func (l *lostSignal) isLost() bool {
	select {
	case <-l.ch:
		return true
	default:
		return false
	}
}

// validName checks a scope or member name, which becomes one path element of a key.
func validName(what, name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%s name is empty", what)
	case name == "." || name == "..":
		return fmt.Errorf("%s name %q is not allowed", what, name)
	case strings.ContainsAny(name, "/\x00"):
		return fmt.Errorf("%s name %q must not contain '/' or NUL", what, name)
	}
	return nil
}

// validSystemIdentifier checks a PostgreSQL system identifier: an unsigned 64-bit decimal.
func validSystemIdentifier(sysid string) error {
	if sysid == "" || len(sysid) > 20 || strings.Trim(sysid, "0123456789") != "" {
		return fmt.Errorf("system identifier %q is not a decimal number", sysid)
	}
	return nil
}
