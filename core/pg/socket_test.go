package pg_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pgimaged/pgimaged/core/pg"
	"github.com/pgimaged/pgimaged/internal/pgtest"
	"github.com/pgimaged/pgimaged/internal/testenv"
)

// boundedContext is a context that ends well before the test binary's own timeout, so that a
// wait that never ends fails the test instead of hanging the suite.
func boundedContext(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// userDir is a fresh directory the PostgreSQL OS user owns, at path name below a temporary
// directory.
func userDir(t *testing.T, name string) string {
	t.Helper()
	u := testenv.PostgresUser(t)
	dir := filepath.Join(u.TempDir(t), name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	u.Chown(t, dir)
	return dir
}

// TestServerConnectsWhereUnixSocketDirectoriesSays starts servers with unix_socket_directories
// as users set it, and checks that pgimaged's own connection reaches each of them although the
// Server was told the data directory (pgimaged's default socket directory): what the running
// server wrote into postmaster.pid is where it listens.
func TestServerConnectsWhereUnixSocketDirectoriesSays(t *testing.T) {
	cases := []struct {
		name   string
		listen string // "" is 127.0.0.1
		// value returns unix_socket_directories and the host pgimaged must connect to.
		value func(t *testing.T, p *pgtest.Primary) (setting, host string)
	}{
		{"absolute directory", "", func(t *testing.T, p *pgtest.Primary) (string, string) {
			d := userDir(t, "run-postgresql")
			return d, d
		}},
		{"relative to the data directory", "", func(t *testing.T, p *pgtest.Primary) (string, string) {
			return "..", filepath.Dir(p.DataDir)
		}},
		{"list with a quoted entry", "", func(t *testing.T, p *pgtest.Primary) (string, string) {
			a, b := userDir(t, "first socket dir"), userDir(t, "second")
			return `"` + a + `", ` + b, a
		}},
		{"no unix socket, listen on every address", "*", func(t *testing.T, p *pgtest.Primary) (string, string) {
			return "", "127.0.0.1"
		}},
		{"no unix socket, listen on 0.0.0.0", "0.0.0.0", func(t *testing.T, p *pgtest.Primary) (string, string) {
			return "", "127.0.0.1"
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := pgtest.Initdb(t, pgtest.Options{})
			setting, wantHost := tc.value(t, p)
			listen := tc.listen
			if listen == "" {
				listen = "127.0.0.1"
			}
			err := pg.WriteSettings(p.DataDir, pg.Settings{
				Listen:     listen + ":" + strconv.Itoa(p.Port),
				Parameters: map[string]string{"unix_socket_directories": setting, "shared_buffers": "16MB", "max_connections": "30"},
				Superuser:  p.Superuser,
			})
			if err != nil {
				t.Fatal(err)
			}
			if got := readFile(t, filepath.Join(p.DataDir, pg.SettingsFile)); !strings.Contains(got, "unix_socket_directories = "+pg.QuoteConfValue(setting)+"\n") {
				t.Fatalf("%s does not keep unix_socket_directories = %q:\n%s", pg.SettingsFile, setting, got)
			}
			// What pgimaged's engine used to pass: the data directory and the listen port.
			s := &pg.Server{BinDir: p.BinDir, DataDir: p.DataDir, SocketDir: p.DataDir, Port: p.Port,
				User: p.Superuser, Password: p.SuperPass, Prepare: p.Server.Prepare}
			ctx := boundedContext(t, time.Minute)
			if err := s.Start(ctx); err != nil {
				t.Fatal(err)
			}
			if err := s.WaitReady(ctx); err != nil {
				t.Fatalf("WaitReady: %v", err)
			}
			if got := s.Conn(); got.Host != wantHost || got.Port != p.Port {
				t.Errorf("Conn() reaches %s port %d, want %s port %d", got.Host, got.Port, wantHost, p.Port)
			}
			conn, err := s.Connect(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var shown string
			var overTCP bool
			if err := conn.QueryRow(ctx, "SELECT current_setting('unix_socket_directories'), inet_server_addr() IS NOT NULL").Scan(&shown, &overTCP); err != nil {
				t.Fatal(err)
			}
			_ = conn.Close(ctx)
			if shown != setting {
				t.Errorf("the server runs with unix_socket_directories = %q, want %q", shown, setting)
			}
			if overTCP != (setting == "") {
				t.Errorf("connected over TCP: %v; want TCP only when there is no unix socket", overTCP)
			}
			if err := s.EnsureRoles(ctx, pg.Role{Username: p.Superuser, Password: p.SuperPass}, pg.Role{Username: p.ReplUser, Password: p.ReplPass}); err != nil {
				t.Errorf("EnsureRoles: %v", err)
			}
			loginTCP(t, p.Port, pg.Role{Username: p.ReplUser, Password: p.ReplPass})
			if err := s.WaitPromoted(ctx); err != nil {
				t.Errorf("WaitPromoted on a primary: %v", err)
			}
			if err := s.WaitStreaming(ctx); !errors.Is(err, pg.ErrNotInRecovery) {
				t.Errorf("WaitStreaming on a primary = %v, want ErrNotInRecovery", err)
			}
		})
	}
}

// TestWaitReadyFailsAtOnceWhenTheSocketIsGone: a server that says it is ready but whose socket
// is not there (a cleaner emptied its directory) is an error with its cause, not a wait.
func TestWaitReadyFailsAtOnceWhenTheSocketIsGone(t *testing.T) {
	p := pgtest.Initdb(t, pgtest.Options{})
	dir := userDir(t, "sockets")
	err := pg.WriteSettings(p.DataDir, pg.Settings{
		Listen:     "127.0.0.1:" + strconv.Itoa(p.Port),
		Parameters: map[string]string{"unix_socket_directories": dir, "shared_buffers": "16MB"},
		Superuser:  p.Superuser,
	})
	if err != nil {
		t.Fatal(err)
	}
	s := &pg.Server{BinDir: p.BinDir, DataDir: p.DataDir, User: p.Superuser, Prepare: p.Server.Prepare}
	ctx := boundedContext(t, 30*time.Second)
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	socket := filepath.Join(dir, ".s.PGSQL."+strconv.Itoa(p.Port))
	if err := os.Remove(socket); err != nil {
		t.Fatal(err)
	}
	err = s.WaitReady(ctx)
	t.Logf("WaitReady: %v", err)
	switch {
	case err == nil:
		t.Fatal("WaitReady succeeded without a socket")
	case ctx.Err() != nil:
		t.Fatalf("WaitReady waited for its context to end instead of failing at once: %v", err)
	case !errors.Is(err, pg.ErrNoSocket):
		t.Errorf("WaitReady = %v, want ErrNoSocket", err)
	case !strings.Contains(err.Error(), socket):
		t.Errorf("the error does not name the missing socket %s: %v", socket, err)
	}
}

// TestWaitReadyOnAServerShuttingDown: a server that shuts down removes its unix socket before
// it exits; WaitReady, seeing the socket gone, reports the server gone (with its log), not a
// socket removed by someone else.
func TestWaitReadyOnAServerShuttingDown(t *testing.T) {
	p := pgtest.Initdb(t, pgtest.Options{})
	dir := userDir(t, "sockets")
	err := pg.WriteSettings(p.DataDir, pg.Settings{
		Listen:     "127.0.0.1:" + strconv.Itoa(p.Port),
		Parameters: map[string]string{"unix_socket_directories": dir, "shared_buffers": "16MB"},
		Superuser:  p.Superuser,
	})
	if err != nil {
		t.Fatal(err)
	}
	s := &pg.Server{BinDir: p.BinDir, DataDir: p.DataDir, User: p.Superuser, Prepare: p.Server.Prepare}
	ctx := boundedContext(t, 30*time.Second)
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	pid, _ := s.Running()
	// What a shutdown does first, then, a moment later, the shutdown itself.
	if err := os.Remove(filepath.Join(dir, ".s.PGSQL."+strconv.Itoa(p.Port))); err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(200 * time.Millisecond)
		_ = syscall.Kill(pid, syscall.SIGQUIT)
	}()
	err = s.WaitReady(ctx)
	t.Logf("WaitReady: %v", err)
	if !errors.Is(err, pg.ErrNotRunning) || errors.Is(err, pg.ErrNoSocket) {
		t.Errorf("WaitReady on a server shutting down = %v, want ErrNotRunning", err)
	}
}

// archivedBackup is a base backup of a primary whose WAL is archived, with a restore point
// "after 42" between the rows 42 and 43, and every WAL file up to after row 43 archived.
func archivedBackup(t *testing.T) (p *pgtest.Primary, restored, archive string) {
	t.Helper()
	u := testenv.PostgresUser(t)
	archive = filepath.Join(u.TempDir(t), "wal archive")
	if err := os.Mkdir(archive, 0o700); err != nil {
		t.Fatal(err)
	}
	u.Chown(t, archive)
	p = pgtest.StartPrimary(t, pgtest.Options{Parameters: map[string]string{
		"archive_mode":    "on",
		"archive_command": `test ! -f '` + archive + `/%f' && cp %p '` + archive + `/%f'`,
	}})
	p.Exec(t, "CREATE TABLE imaged (id int)")
	restored = filepath.Join(u.TempDir(t), "restored")
	p.Basebackup(t, restored)
	p.Exec(t, "INSERT INTO imaged VALUES (42)")
	p.Exec(t, "SELECT pg_create_restore_point('after 42')")
	p.Exec(t, "INSERT INTO imaged VALUES (43)")
	walFile := p.QueryString(t, "SELECT pg_walfile_name(pg_switch_wal())")
	ctx := boundedContext(t, time.Minute)
	for p.QueryString(t, "SELECT COALESCE(last_archived_wal, '') >= $1 FROM pg_stat_archiver", walFile) != "t" {
		select {
		case <-ctx.Done():
			t.Fatalf("%s was never archived", walFile)
		case <-time.After(50 * time.Millisecond):
		}
	}
	return p, restored, archive
}

// restore configures restored for a point-in-time recovery with settings and returns its Server.
func restore(t *testing.T, p *pgtest.Primary, restored, archive string, settings map[string]string) *pg.Server {
	t.Helper()
	port := pgtest.FreePort(t)
	if err := pg.WriteSettings(restored, pg.Settings{Listen: "127.0.0.1:" + strconv.Itoa(port), Superuser: p.Superuser}); err != nil {
		t.Fatal(err)
	}
	major, err := pg.DataDirVersion(restored)
	if err != nil {
		t.Fatal(err)
	}
	all := map[string]string{"restore_command": `cp "` + archive + `/%f" "%p"`}
	for k, v := range settings {
		all[k] = v
	}
	if err := pg.WriteRecovery(restored, major, pg.Recovery{Settings: all}); err != nil {
		t.Fatal(err)
	}
	return newServer(t, restored, 0, p.Superuser)
}

// TestWaitPromotedFailsAtOnceWhenRecoveryPauses: PostgreSQL's default recovery_target_action is
// pause; a recovery that reaches its target and pauses never ends by itself, and waiting for it
// is an error that says so, not a wait for the recovery timeout.
func TestWaitPromotedFailsAtOnceWhenRecoveryPauses(t *testing.T) {
	p, restored, archive := archivedBackup(t)
	s := restore(t, p, restored, archive, map[string]string{"recovery_target_name": "after 42"})
	ctx := boundedContext(t, 45*time.Second)
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	err := s.WaitPromoted(ctx)
	t.Logf("WaitPromoted: %v", err)
	switch {
	case err == nil:
		t.Fatal("WaitPromoted succeeded on a paused recovery")
	case ctx.Err() != nil:
		t.Fatalf("WaitPromoted waited for its context to end instead of failing at once: %v", err)
	case !errors.Is(err, pg.ErrRecoveryPaused):
		t.Errorf("WaitPromoted = %v, want ErrRecoveryPaused", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "recovery_target_action = 'promote'") || !strings.Contains(msg, "paused at its target (recovery_target_name = 'after 42')") {
		t.Errorf("the error does not say that recovery is paused at its target and that recovery_target_action = 'promote' is needed:\n%v", msg)
	}
	if _, ok := s.Running(); !ok {
		t.Error("WaitPromoted stopped the server; stopping is the caller's business")
	}
}

// TestWaitForRecoveryFailsAtOnceWhenTheServerDies: a recovery whose target is not in the
// archive ends with a FATAL error; whichever wait is running reports it at once, with the
// server log's cause.
func TestWaitForRecoveryFailsAtOnceWhenTheServerDies(t *testing.T) {
	p, restored, archive := archivedBackup(t)
	s := restore(t, p, restored, archive, map[string]string{
		"recovery_target_name":   "not in the archive",
		"recovery_target_action": "promote",
	})
	ctx := boundedContext(t, 45*time.Second)
	err := s.Start(ctx)
	if err == nil {
		err = s.WaitReady(ctx)
	}
	if err == nil {
		err = s.WaitPromoted(ctx)
	}
	t.Logf("error: %v", err)
	switch {
	case err == nil:
		t.Fatal("the recovery to a target that is not in the archive succeeded")
	case ctx.Err() != nil:
		t.Fatalf("the wait lasted until its context ended: %v", err)
	case !strings.Contains(err.Error(), "recovery ended before configured recovery target was reached"):
		t.Errorf("the error does not carry the server's cause:\n%v", err)
	}
	if pid, ok := s.Running(); ok {
		t.Errorf("a postmaster (pid %d) still runs", pid)
	}
	for name, wait := range map[string]func(context.Context) error{"WaitReady": s.WaitReady, "WaitPromoted": s.WaitPromoted, "WaitStreaming": s.WaitStreaming} {
		if err := wait(ctx); !errors.Is(err, pg.ErrNotRunning) || ctx.Err() != nil {
			t.Errorf("%s on the server that died = %v, want ErrNotRunning at once", name, err)
		}
	}
}

func TestSplitSocketDirectories(t *testing.T) {
	cases := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"  ", nil},
		{"/var/run/postgresql", []string{"/var/run/postgresql"}},
		{"..", []string{".."}},
		{"/var/run/postgresql, /tmp", []string{"/var/run/postgresql", "/tmp"}},
		{` "/a, b" ,/c d , "x""y"`, []string{"/a, b", "/c d", `x"y`}},
		{"@abstract,/tmp", []string{"@abstract", "/tmp"}},
	}
	for _, tc := range cases {
		got := pg.SplitSocketDirectories(tc.in)
		if strings.Join(got, "|") != strings.Join(tc.want, "|") || len(got) != len(tc.want) {
			t.Errorf("SplitSocketDirectories(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestLocalHost(t *testing.T) {
	data := t.TempDir()
	long := "/" + strings.Repeat("d", 110)
	cases := []struct {
		name   string
		dirs   string
		listen string
		want   string
	}{
		{"default: the data directory", data, "127.0.0.1", data},
		{"absolute", "/var/run/postgresql", "*", "/var/run/postgresql"},
		{"relative to the data directory", "..", "*", filepath.Dir(data)},
		{"relative below the data directory", "sock/./x", "*", filepath.Join(data, "sock", "x")},
		{"a list: the first", "/run/a, /run/b", "*", "/run/a"},
		{"abstract first: the next", "@pg, /run/b", "*", "/run/b"},
		{"a comma in the path: the next", `"/run/a,b", /run/c`, "*", "/run/c"},
		{"no socket, every address", "", "*", "127.0.0.1"},
		{"no socket, 0.0.0.0", "", "0.0.0.0, 10.0.0.1", "127.0.0.1"},
		{"no socket, IPv6 any", "", "::", "::1"},
		{"no socket, one address", "", "10.1.2.3,127.0.0.1", "10.1.2.3"},
		{"too long a path, TCP", long, "*", "127.0.0.1"},
		{"too long a path, no TCP", long, "", long},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := pg.LocalHost(data, pg.SplitSocketDirectories(tc.dirs), tc.listen, 5432); got != tc.want {
				t.Errorf("LocalHost(%q, %q) = %q, want %q", tc.dirs, tc.listen, got, tc.want)
			}
		})
	}
}

// TestWaitsOnAStandbyWithoutHotStandby: a standby with hot_standby = off never accepts
// connections before it is promoted. WaitReady takes its answer ("Hot standby mode is
// disabled") for ready instead of waiting for ever, and WaitStreaming sees its WAL receiver
// stream without a connection.
func TestWaitsOnAStandbyWithoutHotStandby(t *testing.T) {
	primary := pgtest.StartPrimary(t, pgtest.Options{})
	replica := filepath.Join(testenv.PostgresUser(t).TempDir(t), "replica")
	primary.Basebackup(t, replica)
	port := pgtest.FreePort(t)
	err := pg.WriteSettings(replica, pg.Settings{
		Listen:     "127.0.0.1:" + strconv.Itoa(port),
		Parameters: map[string]string{"hot_standby": "off"},
		Superuser:  primary.Superuser,
	})
	if err != nil {
		t.Fatal(err)
	}
	source := primary.ReplConn()
	source.Params = map[string]string{"passfile": primary.WritePgpass(t)}
	major, err := pg.DataDirVersion(replica)
	if err != nil {
		t.Fatal(err)
	}
	if err := pg.WriteRecovery(replica, major, pg.Recovery{Standby: true, Settings: map[string]string{"primary_conninfo": source.DSN()}}); err != nil {
		t.Fatal(err)
	}
	s := newServer(t, replica, 0, primary.Superuser)
	ctx := boundedContext(t, 40*time.Second)
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.WaitReady(ctx); err != nil {
		t.Fatalf("WaitReady on a standby without hot standby: %v", err)
	}
	if err := s.WaitStreaming(ctx); err != nil {
		t.Fatalf("WaitStreaming on a standby without hot standby: %v", err)
	}
	if got := primary.QueryString(t, "SELECT state FROM pg_stat_replication"); got != "streaming" {
		t.Errorf("the primary's pg_stat_replication state = %q, want streaming", got)
	}
}

// TestWaitReadyIsBoundedByTheStartTimeout: a postmaster that is there but never answers (here
// stopped with SIGSTOP) ends the wait after StartTimeout, pgimaged's pg_ctl_timeout, not when
// the caller's context ends.
func TestWaitReadyIsBoundedByTheStartTimeout(t *testing.T) {
	p := pgtest.Initdb(t, pgtest.Options{})
	ctx := boundedContext(t, time.Minute)
	if err := p.Server.Start(ctx); err != nil {
		t.Fatal(err)
	}
	pid, ok := p.Server.Running()
	if !ok {
		t.Fatal("the server is not running after Start")
	}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGCONT) }) // before the server is stopped
	s := *p.Server
	s.StartTimeout = 2 * time.Second
	err := s.WaitReady(ctx)
	t.Logf("WaitReady: %v", err)
	switch {
	case err == nil:
		t.Fatal("WaitReady succeeded on a server that cannot answer")
	case ctx.Err() != nil:
		t.Fatalf("WaitReady waited for its context to end instead of StartTimeout: %v", err)
	case !strings.Contains(err.Error(), "no answer from PostgreSQL") || !strings.Contains(err.Error(), "within 2s"):
		t.Errorf("the error does not say that the server did not answer within the start timeout: %v", err)
	}
}

func TestLoopback(t *testing.T) {
	for host, want := range map[string]string{"": "127.0.0.1", "*": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1",
		"::1": "::1", "10.0.0.5": "10.0.0.5", "db1.example.com": "db1.example.com"} {
		if got := pg.Loopback(host); got != want {
			t.Errorf("Loopback(%q) = %q, want %q", host, got, want)
		}
	}
}
