package dcs_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/pgimaged/pgimaged/core/dcs"
	"github.com/pgimaged/pgimaged/core/dcs/dcstest"
)

// deadline bounds every wait for something that happens eventually (a lease expiring, a watch
// firing). It guards against hangs; it is no assertion about speed.
const deadline = 30 * time.Second

// Environment of the peer process (see peerMain) that holds keys in a separate OS process.
const (
	peerVar      = "PGIMAGED_DCS_TEST_PEER"
	backendVar   = "PGIMAGED_DCS_TEST_BACKEND"
	pathVar      = "PGIMAGED_DCS_TEST_PATH"
	endpointsVar = "PGIMAGED_DCS_TEST_ENDPOINTS"
	scopeVar     = "PGIMAGED_DCS_TEST_SCOPE"
	ttlVar       = "PGIMAGED_DCS_TEST_TTL"
)

func TestMain(m *testing.M) {
	if os.Getenv(peerVar) != "" {
		os.Exit(peerMain())
	}
	code := m.Run()
	stopEtcd()
	os.Exit(code)
}

// env is one empty scope on one backend.
type env struct {
	// open starts a new session on the scope; it is closed when the test ends.
	open func(t *testing.T) dcs.Store
	// peerEnv lets a peer process open a session on the same scope.
	peerEnv []string
	// loseSessions ends, underneath their stores, the sessions that hold keys in the scope.
	loseSessions func(t *testing.T)
	// dir is the file store's directory.
	dir string
}

type backend struct {
	name string
	// immediate: the keys of a killed process are gone at the next read (file), not once the
	// lease expires (etcd).
	immediate bool
	// oneProcess: sessions can be opened only in this process (the in-memory store).
	oneProcess bool
	setup      func(t *testing.T) env
}

var backends = []backend{
	{name: "file", immediate: true, setup: fileEnv},
	{name: "etcd", setup: etcdEnv},
	{name: "memory", immediate: true, setup: memoryEnv, oneProcess: true},
}

// memoryEnv is a scope of the in-memory store, which lives in this process only.
func memoryEnv(t *testing.T) env {
	mem := dcstest.NewMemory()
	var sessions []*dcstest.Session
	return env{
		open: func(t *testing.T) dcs.Store {
			s := mem.Open("")
			sessions = append(sessions, s)
			t.Cleanup(func() { _ = s.Close() })
			return s
		},
		loseSessions: func(t *testing.T) {
			for _, s := range sessions {
				s.Lose()
			}
		},
	}
}

// forEachBackend runs fn as a subtest per backend, each with a fresh scope.
func forEachBackend(t *testing.T, fn func(t *testing.T, b backend, e env)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { fn(t, b, b.setup(t)) })
	}
}

// forEachSharedBackend runs fn on the backends whose sessions other OS processes can open: not
// the in-memory store, which lives in one process.
func forEachSharedBackend(t *testing.T, fn func(t *testing.T, b backend, e env)) {
	for _, b := range backends {
		if !b.oneProcess {
			t.Run(b.name, func(t *testing.T) { fn(t, b, b.setup(t)) })
		}
	}
}

func fileEnv(t *testing.T) env {
	dir := filepath.Join(t.TempDir(), "dcs")
	const scope = "batman"
	return env{
		dir: dir,
		open: func(t *testing.T) dcs.Store {
			t.Helper()
			s, err := dcs.OpenFile(t.Context(), dcs.FileConfig{Path: dir}, scope, testLogger(t))
			if err != nil {
				t.Fatalf("OpenFile: %v", err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return s
		},
		peerEnv: []string{backendVar + "=file", pathVar + "=" + dir, scopeVar + "=" + scope},
		loseSessions: func(t *testing.T) {
			t.Helper()
			locks, _ := filepath.Glob(filepath.Join(dir, "service", scope, ".sessions", "*.lock"))
			if len(locks) == 0 {
				t.Fatal("no session lock files to remove")
			}
			for _, l := range locks {
				if err := os.Remove(l); err != nil {
					t.Fatal(err)
				}
			}
		},
	}
}

func etcdEnv(t *testing.T) env {
	endpoint := etcdEndpoint(t)
	scope := uniqueScope(t)
	const ttl = 2 * time.Second
	return env{
		open: func(t *testing.T) dcs.Store {
			t.Helper()
			cfg := dcs.EtcdConfig{Endpoints: []string{endpoint}, TTL: ttl}
			s, err := dcs.OpenEtcd(t.Context(), cfg, scope, testLogger(t))
			if err != nil {
				t.Fatalf("OpenEtcd: %v", err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return s
		},
		peerEnv: []string{backendVar + "=etcd", endpointsVar + "=" + endpoint, scopeVar + "=" + scope, ttlVar + "=" + ttl.String()},
		loseSessions: func(t *testing.T) {
			t.Helper()
			revokeScopeLeases(t, endpoint, scope)
		},
	}
}

// testLogger logs through t until the test's cleanups are done.
func testLogger(t *testing.T) hclog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(w.stop)
	return hclog.New(&hclog.LoggerOptions{Name: "dcs", Level: hclog.Debug, Output: w})
}

type testWriter struct {
	mu      sync.Mutex
	t       *testing.T
	stopped bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.stopped {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (w *testWriter) stop() {
	w.mu.Lock()
	w.stopped = true
	w.mu.Unlock()
}

func cluster(t *testing.T, s dcs.Store) dcs.Cluster {
	t.Helper()
	c, err := s.Cluster(t.Context())
	if err != nil {
		t.Fatalf("Cluster: %v", err)
	}
	return c
}

func tryInitialize(t *testing.T, s dcs.Store) bool {
	t.Helper()
	won, err := s.TryInitialize(t.Context())
	if err != nil {
		t.Fatalf("TryInitialize: %v", err)
	}
	return won
}

func acquireLeader(t *testing.T, s dcs.Store, name string) bool {
	t.Helper()
	held, err := s.AcquireLeader(t.Context(), name)
	if err != nil {
		t.Fatalf("AcquireLeader(%q): %v", name, err)
	}
	return held
}

func initializeState(c dcs.Cluster) string {
	switch {
	case c.Initialize == nil:
		return "absent"
	case *c.Initialize == "":
		return "bootstrapping"
	}
	return "sysid " + *c.Initialize
}

func memberNames(c dcs.Cluster) []string {
	names := []string{}
	for _, m := range c.Members {
		names = append(names, m.Name)
	}
	return names
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(deadline)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("%s: still not the case after %s", what, deadline)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// receive waits for a value on ch (or for ch to close when closed is set).
func receive(t *testing.T, ch <-chan struct{}, closed bool, what string) {
	t.Helper()
	timer := time.NewTimer(deadline)
	defer timer.Stop()
	for {
		select {
		case _, ok := <-ch:
			if ok == !closed {
				return
			}
			if !ok {
				t.Fatalf("%s: channel closed", what)
			}
		case <-timer.C:
			t.Fatalf("%s: nothing after %s", what, deadline)
		}
	}
}

func TestTryInitializeRace(t *testing.T) {
	cases := []struct {
		name      string
		sessions  int
		processes bool // each session in its own OS process
	}{
		{name: "stores in one process", sessions: 8},
		{name: "separate processes", sessions: 4, processes: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			each := forEachBackend
			if tc.processes {
				each = forEachSharedBackend
			}
			each(t, func(t *testing.T, b backend, e env) {
				var results []string
				if tc.processes {
					peers := make([]*peer, tc.sessions)
					for i := range peers {
						peers[i] = startPeer(t, e)
					}
					for _, h := range peers {
						h.send(t, "initialize")
					}
					for _, h := range peers {
						results = append(results, h.reply(t))
					}
				} else {
					stores := make([]dcs.Store, tc.sessions)
					for i := range stores {
						stores[i] = e.open(t)
					}
					results = make([]string, tc.sessions)
					start := make(chan struct{})
					var wg sync.WaitGroup
					for i, s := range stores {
						wg.Go(func() {
							<-start
							won, err := s.TryInitialize(t.Context())
							results[i] = outcome(won, err)
						})
					}
					close(start)
					wg.Wait()
				}
				wins := 0
				for _, r := range results {
					switch r {
					case "won":
						wins++
					case "lost":
					default:
						t.Errorf("TryInitialize: %s", r)
					}
				}
				if wins != 1 {
					t.Errorf("%d of %d sessions won the initialize race (%v), want exactly 1", wins, tc.sessions, results)
				}
				if got := initializeState(cluster(t, e.open(t))); got != "bootstrapping" {
					t.Errorf("initialize after the race: %s, want bootstrapping", got)
				}
			})
		})
	}
}

func outcome(won bool, err error) string {
	switch {
	case err != nil:
		return "error: " + err.Error()
	case won:
		return "won"
	}
	return "lost"
}

func TestOwnerDeathReleasesInitialize(t *testing.T) {
	forEachSharedBackend(t, func(t *testing.T, b backend, e env) {
		owner := startPeer(t, e)
		if got := owner.call(t, "initialize"); got != "won" {
			t.Fatalf("peer TryInitialize: %s, want won", got)
		}
		s := e.open(t)
		watch := s.Watch(t.Context())
		if got := initializeState(cluster(t, s)); got != "bootstrapping" {
			t.Fatalf("initialize while the owner lives: %s, want bootstrapping", got)
		}
		if tryInitialize(t, s) {
			t.Fatal("TryInitialize won while the owner lives")
		}

		owner.kill(t)

		if b.immediate {
			if got := initializeState(cluster(t, s)); got != "absent" {
				t.Fatalf("initialize right after the owner was killed: %s, want absent", got)
			}
		} else {
			eventually(t, "initialize vanishes after the owner was killed", func() bool {
				return cluster(t, s).Initialize == nil
			})
		}
		receive(t, watch, false, "watch after the owner died")
		if !tryInitialize(t, s) {
			t.Fatal("TryInitialize lost after the owner died, want won")
		}
	})
}

// twoSessions is a case that two sessions of one scope, a and b, play on every backend; want is
// what b reads at the end.
type twoSessions[T any] struct {
	name string
	run  func(t *testing.T, a, b dcs.Store)
	want T
}

// playTwoSessions plays each case and checks what read finds in b's view of the cluster.
func playTwoSessions[T any](t *testing.T, what string, read func(dcs.Cluster) T, cases []twoSessions[T]) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			forEachBackend(t, func(t *testing.T, _ backend, e env) {
				a, b := e.open(t), e.open(t)
				tc.run(t, a, b)
				if got := read(cluster(t, b)); !reflect.DeepEqual(got, tc.want) {
					t.Errorf("%s: %#v, want %#v", what, got, tc.want)
				}
			})
		})
	}
}

func TestInitialize(t *testing.T) {
	const sysid = "7301234567890123456"
	playTwoSessions(t, "initialize", initializeState, []twoSessions[string]{
		{
			name: "set makes the key permanent",
			run: func(t *testing.T, a, b dcs.Store) {
				if !tryInitialize(t, a) {
					t.Fatal("TryInitialize lost on an empty scope")
				}
				if err := a.SetInitialize(t.Context(), sysid); err != nil {
					t.Fatalf("SetInitialize: %v", err)
				}
				if err := a.ReleaseInitialize(t.Context()); err != nil {
					t.Fatalf("ReleaseInitialize after SetInitialize: %v", err)
				}
				if err := a.Close(); err != nil {
					t.Fatalf("Close: %v", err)
				}
				if tryInitialize(t, b) {
					t.Fatal("TryInitialize won over a system identifier")
				}
			},
			want: "sysid " + sysid,
		},
		{
			name: "set by a session that never took the key",
			run: func(t *testing.T, a, b dcs.Store) {
				if err := b.SetInitialize(t.Context(), sysid); !errors.Is(err, dcs.ErrNotHeld) {
					t.Fatalf("SetInitialize on an empty scope: %v, want ErrNotHeld", err)
				}
				tryInitialize(t, a)
			},
			want: "bootstrapping",
		},
		{
			name: "set by a session that lost the race",
			run: func(t *testing.T, a, b dcs.Store) {
				tryInitialize(t, a)
				if tryInitialize(t, b) {
					t.Fatal("second TryInitialize won")
				}
				if err := b.SetInitialize(t.Context(), sysid); !errors.Is(err, dcs.ErrNotHeld) {
					t.Fatalf("SetInitialize by the loser: %v, want ErrNotHeld", err)
				}
			},
			want: "bootstrapping",
		},
		{
			name: "set twice",
			run: func(t *testing.T, a, b dcs.Store) {
				tryInitialize(t, a)
				if err := a.SetInitialize(t.Context(), sysid); err != nil {
					t.Fatalf("SetInitialize: %v", err)
				}
				if err := a.SetInitialize(t.Context(), "42"); !errors.Is(err, dcs.ErrNotHeld) {
					t.Fatalf("second SetInitialize: %v, want ErrNotHeld", err)
				}
			},
			want: "sysid " + sysid,
		},
		{
			name: "set a value that is no system identifier",
			run: func(t *testing.T, a, b dcs.Store) {
				tryInitialize(t, a)
				err := a.SetInitialize(t.Context(), "not-a-number")
				if err == nil || errors.Is(err, dcs.ErrNotHeld) {
					t.Fatalf("SetInitialize(not-a-number): %v, want a validation error", err)
				}
			},
			want: "bootstrapping",
		},
		{
			name: "try again while holding the key",
			run: func(t *testing.T, a, b dcs.Store) {
				first, again := tryInitialize(t, a), tryInitialize(t, a)
				if !first || !again {
					t.Fatal("TryInitialize by the holder lost")
				}
			},
			want: "bootstrapping",
		},
		{
			name: "release lets another session bootstrap",
			run: func(t *testing.T, a, b dcs.Store) {
				tryInitialize(t, a)
				if err := a.ReleaseInitialize(t.Context()); err != nil {
					t.Fatalf("ReleaseInitialize: %v", err)
				}
				if !tryInitialize(t, b) {
					t.Fatal("TryInitialize after release lost")
				}
			},
			want: "bootstrapping",
		},
		{
			name: "release by another session does nothing",
			run: func(t *testing.T, a, b dcs.Store) {
				tryInitialize(t, a)
				tryInitialize(t, b)
				if err := b.ReleaseInitialize(t.Context()); err != nil {
					t.Fatalf("ReleaseInitialize by a non-owner: %v", err)
				}
				if tryInitialize(t, b) {
					t.Fatal("TryInitialize won after a non-owner's release")
				}
			},
			want: "bootstrapping",
		},
		{
			name: "close releases the empty key",
			run: func(t *testing.T, a, b dcs.Store) {
				tryInitialize(t, a)
				if err := a.Close(); err != nil {
					t.Fatalf("Close: %v", err)
				}
				if !tryInitialize(t, b) {
					t.Fatal("TryInitialize after the owner closed lost")
				}
			},
			want: "bootstrapping",
		},
	})
}

func TestLeader(t *testing.T) {
	playTwoSessions(t, "leader", func(c dcs.Cluster) string { return c.Leader }, []twoSessions[string]{
		{
			name: "a held key cannot be taken",
			run: func(t *testing.T, a, b dcs.Store) {
				if !acquireLeader(t, a, "node-a") {
					t.Fatal("AcquireLeader on an empty scope failed")
				}
				if acquireLeader(t, b, "node-b") {
					t.Fatal("AcquireLeader succeeded while another session holds the key")
				}
				if !acquireLeader(t, a, "node-a") {
					t.Fatal("AcquireLeader by the holder failed")
				}
			},
			want: "node-a",
		},
		{
			name: "release by another session does nothing",
			run: func(t *testing.T, a, b dcs.Store) {
				acquireLeader(t, a, "node-a")
				acquireLeader(t, b, "node-b")
				if err := b.ReleaseLeader(t.Context()); err != nil {
					t.Fatalf("ReleaseLeader by a non-owner: %v", err)
				}
			},
			want: "node-a",
		},
		{
			name: "release hands the key over",
			run: func(t *testing.T, a, b dcs.Store) {
				acquireLeader(t, a, "node-a")
				if err := a.ReleaseLeader(t.Context()); err != nil {
					t.Fatalf("ReleaseLeader: %v", err)
				}
				if !acquireLeader(t, b, "node-b") {
					t.Fatal("AcquireLeader after release failed")
				}
			},
			want: "node-b",
		},
		{
			name: "close hands the key over",
			run: func(t *testing.T, a, b dcs.Store) {
				acquireLeader(t, a, "node-a")
				if err := a.Close(); err != nil {
					t.Fatalf("Close: %v", err)
				}
				if got := cluster(t, b).Leader; got != "" {
					t.Fatalf("leader after the owner closed: %q, want none", got)
				}
				if !acquireLeader(t, b, "node-b") {
					t.Fatal("AcquireLeader after the owner closed failed")
				}
			},
			want: "node-b",
		},
		{
			// After an outage an etcd lease of the old session can outlive it: the member's new
			// session takes back the key that names it instead of seeing "another member" lead.
			name: "a key naming this member under an earlier session is taken over",
			run: func(t *testing.T, a, b dcs.Store) {
				acquireLeader(t, a, "node-a")
				if !acquireLeader(t, b, "node-a") {
					t.Fatal("AcquireLeader of a key naming this member under another session failed")
				}
				if err := a.Close(); err != nil {
					t.Fatalf("Close: %v", err)
				}
			},
			want: "node-a",
		},
		{
			name: "the holder may rename it",
			run: func(t *testing.T, a, b dcs.Store) {
				acquireLeader(t, a, "node-a")
				if !acquireLeader(t, a, "node-a2") {
					t.Fatal("AcquireLeader with a new name by the holder failed")
				}
			},
			want: "node-a2",
		},
	})
}

func sampleMember(name, role string) dcs.Member {
	return dcs.Member{
		Name:         name,
		ConnURL:      "postgres://127.0.0.1:5432/postgres",
		State:        dcs.StateRunning,
		Role:         role,
		Tags:         map[string]any{"clonefrom": true},
		Version:      "0.1.0",
		XLogLocation: 50331968,
		Timeline:     1,
		PGImaged: &dcs.MemberDetail{
			SystemIdentifier: "7301234567890123456",
			LastError:        "wal_e: exit status 1",
			Attempts: []dcs.Attempt{
				{Method: "wal_e", Exit: 1, Started: time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC), Duration: 1500 * time.Millisecond, Error: "exit status 1", Tail: []string{"no backups"}},
				{Method: "basebackup", OK: true, Started: time.Date(2024, 5, 1, 10, 0, 2, 0, time.UTC), Duration: 42 * time.Second},
			},
		},
	}
}

func TestMembers(t *testing.T) {
	playTwoSessions(t, "members", memberNames, []twoSessions[[]string]{
		{
			name: "published members are listed sorted, as written",
			run: func(t *testing.T, a, b dcs.Store) {
				// b publishes first: the listing is sorted by name, not by age.
				if err := b.PutMember(t.Context(), sampleMember("node-b", dcs.RoleReplica)); err != nil {
					t.Fatalf("PutMember: %v", err)
				}
				if err := a.PutMember(t.Context(), sampleMember("node-a", dcs.RolePrimary)); err != nil {
					t.Fatalf("PutMember: %v", err)
				}
				if !acquireLeader(t, a, "node-a") {
					t.Fatal("AcquireLeader failed")
				}
				c := cluster(t, b)
				leader, ok := c.LeaderMember()
				if !ok || !reflect.DeepEqual(leader, sampleMember("node-a", dcs.RolePrimary)) {
					t.Errorf("LeaderMember: %+v (%v), want %+v", leader, ok, sampleMember("node-a", dcs.RolePrimary))
				}
				if !leader.IsPrimary() || !leader.CloneFrom() {
					t.Errorf("leader IsPrimary=%v CloneFrom=%v, want both", leader.IsPrimary(), leader.CloneFrom())
				}
			},
			want: []string{"node-a", "node-b"},
		},
		{
			name: "members vanish when their session closes",
			run: func(t *testing.T, a, b dcs.Store) {
				if err := a.PutMember(t.Context(), sampleMember("node-a", dcs.RoleReplica)); err != nil {
					t.Fatalf("PutMember: %v", err)
				}
				if err := b.PutMember(t.Context(), sampleMember("node-b", dcs.RoleReplica)); err != nil {
					t.Fatalf("PutMember: %v", err)
				}
				if err := a.Close(); err != nil {
					t.Fatalf("Close: %v", err)
				}
			},
			want: []string{"node-b"},
		},
		{
			name: "a put replaces the member",
			run: func(t *testing.T, a, b dcs.Store) {
				m := sampleMember("node-a", dcs.RoleReplica)
				m.State = dcs.StateCreatingReplica
				if err := a.PutMember(t.Context(), m); err != nil {
					t.Fatalf("PutMember: %v", err)
				}
				m.State, m.PGImaged = dcs.StateRunning, nil
				if err := a.PutMember(t.Context(), m); err != nil {
					t.Fatalf("PutMember: %v", err)
				}
				got, ok := cluster(t, b).Member("node-a")
				if !ok || got.State != dcs.StateRunning || got.PGImaged != nil {
					t.Errorf("member after the second put: %+v (%v), want state running without pgimaged details", got, ok)
				}
			},
			want: []string{"node-a"},
		},
		{
			name: "only the owner deletes a member",
			run: func(t *testing.T, a, b dcs.Store) {
				if err := a.PutMember(t.Context(), sampleMember("node-a", dcs.RoleReplica)); err != nil {
					t.Fatalf("PutMember: %v", err)
				}
				if err := b.DeleteMember(t.Context(), "node-a"); !errors.Is(err, dcs.ErrNotHeld) {
					t.Fatalf("DeleteMember by another session: %v, want ErrNotHeld", err)
				}
				if err := a.DeleteMember(t.Context(), "node-a"); err != nil {
					t.Fatalf("DeleteMember by the owner: %v", err)
				}
				if err := a.DeleteMember(t.Context(), "nobody"); err != nil {
					t.Fatalf("DeleteMember of an absent member: %v", err)
				}
			},
			want: []string{},
		},
		{
			name: "names that are no key element are refused",
			run: func(t *testing.T, a, b dcs.Store) {
				for _, name := range []string{"", "a/b", "..", "."} {
					if err := a.PutMember(t.Context(), dcs.Member{Name: name}); err == nil {
						t.Errorf("PutMember(%q) succeeded", name)
					}
				}
			},
			want: []string{},
		},
	})
}

func TestWatch(t *testing.T) {
	cases := []struct {
		name string
		run  func(t *testing.T, a, b dcs.Store, cancel context.CancelFunc, ch <-chan struct{})
	}{
		{
			name: "fires after another session's PutMember",
			run: func(t *testing.T, a, b dcs.Store, _ context.CancelFunc, ch <-chan struct{}) {
				if err := b.PutMember(t.Context(), sampleMember("node-b", dcs.RoleReplica)); err != nil {
					t.Fatalf("PutMember: %v", err)
				}
				receive(t, ch, false, "watch after PutMember")
			},
		},
		{
			name: "fires when a key is released",
			run: func(t *testing.T, a, b dcs.Store, _ context.CancelFunc, ch <-chan struct{}) {
				// Take the key before the watch's first value is drained: coalesced notices
				// may fold both changes into one, so wait for the release's own.
				tryInitialize(t, b)
				receive(t, ch, false, "watch after TryInitialize")
				if err := b.ReleaseInitialize(t.Context()); err != nil {
					t.Fatalf("ReleaseInitialize: %v", err)
				}
				receive(t, ch, false, "watch after ReleaseInitialize")
			},
		},
		{
			name: "closed when its context ends",
			run: func(t *testing.T, a, b dcs.Store, cancel context.CancelFunc, ch <-chan struct{}) {
				cancel()
				receive(t, ch, true, "watch after cancel")
			},
		},
		{
			name: "closed when the store closes",
			run: func(t *testing.T, a, b dcs.Store, _ context.CancelFunc, ch <-chan struct{}) {
				if err := a.Close(); err != nil {
					t.Fatalf("Close: %v", err)
				}
				receive(t, ch, true, "watch after Close")
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			forEachBackend(t, func(t *testing.T, _ backend, e env) {
				a, b := e.open(t), e.open(t)
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				tc.run(t, a, b, cancel, a.Watch(ctx))
			})
		})
	}
}

func TestSessionLost(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend, e env) {
		a, other := e.open(t), e.open(t)
		if !acquireLeader(t, a, "node-a") {
			t.Fatal("AcquireLeader failed")
		}
		select {
		case <-a.Lost():
			t.Fatal("Lost closed while the session lives")
		default:
		}

		e.loseSessions(t)

		held, err := a.AcquireLeader(t.Context(), "node-a")
		if held || !errors.Is(err, dcs.ErrSessionLost) {
			t.Fatalf("AcquireLeader after the session was lost: %v, %v; want false, ErrSessionLost", held, err)
		}
		receive(t, a.Lost(), true, "Lost after the session was lost")
		if err := a.PutMember(t.Context(), sampleMember("node-a", dcs.RoleReplica)); !errors.Is(err, dcs.ErrSessionLost) {
			t.Errorf("PutMember after the session was lost: %v, want ErrSessionLost", err)
		}
		if err := a.ReleaseLeader(t.Context()); err != nil {
			t.Errorf("ReleaseLeader after the session was lost: %v", err)
		}
		if !acquireLeader(t, other, "node-b") {
			t.Error("another session cannot take the leader key of a lost session")
		}
		if got := cluster(t, a).Leader; got != "node-b" {
			t.Errorf("leader read by the lost store: %q, want node-b", got)
		}
	})
}

// peer is a session in a separate OS process: the test binary run as peerMain.
type peer struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
}

func startPeer(t *testing.T, e env) *peer {
	t.Helper()
	if e.peerEnv == nil {
		t.Fatal("this backend's sessions cannot be opened by another process: use forEachSharedBackend")
	}
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), peerVar+"=1"), e.peerEnv...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting peer process: %v", err)
	}
	h := &peer{cmd: cmd, stdin: stdin, lines: make(chan string, 16)}
	go func() {
		defer close(h.lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			h.lines <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		_ = stdin.Close() // the peer closes its store and exits
		_ = cmd.Wait()
	})
	if got := h.reply(t); got != "ready" {
		t.Fatalf("peer process: %s, want ready", got)
	}
	return h
}

func (h *peer) send(t *testing.T, line string) {
	t.Helper()
	if _, err := fmt.Fprintln(h.stdin, line); err != nil {
		t.Fatalf("writing to peer process: %v", err)
	}
}

func (h *peer) reply(t *testing.T) string {
	t.Helper()
	select {
	case l, ok := <-h.lines:
		if !ok {
			t.Fatal("peer process exited")
		}
		return l
	case <-time.After(deadline):
		t.Fatalf("peer process silent for %s", deadline)
	}
	return ""
}

func (h *peer) call(t *testing.T, line string) string {
	t.Helper()
	h.send(t, line)
	return h.reply(t)
}

// kill SIGKILLs the peer and reaps it, so its locks and connections are gone.
func (h *peer) kill(t *testing.T) {
	t.Helper()
	if err := h.cmd.Process.Kill(); err != nil {
		t.Fatalf("killing peer process: %v", err)
	}
	_ = h.cmd.Wait()
}

// peerMain opens a session from the environment and runs commands read from stdin, one reply
// line each: "initialize", "leader NAME", "member NAME". End of input closes the session.
func peerMain() int {
	ctx := context.Background()
	var s dcs.Store
	var err error
	switch os.Getenv(backendVar) {
	case "file":
		s, err = dcs.OpenFile(ctx, dcs.FileConfig{Path: os.Getenv(pathVar)}, os.Getenv(scopeVar), nil)
	case "etcd":
		ttl, _ := time.ParseDuration(os.Getenv(ttlVar))
		cfg := dcs.EtcdConfig{Endpoints: strings.Split(os.Getenv(endpointsVar), ","), TTL: ttl}
		s, err = dcs.OpenEtcd(ctx, cfg, os.Getenv(scopeVar), nil)
	default:
		err = fmt.Errorf("unknown backend %q", os.Getenv(backendVar))
	}
	if err != nil {
		fmt.Println("error:", err)
		return 2
	}
	defer s.Close()
	fmt.Println("ready")
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		cmd, arg, _ := strings.Cut(sc.Text(), " ")
		switch cmd {
		case "initialize":
			won, err := s.TryInitialize(ctx)
			fmt.Println(outcome(won, err))
		case "leader":
			held, err := s.AcquireLeader(ctx, arg)
			fmt.Println(outcome(held, err))
		case "member":
			err := s.PutMember(ctx, dcs.Member{Name: arg, ConnURL: "postgres://127.0.0.1:5432/postgres", State: dcs.StateRunning, Role: dcs.RoleReplica})
			fmt.Println(outcome(err == nil, err))
		default:
			fmt.Println("error: unknown command", cmd)
		}
	}
	return 0
}

// TestCompareAndSwap: a permanent key is created only while absent, replaced only while it
// holds the expected value, deleted the same way; of two writers that read the same value, one
// wins, and the loser wrote nothing.
func TestCompareAndSwap(t *testing.T) {
	const key = dcs.KeyPrefix + "switchover"
	forEachBackend(t, func(t *testing.T, _ backend, e env) {
		a, b := e.open(t), e.open(t)
		swap := func(s dcs.Store, old, new string, nilOld, nilNew bool) bool {
			t.Helper()
			var o, n []byte
			if !nilOld {
				o = []byte(old)
			}
			if !nilNew {
				n = []byte(new)
			}
			ok, err := s.CompareAndSwap(t.Context(), key, o, n)
			if err != nil {
				t.Fatalf("CompareAndSwap(%q, %q): %v", old, new, err)
			}
			return ok
		}
		value := func() string {
			t.Helper()
			v, ok, err := b.Get(t.Context(), key)
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				return "<absent>"
			}
			return string(v)
		}
		if !swap(a, "", "first", true, false) {
			t.Fatal("creating an absent key failed")
		}
		if swap(b, "", "second", true, false) {
			t.Error("a second create of the same key succeeded")
		}
		if got := value(); got != "first" {
			t.Fatalf("after two creates the key holds %q, want the first writer's", got)
		}
		if swap(b, "stale", "second", false, false) {
			t.Error("a swap from a value the key does not hold succeeded")
		}
		if !swap(b, "first", "second", false, false) || value() != "second" {
			t.Fatalf("a swap from the value the key holds: key holds %q", value())
		}
		if swap(a, "first", "", false, true) || value() != "second" {
			t.Fatalf("a delete from a stale value took effect: key holds %q", value())
		}
		if !swap(a, "second", "", false, true) || value() != "<absent>" {
			t.Fatalf("a delete from the value the key holds: key holds %q", value())
		}
	})
}

func TestHistory(t *testing.T) {
	at := time.Date(2026, 12, 6, 20, 15, 4, 123456000, time.UTC)
	first := dcs.TimelineSwitch{Timeline: 2, LSN: 50331744, Reason: "switchover", Time: at, OldLeader: "n1", NewLeader: "n2"}
	second := dcs.TimelineSwitch{Timeline: 3, LSN: 83886240, Reason: "failover", Time: at.Add(time.Hour), OldLeader: "n2", NewLeader: "n1"}
	forEachBackend(t, func(t *testing.T, b backend, e env) {
		s := e.open(t)
		h, err := s.History(t.Context())
		if err != nil {
			t.Fatalf("History: %v", err)
		}
		if len(h.Switches) != 0 || h.Timeline() != 0 {
			t.Fatalf("a new cluster's history: %+v, want none", h.Switches)
		}
		if err := s.AppendTimelineSwitch(t.Context(), h, first); err != nil {
			t.Fatalf("AppendTimelineSwitch(first): %v", err)
		}
		// A writer that read the history before the first switch loses.
		err = e.open(t).AppendTimelineSwitch(t.Context(), h, dcs.TimelineSwitch{Timeline: 2, LSN: 1, NewLeader: "n3"})
		if !errors.Is(err, dcs.ErrHistoryChanged) {
			t.Errorf("append over a stale history: %v, want ErrHistoryChanged", err)
		}
		// The next switch is appended from the history a cluster read carries, by another session.
		other := e.open(t)
		c := cluster(t, other)
		if !reflect.DeepEqual(c.History.Switches, []dcs.TimelineSwitch{first}) {
			t.Fatalf("Cluster().History after the first switch:\n got %+v\nwant %+v", c.History.Switches, first)
		}
		for _, bad := range []dcs.TimelineSwitch{
			{Timeline: 2, LSN: 60000000, NewLeader: "n1"},  // not a new timeline
			{Timeline: 3, LSN: 50331743, NewLeader: "n1"},  // switch point before the last one
			{Timeline: 3, LSN: 83886240, NewLeader: "a/b"}, // not a member name
		} {
			if err := other.AppendTimelineSwitch(t.Context(), c.History, bad); err == nil || errors.Is(err, dcs.ErrHistoryChanged) {
				t.Errorf("append %+v after %+v: %v, want it refused", bad, first, err)
			}
		}
		if err := other.AppendTimelineSwitch(t.Context(), c.History, second); err != nil {
			t.Fatalf("AppendTimelineSwitch(second): %v", err)
		}
		h, err = s.History(t.Context())
		if err != nil {
			t.Fatalf("History: %v", err)
		}
		if want := []dcs.TimelineSwitch{first, second}; !reflect.DeepEqual(h.Switches, want) {
			t.Errorf("history:\n got %+v\nwant %+v", h.Switches, want)
		}
		if h.Timeline() != 3 {
			t.Errorf("Timeline() = %d, want 3", h.Timeline())
		}
		if got := cluster(t, s).History.Switches; !reflect.DeepEqual(got, h.Switches) {
			t.Errorf("Cluster().History %+v, History() %+v", got, h.Switches)
		}
	})
}

// TestHistoryRace: writers that read the same history and append at once: one wins, the others
// are told the history changed, and after reading it again see the winner's switch.
func TestHistoryRace(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend, e env) {
		const writers = 6
		stores := make([]dcs.Store, writers)
		for i := range stores {
			stores[i] = e.open(t)
		}
		h, err := stores[0].History(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		results := make([]error, writers)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i, s := range stores {
			wg.Go(func() {
				<-start
				results[i] = s.AppendTimelineSwitch(t.Context(), h, dcs.TimelineSwitch{Timeline: 2, LSN: 1000, NewLeader: fmt.Sprintf("n%d", i)})
			})
		}
		close(start)
		wg.Wait()
		winner := -1
		for i, err := range results {
			switch {
			case err == nil && winner >= 0:
				t.Errorf("writers %d and %d both appended", winner, i)
			case err == nil:
				winner = i
			case !errors.Is(err, dcs.ErrHistoryChanged):
				t.Errorf("writer %d: %v, want ErrHistoryChanged", i, err)
			}
		}
		if winner < 0 {
			t.Fatalf("no writer appended: %v", results)
		}
		for i, s := range stores {
			h, err := s.History(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if len(h.Switches) != 1 || h.Switches[0].NewLeader != fmt.Sprintf("n%d", winner) {
				t.Errorf("writer %d reads %+v, want the one switch of n%d", i, h.Switches, winner)
			}
		}
	})
}
