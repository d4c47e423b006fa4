package dcs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// KeyPrefix is where pgimaged keeps its own permanent keys under a scope, apart from Patroni's.
const KeyPrefix = "pgimaged/"

// Keys of pgimaged's own under the scope.
const (
	// ReinitKeyDir holds one reinit request per member: reinit/<member>.
	ReinitKeyDir = KeyPrefix + "reinit/"
	// RestartKeyDir holds one restart request per member: restart/<member>.
	RestartKeyDir = KeyPrefix + "restart/"
	// HistoryKeyDir holds each member's bootstrap and clone attempts: history/<member>.
	HistoryKeyDir = KeyPrefix + "history/"
)

// validKey checks a permanent key: a relative path under [KeyPrefix] whose elements are valid
// names, or Patroni's [SyncKey], [ConfigKey] or [FailoverKey].
func validKey(key string) error {
	if key == SyncKey || key == ConfigKey || key == FailoverKey {
		return nil // Patroni's: the sync key, written by compare-and-swap, the config key, and the failover key
	}
	if !strings.HasPrefix(key, KeyPrefix) {
		return fmt.Errorf("key %q is not under %s", key, KeyPrefix)
	}
	for _, el := range strings.Split(key, "/") {
		if err := validName("key element", el); err != nil {
			return err
		}
	}
	return nil
}

// Put writes a permanent key, one not bound to a session (it outlives its writer); key is a
// path under [KeyPrefix].
func (s *fileStore) Put(ctx context.Context, key string, value []byte) error {
	what := fmt.Sprintf("writing key %s", key)
	if err := validKey(key); err != nil {
		return fmt.Errorf("while %s: %w", what, err)
	}
	return s.mutate(ctx, what, sessionOptional, func(*fileSession) error {
		path := s.path(filepath.FromSlash(key))
		if err := s.owner.mkdirAll(filepath.Dir(path)); err != nil {
			return err
		}
		_, err := s.writeRecord(path, fileRecord{value: string(value)}, false, true)
		return err
	})
}

// Get reads a permanent key; false when it is absent.
func (s *fileStore) Get(ctx context.Context, key string) ([]byte, bool, error) {
	what := fmt.Sprintf("reading key %s", key)
	if err := validKey(key); err != nil {
		return nil, false, fmt.Errorf("while %s: %w", what, err)
	}
	if s.isClosed() {
		return nil, false, fmt.Errorf("while %s: %w", what, ErrClosed)
	}
	rec, ok, err := readRecord(s.path(filepath.FromSlash(key)))
	if err != nil {
		return nil, false, fmt.Errorf("while %s: %w", what, err)
	}
	return []byte(rec.value), ok, nil
}

// Delete removes a permanent key; an absent key is not an error.
func (s *fileStore) Delete(ctx context.Context, key string) error {
	what := fmt.Sprintf("deleting key %s", key)
	if err := validKey(key); err != nil {
		return fmt.Errorf("while %s: %w", what, err)
	}
	return s.mutate(ctx, what, sessionOptional, func(*fileSession) error {
		err := removeFile(s.path(filepath.FromSlash(key)))
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	})
}

// Put writes a permanent key (without the session's lease).
func (s *etcdStore) Put(ctx context.Context, key string, value []byte) error {
	return s.onKey(ctx, "writing key "+key, key, func(ctx context.Context, cli *clientv3.Client, k string) error {
		_, err := cli.Put(ctx, k, string(value))
		return err
	})
}

// Get reads a permanent key; false when it is absent.
func (s *etcdStore) Get(ctx context.Context, key string) ([]byte, bool, error) {
	var resp *clientv3.GetResponse
	err := s.onKey(ctx, "reading key "+key, key, func(ctx context.Context, cli *clientv3.Client, k string) (err error) {
		resp, err = cli.Get(ctx, k)
		return err
	})
	if err != nil || len(resp.Kvs) == 0 {
		return nil, false, err
	}
	return resp.Kvs[0].Value, true, nil
}

// Delete removes a permanent key; an absent key is not an error.
func (s *etcdStore) Delete(ctx context.Context, key string) error {
	return s.onKey(ctx, "deleting key "+key, key, func(ctx context.Context, cli *clientv3.Client, k string) error {
		_, err := cli.Delete(ctx, k)
		return err
	})
}

// onKey checks a permanent key and runs fn on it (k is its full etcd key) as [etcdStore.do]
// does; what names the attempt in errors.
func (s *etcdStore) onKey(ctx context.Context, what, key string, fn func(ctx context.Context, cli *clientv3.Client, k string) error) error {
	if err := validKey(key); err != nil {
		return fmt.Errorf("while %s: %w", what, err)
	}
	cli, err := s.client(ctx)
	if err != nil {
		return fmt.Errorf("while %s: %w", what, err)
	}
	return s.do(ctx, what, func(ctx context.Context) error { return fn(ctx, cli, s.key(key)) })
}

// CompareAndSwap replaces a permanent key only if it holds old: old nil means the key must be
// absent (an atomic create), new nil deletes it. false with a nil error: the key held something
// else, and nothing was written.
func (s *fileStore) CompareAndSwap(ctx context.Context, key string, old, new []byte) (bool, error) {
	what := fmt.Sprintf("swapping key %s", key)
	if err := validKey(key); err != nil {
		return false, fmt.Errorf("while %s: %w", what, err)
	}
	swapped := false
	err := s.mutate(ctx, what, sessionOptional, func(*fileSession) error {
		path := s.path(filepath.FromSlash(key))
		rec, ok, err := readRecord(path)
		if err != nil {
			return err
		}
		if !sameValue(ok, []byte(rec.value), old) {
			return nil
		}
		swapped = true
		if new == nil {
			if err := removeFile(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			return nil
		}
		if err := s.owner.mkdirAll(filepath.Dir(path)); err != nil {
			return err
		}
		_, err = s.writeRecord(path, fileRecord{value: string(new)}, false, true)
		return err
	})
	return swapped && err == nil, err
}

// sameValue reports whether a key's state (present holding cur, or absent) is what old expects.
func sameValue(present bool, cur, old []byte) bool {
	if old == nil {
		return !present
	}
	return present && string(cur) == string(old)
}

// CompareAndSwap replaces a permanent key only if it holds old (nil: absent) in one
// transaction; new nil deletes it.
func (s *etcdStore) CompareAndSwap(ctx context.Context, key string, old, new []byte) (bool, error) {
	var resp *clientv3.TxnResponse
	err := s.onKey(ctx, "swapping key "+key, key, func(ctx context.Context, cli *clientv3.Client, k string) (err error) {
		cmp := clientv3.Compare(clientv3.CreateRevision(k), "=", 0)
		if old != nil {
			cmp = clientv3.Compare(clientv3.Value(k), "=", string(old))
		}
		op := clientv3.OpDelete(k)
		if new != nil {
			op = clientv3.OpPut(k, string(new))
		}
		resp, err = cli.Txn(ctx).If(cmp).Then(op).Commit()
		return err
	})
	if err != nil {
		return false, err
	}
	return resp.Succeeded, nil
}
