package dcs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
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
	// HistoryKeyDir holds each member's bootstrap and clone attempts: history/<member>.
	HistoryKeyDir = KeyPrefix + "history/"
)

// validKey checks a permanent key: a relative path under [KeyPrefix] whose elements are valid
// names.
func validKey(key string) error {
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
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
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

// Put writes a permanent key.
func (s *MemorySession) Put(_ context.Context, key string, value []byte) error {
	if err := validKey(key); err != nil {
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
func (s *MemorySession) Get(_ context.Context, key string) ([]byte, bool, error) {
	var v []byte
	var ok bool
	err := s.op("Get", opRead, func() error { v, ok = s.mem.keys[key]; return nil })
	return v, ok, err
}

// Delete removes a permanent key.
func (s *MemorySession) Delete(_ context.Context, key string) error {
	return s.op("Delete", opRelease, func() error { delete(s.mem.keys, key); return nil })
}
