// Package dcstest holds a DCS in memory for tests: the same rules as the file and etcd
// backends, several members in one process, and faults injected per operation.
package dcstest

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/pgimaged/pgimaged/core/dcs"
)

// Fault is what [Memory] does to one operation, for tests that inject DCS failures.
type Fault int

const (
	// FaultNone: the operation runs normally.
	FaultNone Fault = iota
	// FaultUnavailable: the operation fails with dcs.ErrUnavailable and changes nothing.
	FaultUnavailable
	// FaultUncertain: a write takes effect but its caller gets dcs.ErrUnavailable, as when a
	// response is lost in a timeout. Reads fail with dcs.ErrUnavailable.
	FaultUncertain
	// FaultSessionLost: the session ends before the operation (its keys vanish), which then
	// fails with dcs.ErrSessionLost.
	FaultSessionLost
)

// Memory is a DCS held in memory and shared by the sessions opened on it: the same rules as
// the file and etcd backends (ephemeral keys bound to a session, an empty initialize that
// vanishes with its owner, a permanent system identifier), for tests that run several members
// in one process. Inject returns the fault for each operation; nil injects none.
type Memory struct {
	// Inject, if set, is asked before every operation of every session: op is the dcs.Store
	// method's name, member the session's owner as given to [Memory.Open].
	Inject func(op, member string) Fault

	mu         sync.Mutex
	next       int
	initialize *string
	initOwner  int // the session that holds an empty initialize
	leader     string
	leaderOwn  int
	members    map[string]memoryMember
	keys       map[string][]byte // permanent keys (Put)
	sessions   map[int]*Session
	watchers   map[*Session]bool
}

type memoryMember struct {
	m     dcs.Member
	owner int
}

// NewMemory returns an empty in-memory DCS.
func NewMemory() *Memory {
	return &Memory{members: map[string]memoryMember{}, sessions: map[int]*Session{}, watchers: map[*Session]bool{}}
}

// Session is one session on a [Memory]; it implements [dcs.Store].
type Session struct {
	mem        *Memory
	id         int
	member     string
	lostSignal // closed when the session ends
	closed     bool
	// started: the session holds (or held) keys; like the other backends, it begins with the
	// first write. ended: it is over.
	started, ended bool
	watches        []chan struct{}
}

var (
	_ dcs.Store  = (*Session)(nil)
	_ dcs.Lister = (*Session)(nil)
)

// Open opens a store for member (used only to tell sessions apart in Inject); its session
// starts with its first write.
func (m *Memory) Open(member string) *Session {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.next++
	s := &Session{mem: m, id: m.next, member: member, lostSignal: lostSignal{ch: make(chan struct{})}}
	m.sessions[s.id] = s
	return s
}

// Snapshot reads the scope without a session.
func (m *Memory) Snapshot() dcs.Cluster {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.snapshot()
}

// InitializeOwner is the member whose live session holds an empty initialize, "" when none.
func (m *Memory) InitializeOwner() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.initialize == nil || *m.initialize != "" {
		return ""
	}
	if s, ok := m.sessions[m.initOwner]; ok {
		return s.member
	}
	return ""
}

// LeaderSession is the session that holds the leader key, nil when none.
func (m *Memory) LeaderSession() *Session {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.leader == "" {
		return nil
	}
	return m.sessions[m.leaderOwn]
}

func (m *Memory) snapshot() dcs.Cluster {
	var cl dcs.Cluster
	if m.initialize != nil {
		v := *m.initialize
		cl.Initialize = &v
	}
	cl.Leader = m.leader
	cl.History = m.history()
	if v, ok := m.keys[dcs.SyncKey]; ok {
		cl.Sync = dcs.ParseSync(v)
	}
	for _, mm := range m.members {
		cl.Members = append(cl.Members, mm.m)
	}
	sort.Slice(cl.Members, func(i, j int) bool { return cl.Members[i].Name < cl.Members[j].Name })
	return cl
}

// end drops a session and every ephemeral key it holds. Caller holds m.mu.
func (m *Memory) end(s *Session, always bool) {
	if s.ended || !s.started && !always {
		return
	}
	s.ended = true
	delete(m.sessions, s.id)
	if m.initialize != nil && *m.initialize == "" && m.initOwner == s.id {
		m.initialize = nil
	}
	if m.leader != "" && m.leaderOwn == s.id {
		m.leader = ""
	}
	for name, mm := range m.members {
		if mm.owner == s.id {
			delete(m.members, name)
		}
	}
	s.markLost()
	for _, w := range s.watches {
		close(w)
	}
	s.watches = nil
	delete(m.watchers, s)
	m.changed()
}

// changed notifies every watch. Caller holds m.mu.
func (m *Memory) changed() {
	for s := range m.watchers {
		for _, w := range s.watches {
			select {
			case w <- struct{}{}:
			default:
			}
		}
	}
}

// Lose ends the session underneath its user, as a lease expiring does. A store that has not
// written yet has no session to lose.
func (s *Session) Lose() {
	s.mem.mu.Lock()
	defer s.mem.mu.Unlock()
	s.mem.end(s, false)
}

// Alive reports whether the session still holds its keys.
func (s *Session) Alive() bool {
	s.mem.mu.Lock()
	defer s.mem.mu.Unlock()
	return !s.ended
}

// Kinds of operation: a read, a write that needs a live session, and a release that has
// nothing to do once the session is gone.
const (
	opRead = iota
	opWrite
	opRelease
)

// op runs f under the lock after the injected fault, if any.
func (s *Session) op(name string, kind int, f func() error) error {
	m := s.mem
	fault := FaultNone
	if m.Inject != nil {
		fault = m.Inject(name, s.member)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if s.closed {
		return fmt.Errorf("while %s: %w", name, dcs.ErrClosed)
	}
	switch fault {
	case FaultUnavailable:
		return fmt.Errorf("while %s: %w: injected", name, dcs.ErrUnavailable)
	case FaultSessionLost:
		m.end(s, true)
	case FaultUncertain:
		if kind == opRead {
			return fmt.Errorf("while %s: %w: injected", name, dcs.ErrUnavailable)
		}
	}
	if kind == opWrite && !s.started && !s.ended {
		s.started = true
	}
	if kind == opWrite && s.ended {
		return fmt.Errorf("while %s: %w", name, dcs.ErrSessionLost)
	}
	err := f()
	if kind != opRead && err == nil {
		m.changed()
	}
	if fault == FaultUncertain && err == nil {
		return fmt.Errorf("while %s: %w: injected after the write took effect", name, dcs.ErrUnavailable)
	}
	return err
}

// dcs.Cluster reads the scope.
func (s *Session) Cluster(_ context.Context) (dcs.Cluster, error) {
	var cl dcs.Cluster
	err := s.op("dcs.Cluster", opRead, func() error { cl = s.mem.snapshot(); return nil })
	return cl, err
}

// TryInitialize creates an empty initialize bound to this session.
func (s *Session) TryInitialize(_ context.Context) (bool, error) {
	won := false
	err := s.op("TryInitialize", opWrite, func() error {
		m := s.mem
		switch {
		case m.initialize == nil:
			v := ""
			m.initialize, m.initOwner, won = &v, s.id, true
		case *m.initialize == "" && m.initOwner == s.id:
			won = true
		}
		return nil
	})
	return won && err == nil, err
}

// SetInitialize writes the system identifier into the empty initialize this session holds.
func (s *Session) SetInitialize(_ context.Context, sysid string) error {
	if err := dcs.ValidSystemIdentifier(sysid); err != nil {
		return fmt.Errorf("while recording the system identifier: %w", err)
	}
	return s.op("SetInitialize", opWrite, func() error {
		m := s.mem
		if m.initialize == nil || *m.initialize != "" || m.initOwner != s.id {
			return fmt.Errorf("while recording the system identifier: %w", dcs.ErrNotHeld)
		}
		v := sysid
		m.initialize, m.initOwner = &v, 0
		return nil
	})
}

// ReleaseInitialize deletes an empty initialize this session holds.
func (s *Session) ReleaseInitialize(_ context.Context) error {
	return s.op("ReleaseInitialize", opRelease, func() error {
		m := s.mem
		if m.initialize != nil && *m.initialize == "" && m.initOwner == s.id {
			m.initialize = nil
		}
		return nil
	})
}

// AcquireLeader takes the leader key as the store contract says.
func (s *Session) AcquireLeader(_ context.Context, name string) (bool, error) {
	if err := dcs.ValidMemberName(name); err != nil {
		return false, fmt.Errorf("while acquiring the leader key: %w", err)
	}
	held := false
	err := s.op("AcquireLeader", opWrite, func() error {
		m := s.mem
		if m.leader == "" || m.leaderOwn == s.id || m.leader == name {
			m.leader, m.leaderOwn, held = name, s.id, true
		}
		return nil
	})
	return held && err == nil, err
}

// ReleaseLeader deletes the leader key if this session holds it.
func (s *Session) ReleaseLeader(_ context.Context) error {
	return s.op("ReleaseLeader", opRelease, func() error {
		if s.mem.leader != "" && s.mem.leaderOwn == s.id {
			s.mem.leader = ""
		}
		return nil
	})
}

// PutMember writes the member key bound to this session.
func (s *Session) PutMember(_ context.Context, mb dcs.Member) error {
	if err := dcs.ValidMemberName(mb.Name); err != nil {
		return fmt.Errorf("while publishing the member: %w", err)
	}
	return s.op("PutMember", opWrite, func() error {
		s.mem.members[mb.Name] = memoryMember{m: mb, owner: s.id}
		return nil
	})
}

// DeleteMember deletes the member key if this session holds it.
func (s *Session) DeleteMember(_ context.Context, name string) error {
	return s.op("DeleteMember", opRelease, func() error {
		mm, ok := s.mem.members[name]
		switch {
		case !ok:
			return nil
		case mm.owner != s.id:
			if _, alive := s.mem.sessions[mm.owner]; alive {
				return fmt.Errorf("while deleting member %q: %w", name, dcs.ErrNotHeld)
			}
		}
		delete(s.mem.members, name)
		return nil
	})
}

// Watch returns a channel that receives a value on every change.
func (s *Session) Watch(ctx context.Context) <-chan struct{} {
	m := s.mem
	m.mu.Lock()
	defer m.mu.Unlock()
	ch := make(chan struct{}, 1)
	if s.ended || s.closed {
		close(ch)
		return ch
	}
	m.watchers[s] = true
	s.watches = append(s.watches, ch)
	go func() {
		select {
		case <-ctx.Done():
		case <-s.Lost():
			return
		}
		m.mu.Lock()
		defer m.mu.Unlock()
		for i, w := range s.watches {
			if w == ch {
				s.watches = append(s.watches[:i], s.watches[i+1:]...)
				close(ch)
				return
			}
		}
	}()
	return ch
}

// Close ends the session; its ephemeral keys vanish.
func (s *Session) Close() error {
	m := s.mem
	m.mu.Lock()
	defer m.mu.Unlock()
	m.end(s, true)
	s.closed = true
	return nil
}

// List returns the names of the permanent keys directly under dir.
func (s *Session) List(_ context.Context, dir string) ([]string, error) {
	if err := dcs.ValidKey(dir); err != nil {
		return nil, err
	}
	var names []string
	err := s.op("List", opRead, func() error {
		for k := range s.mem.keys {
			if name, ok := strings.CutPrefix(k, dir+"/"); ok && name != "" && !strings.Contains(name, "/") {
				names = append(names, name)
			}
		}
		return nil
	})
	slices.Sort(names)
	return names, err
}

// Put writes a permanent key.
func (s *Session) Put(_ context.Context, key string, value []byte) error {
	if err := dcs.ValidKey(key); err != nil {
		return err
	}
	return s.op("Put", opRelease, func() error {
		if s.mem.keys == nil {
			s.mem.keys = map[string][]byte{}
		}
		s.mem.keys[key] = append([]byte(nil), value...)
		return nil
	})
}

// Get reads a permanent key.
func (s *Session) Get(_ context.Context, key string) ([]byte, bool, error) {
	var v []byte
	var ok bool
	err := s.op("Get", opRead, func() error { v, ok = s.mem.keys[key]; return nil })
	return v, ok, err
}

// Delete removes a permanent key.
func (s *Session) Delete(_ context.Context, key string) error {
	return s.op("Delete", opRelease, func() error { delete(s.mem.keys, key); return nil })
}

// CompareAndSwap replaces a permanent key only if it holds old (nil: absent); new nil deletes
// it.
func (s *Session) CompareAndSwap(_ context.Context, key string, old, new []byte) (bool, error) {
	if err := dcs.ValidKey(key); err != nil {
		return false, err
	}
	swapped := false
	err := s.op("CompareAndSwap", opRelease, func() error {
		cur, ok := s.mem.keys[key]
		if !sameValue(ok, cur, old) {
			return nil
		}
		swapped = true
		if new == nil {
			delete(s.mem.keys, key)
			return nil
		}
		if s.mem.keys == nil {
			s.mem.keys = map[string][]byte{}
		}
		s.mem.keys[key] = append([]byte(nil), new...)
		return nil
	})
	return swapped && err == nil, err
}

// dcs.History reads the cluster's changes of primary.
func (s *Session) History(context.Context) (dcs.History, error) {
	var h dcs.History
	err := s.op("dcs.History", opRead, func() error { h = s.mem.history(); return nil })
	return h, err
}

// AppendTimelineSwitch appends sw if the history is still prev's.
func (s *Session) AppendTimelineSwitch(_ context.Context, prev dcs.History, sw dcs.TimelineSwitch) error {
	value, extras, err := dcs.AppendHistory(prev, sw)
	if err != nil {
		return err
	}
	return s.op("AppendTimelineSwitch", opRelease, func() error {
		m := s.mem
		if string(m.keys[dcs.HistoryKey]) != prev.Read() {
			return dcs.ErrHistoryChanged
		}
		if m.keys == nil {
			m.keys = map[string][]byte{}
		}
		m.keys[dcs.HistoryKey], m.keys[dcs.SwitchesKey] = value, extras
		return nil
	})
}

// history reads the history from the permanent keys. Caller holds m.mu.
func (m *Memory) history() dcs.History {
	return dcs.ReadHistory(m.keys[dcs.HistoryKey], m.keys[dcs.SwitchesKey])
}

// sameValue reports whether a key's state (present holding cur, or absent) is what old expects.
func sameValue(present bool, cur, old []byte) bool {
	if old == nil {
		return !present
	}
	return present && string(cur) == string(old)
}

// lostSignal is a session's Lost channel, closed once when the session ends.
type lostSignal struct {
	once sync.Once
	ch   chan struct{}
}

// Lost is closed when the session ends.
func (l *lostSignal) Lost() <-chan struct{} { return l.ch }

func (l *lostSignal) markLost() { l.once.Do(func() { close(l.ch) }) }
