package pg_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgimaged/pgimaged/core/pg"
	"github.com/pgimaged/pgimaged/core/plugin/host/proc"
	"github.com/pgimaged/pgimaged/internal/pgtest"
	"github.com/pgimaged/pgimaged/internal/testenv"
)

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// newServer returns a Server for dir that runs pg_ctl as the PostgreSQL OS user.
func newServer(t *testing.T, dir string, port int, user string) *pg.Server {
	u := testenv.PostgresUser(t)
	s := &pg.Server{
		BinDir:  testenv.PGBinDir(t),
		DataDir: dir,
		Port:    port,
		User:    user,
		Prepare: func(c *exec.Cmd) { u.AsUser(c) },
	}
	t.Cleanup(func() {
		if err := s.Stop(context.Background(), "immediate"); err != nil {
			t.Errorf("stopping PostgreSQL in %s: %v", dir, err)
		}
	})
	return s
}

func TestSystemIdentifierMatchesPgControldata(t *testing.T) {
	p := pgtest.Initdb(t, pgtest.Options{})
	out, err := exec.Command(filepath.Join(p.BinDir, "pg_controldata"), p.DataDir).Output()
	if err != nil {
		t.Fatalf("pg_controldata: %v", err)
	}
	var want uint64
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, "Database system identifier:"); ok {
			want, err = strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	if want == 0 {
		t.Fatalf("no system identifier in pg_controldata output:\n%s", out)
	}
	got, err := pg.SystemIdentifier(p.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("SystemIdentifier = %d, pg_controldata says %d", got, want)
	}
	if !pg.HasCluster(p.DataDir) {
		t.Error("HasCluster = false for a fresh initdb cluster")
	}

	bin, err := pg.BinVersion(testContext(t), p.BinDir)
	if err != nil {
		t.Fatal(err)
	}
	major, err := pg.DataDirVersion(p.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	if bin/10000 != major {
		t.Errorf("BinVersion = %d, DataDirVersion = %d: the binaries made this cluster", bin, major)
	}
}

func TestStartFailureReportsServerLog(t *testing.T) {
	p := pgtest.Initdb(t, pgtest.Options{Parameters: map[string]string{"shared_buffers": "bogus"}})
	ctx := testContext(t)
	err := p.Server.Start(ctx)
	if err == nil {
		t.Fatal("Start succeeded with shared_buffers = 'bogus'")
	}
	t.Logf("Start: %v", err)
	var se *pg.ServerError
	if !errors.As(err, &se) {
		t.Fatalf("err = %T %v, want a *pg.ServerError", err, err)
	}
	if !strings.Contains(err.Error(), `invalid value for parameter "shared_buffers"`) {
		t.Errorf("the error lacks the server's complaint:\n%v", err)
	}
	if pid, ok := p.Server.Running(); ok {
		t.Errorf("a postmaster (pid %d) is left after the failed start", pid)
	}
}

func TestStartStopRoundTripsSettings(t *testing.T) {
	// A value that needs every kind of quoting, read back from the server.
	tricky := `it's a "test" \ with  spaces`
	p := pgtest.Initdb(t, pgtest.Options{Parameters: map[string]string{"cluster_name": tricky}})
	ctx := testContext(t)
	s := p.Server

	if err := s.Stop(ctx, "fast"); err != nil {
		t.Errorf("Stop of a server that is not running: %v", err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); !errors.Is(err, pg.ErrAlreadyRunning) {
		t.Errorf("second Start = %v, want ErrAlreadyRunning", err)
	}
	if err := s.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	pid, ok := s.Running()
	if !ok {
		t.Fatal("Running = false after Start")
	}
	// pgimaged's own connection: unix socket, peer authentication mapped to the superuser.
	conn, err := s.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got string
	if err := conn.QueryRow(ctx, "SHOW cluster_name").Scan(&got); err != nil {
		t.Fatal(err)
	}
	_ = conn.Close(ctx)
	if got != tricky {
		t.Errorf("cluster_name = %q, want %q", got, tricky)
	}
	if err := s.WaitPromoted(ctx); err != nil {
		t.Errorf("WaitPromoted on a primary: %v", err)
	}
	err = s.WaitStreaming(ctx)
	if !errors.Is(err, pg.ErrNotInRecovery) {
		t.Errorf("WaitStreaming on a primary = %v, want ErrNotInRecovery", err)
	}
	if len(s.LogTail(5)) == 0 {
		t.Error("LogTail is empty for a server that has logged its start")
	}

	if err := s.Stop(ctx, "fast"); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Running(); ok {
		t.Error("Running = true after Stop")
	}
	if processExists(pid) {
		t.Errorf("postmaster pid %d still exists after Stop", pid)
	}
	if err := s.WaitReady(ctx); !errors.Is(err, pg.ErrNotRunning) {
		t.Errorf("WaitReady on a stopped server = %v, want ErrNotRunning", err)
	}
}

func TestStandbyStreamsFromPrimary(t *testing.T) {
	primary := pgtest.StartPrimary(t, pgtest.Options{})
	primary.Exec(t, "CREATE TABLE imaged (id int)")
	u := testenv.PostgresUser(t)
	replica := filepath.Join(u.TempDir(t), "replica")
	primary.Basebackup(t, replica)

	primaryID, replicaID := primary.SystemIdentifier(t), mustSystemIdentifier(t, replica)
	if primaryID != replicaID {
		t.Fatalf("replica system identifier %d, primary's %d", replicaID, primaryID)
	}

	port := pgtest.FreePort(t)
	err := pg.WriteSettings(replica, pg.Settings{
		Listen:    "127.0.0.1:" + strconv.Itoa(port),
		HBA:       []string{"host all all 127.0.0.1/32 scram-sha-256"},
		Superuser: primary.Superuser,
	})
	if err != nil {
		t.Fatal(err)
	}
	source := primary.ReplConn()
	source.Params = map[string]string{"application_name": "replica one", "passfile": primary.WritePgpass(t)}
	major, err := pg.DataDirVersion(replica)
	if err != nil {
		t.Fatal(err)
	}
	err = pg.WriteRecovery(replica, major, pg.Recovery{Standby: true, Settings: map[string]string{
		"primary_conninfo": source.DSN(),
	}})
	if err != nil {
		t.Fatal(err)
	}

	s := newServer(t, replica, 0, primary.Superuser) // port from postmaster.pid
	ctx := testContext(t)
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.WaitStreaming(ctx); err != nil {
		t.Fatal(err)
	}
	if got := primary.QueryString(t, "SELECT state FROM pg_stat_replication WHERE application_name = 'replica one'"); got != "streaming" {
		t.Errorf("primary's pg_stat_replication state for the replica = %q, want streaming", got)
	}

	primary.Exec(t, "INSERT INTO imaged VALUES (42)")
	conn, err := s.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if err := waitForRow(ctx, conn); err != nil {
		t.Errorf("the row inserted on the primary did not reach the replica: %v", err)
	}

	pid, _ := s.Running()
	if err := s.Stop(ctx, "fast"); err != nil {
		t.Fatal(err)
	}
	if processExists(pid) {
		t.Errorf("replica postmaster pid %d still exists after Stop", pid)
	}
}

func TestPointInTimeRecoveryPromotes(t *testing.T) {
	primary, restored, archive := archivedBackup(t)
	s := restore(t, primary, restored, archive, map[string]string{
		"recovery_target_name":   "after 42",
		"recovery_target_action": "promote",
	})
	if standby, ending := pg.RecoveryMode(restored); !standby && !ending {
		t.Fatal("no recovery after WriteRecovery")
	}

	ctx := testContext(t)
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.WaitPromoted(ctx); err != nil {
		t.Fatal(err)
	}
	conn, err := s.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var ids string
	if err := conn.QueryRow(ctx, "SELECT string_agg(id::text, ',' ORDER BY id) FROM imaged").Scan(&ids); err != nil {
		t.Fatal(err)
	}
	if ids != "42" {
		t.Errorf("rows after recovery to the restore point: %q, want 42 only", ids)
	}
	if standby, ending := pg.RecoveryMode(restored); standby || ending {
		t.Error("the signal file is still there after promotion")
	}
}

func waitForRow(ctx context.Context, conn *pgx.Conn) error {
	for {
		var n int
		err := conn.QueryRow(ctx, "SELECT count(*) FROM imaged WHERE id = 42").Scan(&n)
		if err == nil && n == 1 {
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func TestEnsureRoles(t *testing.T) {
	// Statement logging on: no password may reach the server log.
	primary := pgtest.StartPrimary(t, pgtest.Options{
		Superuser:  "dba",
		Parameters: map[string]string{"log_statement": "all", "log_min_error_statement": "debug5"},
		HBA:        []string{"host all md5user 127.0.0.1/32 md5"},
	})
	ctx := testContext(t)

	cases := []struct {
		name        string
		encryption  string // password_encryption for the session, "" for the server's (scram-sha-256)
		super, repl pg.Role
		wantStored  string // how the replication role's password is stored
	}{
		{"new replication role, new superuser password", "",
			pg.Role{Username: "dba", Password: `n3w'super\pw`}, pg.Role{Username: "repl one", Password: "r3pl:pw'x"}, "SCRAM-SHA-256$"},
		{"existing roles, passwords changed again", "",
			pg.Role{Username: "dba", Password: "another-Super-pw"}, pg.Role{Username: "repl one", Password: "another-repl-pw"}, "SCRAM-SHA-256$"},
		{"non-ASCII password", "", pg.Role{Username: "dba", Password: "pässwörd✓"}, pg.Role{}, ""},
		{"md5, superuser password unchanged", "md5",
			pg.Role{Username: "dba"}, pg.Role{Username: "md5user", Password: "md5-pw"}, "md5"},
		{"replication role is the superuser", "",
			pg.Role{Username: "dba", Password: "same-role-pw"}, pg.Role{Username: "dba", Password: "ignored-pw"}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := primary.Server.Conn()
			if tc.encryption != "" {
				c.Params["options"] = "-c password_encryption=" + tc.encryption
			}
			if err := pg.EnsureRoles(ctx, c.DSN(), tc.super, tc.repl); err != nil {
				t.Fatal(err)
			}
			if tc.super.Password != "" {
				primary.SuperPass = tc.super.Password
			}
			loginTCP(t, primary.Port, pg.Role{Username: tc.super.Username, Password: primary.SuperPass})
			if tc.repl.Username == "" || tc.repl.Username == tc.super.Username {
				return
			}
			loginTCP(t, primary.Port, tc.repl)
			got := primary.QueryString(t, "SELECT rolreplication::text || rolcanlogin::text || rolsuper::text FROM pg_roles WHERE rolname = $1", tc.repl.Username)
			if got != "truetruefalse" {
				t.Errorf("replication role: rolreplication, rolcanlogin, rolsuper = %s, want true, true, false", got)
			}
			stored := primary.QueryString(t, "SELECT rolpassword FROM pg_authid WHERE rolname = $1", tc.repl.Username)
			if !strings.HasPrefix(stored, tc.wantStored) {
				t.Errorf("stored password %.20s..., want it to start with %s", stored, tc.wantStored)
			}
		})
	}

	// The old password no longer works.
	cfg, err := pgx.ParseConfig(primary.Conn().DSN())
	if err != nil {
		t.Fatal(err)
	}
	cfg.Password = "another-Super-pw"
	if conn, err := pgx.ConnectConfig(ctx, cfg); err == nil {
		_ = conn.Close(ctx)
		t.Error("an old superuser password still logs in")
	}

	log := strings.Join(primary.Server.LogTail(100000), "\n")
	if !strings.Contains(log, "statement: begin") {
		t.Fatalf("statement logging did not log EnsureRoles; the check below would prove nothing:\n%s", log)
	}
	for _, tc := range cases {
		for _, pw := range []string{tc.super.Password, tc.repl.Password} {
			if pw != "" && strings.Contains(log, pw) {
				t.Errorf("the server log holds the password %q", pw)
			}
		}
	}
}

// TestEnsureRolesRewindRole: a rewind role apart from the superuser is a login without
// superuser that may list, stat and read the data directory's files as pg_rewind does; created,
// then altered (its password changed) when asked again.
func TestEnsureRolesRewindRole(t *testing.T) {
	primary := pgtest.StartPrimary(t, pgtest.Options{Superuser: "dba"})
	ctx := testContext(t)
	super := pg.Role{Username: "dba", Password: primary.SuperPass}
	for _, pw := range []string{"Rw-first-1", "Rw-second-2"} {
		rw := pg.Role{Username: "rewinder", Password: pw}
		if err := pg.EnsureRoles(ctx, primary.Server.Conn().DSN(), super, pg.Role{}, rw); err != nil {
			t.Fatal(err)
		}
		cfg, err := pgx.ParseConfig(pg.Conn{Host: "127.0.0.1", Port: primary.Port, User: rw.Username, Database: "postgres"}.DSN())
		if err != nil {
			t.Fatal(err)
		}
		cfg.Password = rw.Password
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			t.Fatalf("the rewind role cannot log in with %s: %v", pw, err)
		}
		var super bool
		var files, n int
		err = conn.QueryRow(ctx, `SELECT rolsuper, (SELECT count(*) FROM pg_ls_dir('.', true, false) f WHERE (pg_stat_file(f, true)).size IS NOT NULL),
			length(pg_read_binary_file('global/pg_control', 0, 8, true)) FROM pg_roles WHERE rolname = current_user`).Scan(&super, &files, &n)
		_ = conn.Close(ctx)
		if err != nil || super || files == 0 || n != 8 {
			t.Errorf("as the rewind role: superuser %v, %d files listed, %d bytes read (%v); want no superuser and pg_rewind's functions", super, files, n, err)
		}
	}
}

func loginTCP(t *testing.T, port int, r pg.Role) {
	t.Helper()
	ctx := testContext(t)
	cfg, err := pgx.ParseConfig(pg.Conn{Host: "127.0.0.1", Port: port, User: r.Username, Database: "postgres"}.DSN())
	if err != nil {
		t.Fatal(err)
	}
	cfg.Password = r.Password
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Errorf("%s cannot log in over TCP with its new password: %v", r.Username, err)
		return
	}
	_ = conn.Close(ctx)
}

func mustSystemIdentifier(t *testing.T, dir string) uint64 {
	t.Helper()
	id, err := pg.SystemIdentifier(dir)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// processExists reports whether pid is a live, non-zombie process.
func processExists(pid int) bool {
	p, ok := proc.Read(pid)
	return ok && p.Running()
}

// Start returns as soon as postmaster.pid says the server is ready, without waiting for pg_ctl's
// next look; the pg_ctl it ran still ends by itself and is reaped: no child of this process is
// left.
func TestStartReturnsWhenReadyAndLeavesNoPgCtl(t *testing.T) {
	p := pgtest.Initdb(t, pgtest.Options{})
	ctx := testContext(t)
	if err := p.Server.Start(ctx); err != nil {
		t.Fatal(err)
	}
	status, err := os.ReadFile(filepath.Join(p.Server.DataDir, "postmaster.pid"))
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(string(status), "\n"); len(lines) < 8 || strings.TrimSpace(lines[7]) != "ready" {
		t.Errorf("Start returned before the server was ready; postmaster.pid:\n%s", status)
	}
	deadline := time.Now().Add(30 * time.Second) // guards against a hang only
	for {
		kids := childrenNamed(t, "pg_ctl")
		if len(kids) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pg_ctl still runs as a child of this process: %v", kids)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// childrenNamed lists the live child processes of this process with the command name comm.
func childrenNamed(t *testing.T, comm string) []int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	self := strconv.Itoa(os.Getpid())
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(stat)
		open, closing := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || closing < 0 || closing+2 >= len(s) {
			continue
		}
		fields := strings.Fields(s[closing+2:])
		if s[open+1:closing] == comm && len(fields) > 1 && fields[1] == self && fields[0] != "Z" {
			pids = append(pids, pid)
		}
	}
	return pids
}

// Connect from an OS user the peer line of pg_hba.conf does not map (`pgimaged plan` run by
// root against an agent's server): the socket refuses it, and with the superuser's password
// Connect goes over TCP to where the server listens. Without a password it says why.
func TestConnectOverTCPWhenThePeerLineRefuses(t *testing.T) {
	p := pgtest.Initdb(t, pgtest.Options{})
	err := pg.WriteSettings(p.DataDir, pg.Settings{
		Listen:     "127.0.0.1:" + strconv.Itoa(p.Port),
		Parameters: map[string]string{"fsync": "off", "shared_buffers": "16MB", "hot_standby": "on"},
		HBA:        []string{"host all all 127.0.0.1/32 scram-sha-256"},
		SocketDir:  p.SocketDir,
		Superuser:  p.Superuser,
		OSUser:     "someone-else",
	})
	if err != nil {
		t.Fatal(err)
	}
	p.Start(t)
	ctx := testContext(t)

	noPassword := *p.Server
	noPassword.Password = ""
	if conn, err := noPassword.Connect(ctx); err == nil {
		conn.Close(ctx)
		t.Fatal("the socket admitted a user its peer line does not map: the test proves nothing")
	} else if !strings.Contains(err.Error(), "authentication failed") {
		t.Errorf("without a password: %v", err)
	}

	withPassword := *p.Server
	withPassword.Password = p.SuperPass
	conn, err := withPassword.Connect(ctx)
	if err != nil {
		t.Fatalf("with the superuser's password: %v", err)
	}
	defer conn.Close(ctx)
	var addr string
	if err := conn.QueryRow(ctx, "SELECT COALESCE(inet_client_addr()::text, 'socket')").Scan(&addr); err != nil {
		t.Fatal(err)
	}
	if addr != "127.0.0.1/32" && addr != "127.0.0.1" {
		t.Errorf("connected from %s, want TCP from 127.0.0.1", addr)
	}
}
