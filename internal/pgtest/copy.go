package pgtest

import (
	"context"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/pgimaged/pgimaged/core/pg"
)

// StartCopy starts a data directory restored or cloned from p (its recovery settings already
// written) on a free port with archiving off, as p's OS user; it is stopped when the test ends.
func (p *Primary) StartCopy(t testing.TB, dir string) *pg.Server {
	t.Helper()
	return p.StartCopyWithSocket(t, dir, dir)
}

// StartCopyWithSocket is [Primary.StartCopy] with the server's unix socket in socketDir.
func (p *Primary) StartCopyWithSocket(t testing.TB, dir, socketDir string) *pg.Server {
	t.Helper()
	port := FreePort(t)
	err := pg.WriteSettings(dir, pg.Settings{
		Listen:     "127.0.0.1:" + strconv.Itoa(port),
		SocketDir:  socketDir,
		Superuser:  p.Superuser,
		Parameters: map[string]string{"archive_mode": "off", "fsync": "off", "shared_buffers": "16MB", "max_connections": "30"},
	})
	if err != nil {
		t.Fatal(err)
	}
	s := &pg.Server{
		BinDir: p.BinDir, DataDir: dir, SocketDir: socketDir, Port: port,
		User: p.Superuser, Password: p.SuperPass,
		Prepare: func(c *exec.Cmd) { p.OSUser.AsUser(c) },
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := s.Stop(ctx, "immediate"); err != nil {
			t.Errorf("stopping the copy in %s: %v", dir, err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return s
}

// WaitFor polls query on s until it returns want (the first column as text).
func WaitFor(t testing.TB, s *pg.Server, query, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var got string
	var err error
	for {
		c, cerr := s.Connect(ctx)
		if cerr == nil {
			err = c.QueryRow(ctx, "SELECT ("+query+")::text").Scan(&got)
			_ = c.Close(ctx)
			if err == nil && got == want {
				return
			}
		} else {
			err = cerr
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: got %q (%v), want %q", query, got, err, want)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// SwitchAndArchive ends the current WAL segment and waits until p has archived it.
func (p *Primary) SwitchAndArchive(t testing.TB) {
	t.Helper()
	seg := p.QueryString(t, "SELECT pg_walfile_name(pg_switch_wal())")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for {
		last := p.QueryString(t, "SELECT COALESCE(last_archived_wal, '') FROM pg_stat_archiver")
		if last >= seg {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("WAL segment %s was not archived (last archived: %q)", seg, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
