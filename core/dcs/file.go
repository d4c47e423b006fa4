package dcs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
)

// FileConfig configures the file backend: the embedded store for the members of one host.
//
// Keys are files under Path/<namespace>/<scope>/ (Path/service/<scope>/ by default). Each file holds the owning session's id on its
// first line (empty for the permanent initialize) and the value after it. A session is a file
// .sessions/<id>.lock that its process keeps locked (flock) while it lives; a key whose session
// lock is not held is absent, whatever its file says, and the next writer removes it. So the keys
// of a process that dies, even by SIGKILL, vanish at once. Every change is made under the lock of
// the file .lock, which serializes processes and stores within one process alike.
type FileConfig struct {
	// Path is the directory that holds the store. It and the directories below are created 0700.
	Path string
	// Namespace is the directory under Path that holds every scope's keys, as in Patroni's
	// key layout; default "/service". It is cleaned as an absolute path, so it never leaves Path.
	Namespace string
}

const (
	fileInitialize   = "initialize"
	fileLeader       = "leader"
	fileMembersDir   = "members"
	fileSessionsDir  = ".sessions"
	fileLockName     = ".lock"
	fileTempPrefix   = ".tmp-"
	fileSessionExt   = ".lock"
	filePollInterval = 50 * time.Millisecond
	fileCloseTimeout = 10 * time.Second
)

// OpenFile opens a session on scope in the file store at cfg.Path. Nothing is bound to the session
// before the first call that writes a session-bound key.
func OpenFile(ctx context.Context, cfg FileConfig, scope string, logger hclog.Logger) (Store, error) {
	if err := validName("scope", scope); err != nil {
		return nil, fmt.Errorf("while opening the file DCS: %w", err)
	}
	if cfg.Path == "" {
		return nil, errors.New("while opening the file DCS: path is empty")
	}
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	ns := cfg.Namespace
	if ns == "" {
		ns = DefaultNamespace
	}
	root := filepath.Join(cfg.Path, path.Clean("/"+ns), scope)
	owner := ownerOf(root)
	for _, d := range []string{root, filepath.Join(root, fileMembersDir), filepath.Join(root, fileSessionsDir)} {
		if err := owner.mkdirAll(d); err != nil {
			return nil, fmt.Errorf("while creating file DCS directory %q: %w", d, err)
		}
	}
	s := &fileStore{
		root:       root,
		owner:      owner,
		log:        logger.With("dcs", "file", "scope", scope),
		lostSignal: lostSignal{ch: make(chan struct{})},
		done:       make(chan struct{}),
	}
	err := s.withLock(ctx, s.sweep)
	switch {
	case errors.Is(err, fs.ErrPermission):
		// A reader without write access (pgimaged status as another user) can still read.
		s.log.Debug("file DCS is read-only for this user", "error", err)
	case err != nil:
		return nil, fmt.Errorf("while opening file DCS %q: %w", root, err)
	}
	return s, nil
}

type fileStore struct {
	root  string // <path>/service/<scope>
	owner fileOwner
	log   hclog.Logger

	mu         sync.Mutex
	sess       *fileSession // nil until a key is first bound to this store
	closed     bool
	lostSignal               // closed when the session's lock file is removed or the store closed
	done       chan struct{} // closed by Close; stops watchers
}

type fileSession struct {
	id   string
	path string
	lock *os.File // holds LOCK_EX for the life of the session
}

// fileRecord is the content of a key file.
type fileRecord struct {
	session string // "" for a permanent key
	value   string
}

var _ Store = (*fileStore)(nil)

func (s *fileStore) path(key string) string { return filepath.Join(s.root, key) }

func (s *fileStore) memberPath(name string) string {
	return filepath.Join(s.root, fileMembersDir, name)
}

func (s *fileStore) sessionPath(id string) string {
	return filepath.Join(s.root, fileSessionsDir, id+fileSessionExt)
}

// withLock runs fn while holding the store's directory lock.
func (s *fileStore) withLock(ctx context.Context, fn func() error) error {
	f, err := lockExclusive(ctx, s.path(fileLockName))
	if err != nil {
		return err
	}
	defer f.Close()
	if err := s.owner.chown(f); err != nil {
		return err
	}
	return fn()
}

// lockExclusive opens path and takes an exclusive flock on it, polling so ctx can end the wait.
func lockExclusive(ctx context.Context, path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("while opening lock file: %w", err)
	}
	delay := time.Millisecond
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("while locking %q: %w", path, err)
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			f.Close()
			return nil, fmt.Errorf("while waiting for lock %q: %w", path, ctx.Err())
		case <-t.C:
		}
		delay = min(2*delay, 20*time.Millisecond)
	}
}

// sessionAlive reports whether the process owning session id still holds its lock.
func (s *fileStore) sessionAlive(id string) (bool, error) {
	if !validSessionID(id) {
		return false, nil
	}
	f, err := os.Open(s.sessionPath(id))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("while checking session %s: %w", id, err)
	}
	defer f.Close()
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB)
	switch {
	case err == nil:
		return false, nil // nobody holds it; closing f drops our shared lock
	case errors.Is(err, syscall.EWOULDBLOCK):
		return true, nil
	default:
		return false, fmt.Errorf("while checking session %s: %w", id, err)
	}
}

func validSessionID(id string) bool {
	if len(id) != 32 {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil
}

func readRecord(path string) (fileRecord, bool, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fileRecord{}, false, nil
	}
	if err != nil {
		return fileRecord{}, false, fmt.Errorf("while reading %q: %w", path, err)
	}
	session, value, ok := strings.Cut(string(b), "\n")
	if !ok {
		return fileRecord{}, false, fmt.Errorf("while reading %q: no session line", path)
	}
	return fileRecord{session: session, value: value}, true, nil
}

// lookup reads a key. present is false when the file is missing or its session is dead; with tidy
// (the directory lock held) a dead key's file is removed.
func (s *fileStore) lookup(path string, tidy bool) (rec fileRecord, present bool, err error) {
	rec, ok, err := readRecord(path)
	if err != nil || !ok {
		return rec, false, err
	}
	if rec.session == "" {
		return rec, true, nil
	}
	alive, err := s.sessionAlive(rec.session)
	if err != nil || alive {
		return rec, alive, err
	}
	if tidy {
		s.log.Debug("removing key of a dead session", "key", s.keyName(path), "session", rec.session)
		if err := removeFile(path); err != nil {
			return rec, false, err
		}
		if validSessionID(rec.session) {
			if err := removeFile(s.sessionPath(rec.session)); err != nil {
				s.log.Warn("cannot remove lock file of a dead session", "error", err)
			}
		}
	}
	return rec, false, nil
}

func (s *fileStore) keyName(path string) string {
	rel, err := filepath.Rel(s.root, path)
	if err != nil {
		return path
	}
	return filepath.ToSlash(rel)
}

// fileOwner is who the files and directories a store creates belong to. A process running as
// root (an operator's `pgimaged switchover`, `pause` or `failover` with sudo) gives them to the
// owner of the store's directory, the nearest of root's directories that exists, when that is
// another user: the agents, running as the PostgreSQL OS user, must read and replace every key,
// and a change key only root could read stopped every agent's cycle. Anyone else creates files
// as themselves (set is false).
type fileOwner struct {
	uid, gid int
	set      bool
}

// ownerOf is the fileOwner of a store in dir.
func ownerOf(dir string) fileOwner {
	if os.Geteuid() != 0 {
		return fileOwner{}
	}
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if fi, err := os.Stat(d); err == nil {
			st, ok := fi.Sys().(*syscall.Stat_t)
			if !ok || st.Uid == 0 {
				return fileOwner{}
			}
			return fileOwner{uid: int(st.Uid), gid: int(st.Gid), set: true}
		}
		if d == filepath.Dir(d) {
			return fileOwner{}
		}
	}
}

// chown gives f to the owner, when there is one to give it to.
func (o fileOwner) chown(f *os.File) error {
	if !o.set {
		return nil
	}
	if err := f.Chown(o.uid, o.gid); err != nil {
		return fmt.Errorf("while giving %q to uid %d: %w", f.Name(), o.uid, err)
	}
	return nil
}

// mkdirAll is os.MkdirAll(dir, 0o700), the directories it creates given to the owner.
func (o fileOwner) mkdirAll(dir string) error {
	var missing []string
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if _, err := os.Lstat(d); err == nil || d == filepath.Dir(d) {
			break
		}
		missing = append(missing, d)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if !o.set {
		return nil
	}
	for i := len(missing) - 1; i >= 0; i-- {
		if err := os.Lchown(missing[i], o.uid, o.gid); err != nil {
			return fmt.Errorf("while giving %q to uid %d: %w", missing[i], o.uid, err)
		}
	}
	return nil
}

func removeFile(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("while removing %q: %w", path, err)
	}
	return nil
}

// writeRecord writes rec into path atomically (a temporary file renamed or, when exclusive, linked
// into place). exclusive reports false when path exists already. durable syncs file and directory.
func (s *fileStore) writeRecord(path string, rec fileRecord, exclusive, durable bool) (bool, error) {
	tmp, err := os.CreateTemp(s.root, fileTempPrefix+"*")
	if err != nil {
		return false, fmt.Errorf("while writing key %s: %w", s.keyName(path), err)
	}
	defer os.Remove(tmp.Name())
	err = s.owner.chown(tmp)
	if err == nil {
		_, err = tmp.WriteString(rec.session + "\n" + rec.value)
	}
	if err == nil && durable {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return false, fmt.Errorf("while writing key %s: %w", s.keyName(path), err)
	}
	if exclusive {
		err = os.Link(tmp.Name(), path)
		if errors.Is(err, fs.ErrExist) {
			return false, nil
		}
	} else {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return false, fmt.Errorf("while writing key %s: %w", s.keyName(path), err)
	}
	if durable {
		if err := syncDir(filepath.Dir(path)); err != nil {
			return false, fmt.Errorf("while writing key %s: %w", s.keyName(path), err)
		}
	}
	return true, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// sweep removes temporary files and the lock files of dead sessions. The directory lock is held.
func (s *fileStore) sweep() error {
	for _, dir := range []string{s.root, filepath.Join(s.root, fileSessionsDir)} {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return fmt.Errorf("while reading %q: %w", dir, err)
		}
		for _, e := range entries {
			name := e.Name()
			switch {
			case strings.HasPrefix(name, fileTempPrefix):
			case dir != s.root && strings.HasSuffix(name, fileSessionExt):
				alive, err := s.sessionAlive(strings.TrimSuffix(name, fileSessionExt))
				if err != nil || alive {
					continue
				}
			default:
				continue
			}
			if err := removeFile(filepath.Join(dir, name)); err != nil {
				return err
			}
		}
	}
	return nil
}

// sessionMode says what an operation needs from the session.
type sessionMode int

const (
	sessionOptional sessionMode = iota // use it if there is one and it is intact
	sessionExisting                    // there must be one: none is ErrNotHeld
	sessionCreate                      // create one if needed
)

// session returns this store's session according to mode. The directory lock is held.
func (s *fileStore) session(mode sessionMode) (*fileSession, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	if s.sess != nil {
		if !s.intactLocked() {
			if mode == sessionOptional {
				return nil, nil
			}
			return nil, ErrSessionLost
		}
		return s.sess, nil
	}
	switch mode {
	case sessionOptional:
		return nil, nil
	case sessionExisting:
		return nil, ErrNotHeld
	}
	sess, err := s.newSession()
	if err != nil {
		return nil, err
	}
	s.sess = sess
	s.log.Debug("session started", "session", sess.id)
	return sess, nil
}

// newSession creates and locks a session lock file. It is locked before it gets its name, so no
// reader ever sees it unlocked while its process lives.
func (s *fileStore) newSession() (*fileSession, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("while creating a session id: %w", err)
	}
	id := hex.EncodeToString(b[:])
	path := s.sessionPath(id)
	tmpPath := filepath.Join(s.root, fileSessionsDir, fileTempPrefix+id)
	f, err := os.OpenFile(tmpPath, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("while creating session lock file: %w", err)
	}
	fail := func(err error) (*fileSession, error) {
		f.Close()
		os.Remove(tmpPath)
		return nil, fmt.Errorf("while creating session lock file %q: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return fail(err)
	}
	if err := s.owner.chown(f); err != nil {
		return fail(err)
	}
	host, _ := os.Hostname()
	if _, err := fmt.Fprintf(f, "pid=%d\nhost=%s\nstarted=%s\n", os.Getpid(), host, time.Now().UTC().Format(time.RFC3339)); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmpPath, path); err != nil {
		return fail(err)
	}
	return &fileSession{id: id, path: path, lock: f}, nil
}

// intactLocked reports whether the session's lock file is still the one this store holds. s.mu is
// held. A session whose lock file was removed is lost: others already treat its keys as absent.
func (s *fileStore) intactLocked() bool {
	if s.sess == nil || s.isLost() {
		return false
	}
	held, err1 := s.sess.lock.Stat()
	named, err2 := os.Stat(s.sess.path)
	if err1 == nil && err2 == nil && os.SameFile(held, named) {
		return true
	}
	s.log.Warn("session lost: its lock file was removed", "session", s.sess.id, "path", s.sess.path)
	s.markLost()
	return false
}

// mutate runs fn under the directory lock with this store's session.
func (s *fileStore) mutate(ctx context.Context, what string, mode sessionMode, fn func(*fileSession) error) error {
	err := s.withLock(ctx, func() error {
		sess, err := s.session(mode)
		if err != nil {
			return err
		}
		return fn(sess)
	})
	if err != nil {
		return fmt.Errorf("while %s: %w", what, err)
	}
	return nil
}

// Cluster reads the scope. Keys of dead sessions are absent, and removed when this user may write.
func (s *fileStore) Cluster(ctx context.Context) (Cluster, error) {
	if s.isClosed() {
		return Cluster{}, fmt.Errorf("while reading the cluster: %w", ErrClosed)
	}
	var c Cluster
	err := s.withLock(ctx, func() error {
		var err error
		c, _, err = s.load(true, true)
		return err
	})
	if errors.Is(err, fs.ErrPermission) {
		c, _, err = s.load(false, true)
	}
	if err != nil {
		return Cluster{}, fmt.Errorf("while reading the cluster from %q: %w", s.root, err)
	}
	return c, nil
}

// load reads the scope and a fingerprint of what it read, for change detection.
func (s *fileStore) load(tidy, logBad bool) (Cluster, string, error) {
	var c Cluster
	var fp strings.Builder
	rec, ok, err := s.lookup(s.path(fileInitialize), tidy)
	if err != nil {
		return c, "", err
	}
	if ok {
		v := rec.value
		c.Initialize = &v
		fmt.Fprintf(&fp, "i=%q\n", v)
	}
	rec, ok, err = s.lookup(s.path(fileLeader), tidy)
	if err != nil {
		return c, "", err
	}
	if ok {
		c.Leader = rec.value
		fmt.Fprintf(&fp, "l=%q\n", rec.value)
	}
	if c.History, err = s.readHistory(); err != nil {
		return c, "", err
	}
	fmt.Fprintf(&fp, "h=%q\n", c.History.value)
	if rec, ok, err := readRecord(s.path(SyncKey)); err != nil {
		return c, "", err
	} else if ok {
		c.Sync = ParseSync([]byte(rec.value))
		fmt.Fprintf(&fp, "s=%q\n", rec.value)
	}
	dir := filepath.Join(s.root, fileMembersDir)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return c, "", fmt.Errorf("while reading %q: %w", dir, err)
	}
	for _, e := range entries { // sorted by name
		if !e.Type().IsRegular() {
			continue
		}
		rec, ok, err := s.lookup(filepath.Join(dir, e.Name()), tidy)
		if err != nil {
			return c, "", err
		}
		if !ok {
			continue
		}
		m, err := parseMember(e.Name(), []byte(rec.value))
		if err != nil && logBad {
			s.log.Warn("unreadable member", "member", e.Name(), "error", err)
		}
		c.Members = append(c.Members, m)
		fmt.Fprintf(&fp, "m=%q %q\n", e.Name(), rec.value)
	}
	return c, fp.String(), nil
}

func (s *fileStore) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// TryInitialize creates the empty initialize bound to this session unless the key is present.
func (s *fileStore) TryInitialize(ctx context.Context) (bool, error) {
	won := false
	err := s.mutate(ctx, "racing for the initialize key", sessionCreate, func(sess *fileSession) error {
		path := s.path(fileInitialize)
		rec, present, err := s.lookup(path, true)
		if err != nil {
			return err
		}
		if present {
			won = rec.session == sess.id && rec.value == ""
			return nil
		}
		won, err = s.writeRecord(path, fileRecord{session: sess.id}, true, false)
		return err
	})
	if err != nil {
		return false, err
	}
	if won {
		s.log.Debug("holding the initialize key")
	}
	return won, nil
}

// SetInitialize makes initialize the permanent system identifier.
func (s *fileStore) SetInitialize(ctx context.Context, sysid string) error {
	if err := validSystemIdentifier(sysid); err != nil {
		return fmt.Errorf("while writing the system identifier into initialize: %w", err)
	}
	return s.mutate(ctx, "writing the system identifier into initialize", sessionExisting, func(sess *fileSession) error {
		path := s.path(fileInitialize)
		rec, present, err := s.lookup(path, true)
		if err != nil {
			return err
		}
		if !present || rec.value != "" || rec.session != sess.id {
			return ErrNotHeld
		}
		_, err = s.writeRecord(path, fileRecord{value: sysid}, false, true)
		return err
	})
}

// ReleaseInitialize removes the empty initialize this session holds.
func (s *fileStore) ReleaseInitialize(ctx context.Context) error {
	return s.mutate(ctx, "releasing the initialize key", sessionOptional, func(sess *fileSession) error {
		if sess == nil {
			return nil
		}
		path := s.path(fileInitialize)
		rec, present, err := s.lookup(path, true)
		if err != nil || !present || rec.value != "" || rec.session != sess.id {
			return err
		}
		return removeFile(path)
	})
}

// AcquireLeader takes the leader key for name unless another session holds it.
func (s *fileStore) AcquireLeader(ctx context.Context, name string) (bool, error) {
	if err := validName("member", name); err != nil {
		return false, fmt.Errorf("while acquiring the leader key: %w", err)
	}
	held := false
	err := s.mutate(ctx, "acquiring the leader key", sessionCreate, func(sess *fileSession) error {
		path := s.path(fileLeader)
		rec, present, err := s.lookup(path, true)
		switch {
		case err != nil:
			return err
		case present && rec.session != sess.id && rec.value != name:
			return nil
		case present && rec.session != sess.id:
			// The key names this member under an earlier session: it is this member's.
			held, err = s.writeRecord(path, fileRecord{session: sess.id, value: name}, false, false)
			return err
		case present && rec.value == name:
			held = true
			return nil
		case present:
			held, err = s.writeRecord(path, fileRecord{session: sess.id, value: name}, false, false)
			return err
		}
		held, err = s.writeRecord(path, fileRecord{session: sess.id, value: name}, true, false)
		return err
	})
	return held && err == nil, err
}

// ReleaseLeader removes the leader key if this session holds it.
func (s *fileStore) ReleaseLeader(ctx context.Context) error {
	return s.mutate(ctx, "releasing the leader key", sessionOptional, func(sess *fileSession) error {
		if sess == nil {
			return nil
		}
		path := s.path(fileLeader)
		rec, present, err := s.lookup(path, true)
		if err != nil || !present || rec.session != sess.id {
			return err
		}
		return removeFile(path)
	})
}

// PutMember publishes m bound to this session.
func (s *fileStore) PutMember(ctx context.Context, m Member) error {
	what := fmt.Sprintf("publishing member %q", m.Name)
	if err := validName("member", m.Name); err != nil {
		return fmt.Errorf("while %s: %w", what, err)
	}
	value, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("while %s: %w", what, err)
	}
	return s.mutate(ctx, what, sessionCreate, func(sess *fileSession) error {
		path := s.memberPath(m.Name)
		rec, present, err := s.lookup(path, true)
		if err != nil {
			return err
		}
		if present && rec.session != sess.id {
			s.log.Warn("taking over a member key held by another session", "member", m.Name, "session", rec.session)
		}
		_, err = s.writeRecord(path, fileRecord{session: sess.id, value: string(value)}, false, false)
		return err
	})
}

// DeleteMember removes members/<name> if this session holds it.
func (s *fileStore) DeleteMember(ctx context.Context, name string) error {
	what := fmt.Sprintf("deleting member %q", name)
	if err := validName("member", name); err != nil {
		return fmt.Errorf("while %s: %w", what, err)
	}
	return s.mutate(ctx, what, sessionOptional, func(sess *fileSession) error {
		path := s.memberPath(name)
		rec, present, err := s.lookup(path, true)
		switch {
		case err != nil || !present:
			return err
		case sess == nil || rec.session != sess.id:
			return ErrNotHeld
		}
		return removeFile(path)
	})
}

// Watch polls the scope every 50 ms and signals when what a reader would see has changed.
func (s *fileStore) Watch(ctx context.Context) <-chan struct{} {
	ch := make(chan struct{}, 1)
	if s.isClosed() {
		close(ch)
		return ch
	}
	fingerprint := func() string {
		_, fp, err := s.load(false, false)
		if err != nil {
			return "error: " + err.Error()
		}
		return fp
	}
	base := fingerprint()
	go func() {
		defer close(ch)
		t := time.NewTicker(filePollInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-s.done:
				return
			case <-t.C:
			}
			s.mu.Lock()
			if s.sess != nil && !s.closed {
				s.intactLocked()
			}
			s.mu.Unlock()
			if fp := fingerprint(); fp != base {
				base = fp
				select {
				case ch <- struct{}{}:
				default:
				}
			}
		}
	}()
	return ch
}

// Close removes this session's keys and releases its lock.
func (s *fileStore) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	sess := s.sess
	s.mu.Unlock()
	close(s.done)
	defer s.markLost()
	if sess == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), fileCloseTimeout)
	defer cancel()
	err := s.withLock(ctx, func() error { return s.dropKeys(sess) })
	// Without the directory lock the keys still vanish: nobody holds the session lock any more.
	if rerr := removeFile(sess.path); err == nil {
		err = rerr
	}
	if cerr := sess.lock.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("while closing file DCS session %s: %w", sess.id, err)
	}
	s.log.Debug("session closed", "session", sess.id)
	return nil
}

// dropKeys removes the files of the keys bound to sess. The directory lock is held.
func (s *fileStore) dropKeys(sess *fileSession) error {
	paths := []string{s.path(fileInitialize), s.path(fileLeader)}
	dir := filepath.Join(s.root, fileMembersDir)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("while reading %q: %w", dir, err)
	}
	for _, e := range entries {
		paths = append(paths, filepath.Join(dir, e.Name()))
	}
	for _, p := range paths {
		rec, ok, err := readRecord(p)
		if err == nil && ok && rec.session == sess.id {
			if err := removeFile(p); err != nil {
				return err
			}
		}
	}
	return nil
}
