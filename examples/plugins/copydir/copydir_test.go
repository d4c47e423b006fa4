package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgimaged/pgimaged/sdk"
	"github.com/pgimaged/pgimaged/sdk/plugintest"
)

// snapshot builds a small data directory snapshot: the files a real one has at the places they
// have, with random contents, including a postmaster.pid the copy must leave out.
func snapshot(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]int{
		"global/pg_control":               8192,
		"global/1262":                     8192,
		"base/1/1259":                     3 * 8192,
		"base/5/16384":                    6 << 20, // large enough for several progress events
		"pg_wal/000000010000000000000001": 1 << 20,
		"postgresql.auto.conf":            0,
		"postmaster.pid":                  64,
		"postmaster.opts":                 32,
		"pg_replslot/node2/state":         200, // a slot of the source's, which a replica must not inherit
		"pg_stat_tmp/global.stat":         100,
	}
	for name, n := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, n)
		if _, err := rand.Read(b); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"pg_tblspc"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "PG_VERSION"), []byte("15\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

func request(t *testing.T, snap string) sdk.CloneRequest {
	req := sdk.CloneRequest{
		Method:  "snapshot",
		Options: sdk.Options{{Name: "snapshot_dir", Value: snap}},
		Cluster: sdk.Cluster{Scope: "batman", Name: "node2", DataDir: t.TempDir(), ServerVersion: 150010},
	}
	// A call through gRPC gets its Values from sdk.Serve; one made directly decodes them itself.
	req.Values, _ = schema.Decode(req.Options)
	return req
}

// sameTree fails unless dst holds exactly src's files (less the skipped ones) with the same
// contents and permissions.
func sameTree(t *testing.T, src, dst string) {
	t.Helper()
	seen := map[string]bool{}
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		switch rel {
		case "postmaster.pid", "postmaster.opts":
			return nil
		}
		if dir := filepath.Dir(rel); strings.HasPrefix(dir, "pg_replslot") && dir != "." || strings.HasPrefix(dir, "pg_stat_tmp") {
			return nil // the directory is copied, empty
		}
		seen[rel] = true
		got, err := os.Stat(filepath.Join(dst, rel))
		if err != nil {
			t.Errorf("missing from the copy: %s", rel)
			return nil
		}
		want, _ := d.Info()
		if rel != "." && got.Mode() != want.Mode() {
			t.Errorf("%s: mode %v, want %v", rel, got.Mode(), want.Mode())
		}
		if d.Type().IsRegular() {
			a, _ := os.ReadFile(path)
			b, _ := os.ReadFile(filepath.Join(dst, rel))
			if !bytes.Equal(a, b) {
				t.Errorf("%s: contents differ", rel)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if des, err := os.ReadDir(filepath.Join(dst, "pg_replslot")); err != nil || len(des) != 0 {
		t.Errorf("pg_replslot in the copy: %v, %d entries; want it there and empty (the source's slots left out)", err, len(des))
	}
	_ = filepath.WalkDir(dst, func(path string, _ fs.DirEntry, err error) error {
		if rel, _ := filepath.Rel(dst, path); err == nil && !seen[rel] {
			t.Errorf("in the copy but not in the snapshot: %s", rel)
		}
		return nil
	})
}

func TestConformance(t *testing.T) {
	snap := snapshot(t)
	opts := func(o ...sdk.Option) sdk.ValidateRequest {
		return sdk.ValidateRequest{Method: "snapshot", Path: sdk.PathClone, Options: o}
	}
	plugintest.Conformance(t, New(), plugintest.Suite{
		Clone:        func(t *testing.T) sdk.CloneRequest { return request(t, snap) },
		CheckDataDir: func(t *testing.T, dir string) { sameTree(t, snap, dir) },
		ValidOptions: []plugintest.ValidCase{
			{Name: "snapshot_dir", Request: opts(sdk.Option{Name: "snapshot_dir", Value: "/srv/snapshots/batman/latest"})},
		},
		InvalidOptions: []plugintest.InvalidCase{
			{Name: "no snapshot_dir", Option: "snapshot_dir", Request: opts()},
			{Name: "relative snapshot_dir", Option: "snapshot_dir", Request: opts(sdk.Option{Name: "snapshot_dir", Value: "snapshots/latest"})},
			{Name: "snapshot_dir without a value", Option: "snapshot_dir", Request: opts(sdk.Option{Name: "snapshot_dir", Flag: true})},
			{Name: "unknown option", Option: "compress", Request: opts(sdk.Option{Name: "snapshot_dir", Value: "/srv/s"}, sdk.Option{Name: "compress", Value: "on"})},
			{Name: "bootstrap", Request: sdk.ValidateRequest{Method: "snapshot", Path: sdk.PathBootstrap, Options: sdk.Options{{Name: "snapshot_dir", Value: "/srv/s"}}}},
		},
	})
}

func TestProgress(t *testing.T) {
	snap := snapshot(t)
	c := plugintest.Connect(t, New())
	_, rec := plugintest.AssertClone(t, c, request(t, snap))
	total, err := size(snap)
	if err != nil {
		t.Fatal(err)
	}
	events := rec.ProgressEvents()
	if len(events) < 3 {
		t.Fatalf("%d progress events for %d bytes, want at least 3: %+v", len(events), total, events)
	}
	for i, e := range events {
		if e.Phase != "copy" || e.Total != total || (i > 0 && e.Done < events[i-1].Done) {
			t.Errorf("event %d: %+v", i, e)
		}
	}
	if first, last := events[0], events[len(events)-1]; first.Done != 0 || last.Done != total {
		t.Errorf("progress runs from %d to %d, want 0 to %d", first.Done, last.Done, total)
	}
}

func TestRefusedSnapshots(t *testing.T) {
	tests := []struct {
		name    string
		spoil   func(t *testing.T, snap string)
		version int
	}{
		{name: "no pg_control", spoil: func(t *testing.T, snap string) { must(t, os.Remove(filepath.Join(snap, "global", "pg_control"))) }},
		{name: "no PG_VERSION", spoil: func(t *testing.T, snap string) { must(t, os.Remove(filepath.Join(snap, "PG_VERSION"))) }},
		{name: "other major version", version: 160002},
		{name: "tablespace", spoil: func(t *testing.T, snap string) {
			must(t, os.Symlink(t.TempDir(), filepath.Join(snap, "pg_tblspc", "16400")))
		}},
		{name: "does not exist", spoil: func(t *testing.T, snap string) { must(t, os.RemoveAll(snap)) }},
	}
	c := plugintest.Connect(t, New())
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			snap := snapshot(t)
			if tc.spoil != nil {
				tc.spoil(t, snap)
			}
			req := request(t, snap)
			if tc.version != 0 {
				req.Cluster.ServerVersion = tc.version
			}
			_, err := c.Clone(context.Background(), req, nil)
			if !errors.Is(err, sdk.ErrMethodFailed) {
				t.Errorf("Clone returned %v, want sdk.ErrMethodFailed", err)
			}
		})
	}
}

func TestCancelStopsTheCopy(t *testing.T) {
	snap := snapshot(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rep := &cancelOnProgress{cancel: cancel}
	_, err := New().Clone(ctx, request(t, snap), rep)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Clone returned %v, want context.Canceled", err)
	}
	if n := len(rep.ProgressEvents()); n != 1 {
		t.Errorf("%d progress events after the cancel, want the copy to stop at the first", n)
	}
}

// cancelOnProgress cancels the call at the first progress event.
type cancelOnProgress struct {
	plugintest.Recorder
	cancel context.CancelFunc
}

func (r *cancelOnProgress) Progress(p sdk.Progress) {
	r.Recorder.Progress(p)
	r.cancel()
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
