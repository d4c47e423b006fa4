package dcs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Lister is a [Store] that lists pgimaged's permanent keys; the file and etcd stores (and any
// other backend built on this package's rules) are Listers. Callers find it by assertion.
type Lister interface {
	// List returns the names of the permanent keys directly under dir (a path under
	// [KeyPrefix], without a trailing slash), sorted.
	List(ctx context.Context, dir string) ([]string, error)
}

var (
	_ Lister = (*fileStore)(nil)
	_ Lister = (*etcdStore)(nil)
)

// List returns the names of the permanent keys directly under dir.
func (s *fileStore) List(ctx context.Context, dir string) ([]string, error) {
	what := fmt.Sprintf("listing keys under %s", dir)
	if err := validKey(dir); err != nil {
		return nil, fmt.Errorf("while %s: %w", what, err)
	}
	if s.isClosed() {
		return nil, fmt.Errorf("while %s: %w", what, ErrClosed)
	}
	entries, err := os.ReadDir(s.path(filepath.FromSlash(dir)))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("while %s: %w", what, err)
	}
	var names []string
	for _, e := range entries {
		if e.Type().IsRegular() && validName("key element", e.Name()) == nil && !strings.HasPrefix(e.Name(), ".") {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

// List returns the names of the permanent keys directly under dir.
func (s *etcdStore) List(ctx context.Context, dir string) ([]string, error) {
	var resp *clientv3.GetResponse
	err := s.onKey(ctx, "listing keys under "+dir, dir, func(ctx context.Context, cli *clientv3.Client, k string) (err error) {
		resp, err = cli.Get(ctx, k+"/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
		return err
	})
	if err != nil {
		return nil, err
	}
	var names []string
	for _, kv := range resp.Kvs {
		name := strings.TrimPrefix(string(kv.Key), s.key(dir)+"/")
		if name != "" && !strings.Contains(name, "/") {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names, nil
}

// ValidMemberName checks a member name as the DCS's keys take it (what a command line names).
func ValidMemberName(name string) error { return validName("member", name) }
