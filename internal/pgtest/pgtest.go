// Package pgtest starts real PostgreSQL servers for tests: a cluster made by initdb as the
// unprivileged PostgreSQL OS user, configured for password logins and replication from
// 127.0.0.1, on a free port, stopped and removed when the test ends.
//
//	p := pgtest.StartPrimary(t, pgtest.Options{})
//	p.Exec(t, "CREATE TABLE t (id int)")
//	p.Basebackup(t, replicaDir)
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgimaged/pgimaged/core/pg"
	"github.com/pgimaged/pgimaged/internal/testenv"
)

// Options shape the cluster. The zero value is a usable primary.
type Options struct {
	Superuser string // default "postgres"
	SuperPass string // default random
	ReplUser  string // default "replicator"
	ReplPass  string // default random

	DataChecksums bool

	// Parameters are added to (and override) the defaults: wal_level = replica,
	// max_wal_senders, hot_standby, wal_keep_size, fsync = off, a small shared_buffers.
	// Archive settings go here too.
	Parameters map[string]string

	// HBA lines come before the defaults, which allow password (scram-sha-256) logins to any
	// database and replication connections from 127.0.0.1.
	HBA []string

	// InitdbArgs are extra initdb arguments.
	InitdbArgs []string
}

// Primary is a PostgreSQL cluster owned by a test.
type Primary struct {
	BinDir    string
	DataDir   string
	SocketDir string
	Port      int

	Superuser, SuperPass string
	ReplUser, ReplPass   string

	// Server controls the cluster, running pg_ctl as OSUser.
	Server *pg.Server
	OSUser testenv.PGUser
}

// Initdb creates and configures a cluster without starting it. t.Cleanup stops it (immediate)
// if the test started it, and removes it.
func Initdb(t testing.TB, opts Options) *Primary {
	t.Helper()
	bin := testenv.PGBinDir(t)
	for _, prog := range []string{"initdb", "pg_ctl", "postgres"} {
		if _, err := os.Stat(filepath.Join(bin, prog)); err != nil {
			testenv.Missing(t, "%s not found in %s", prog, bin)
		}
	}
	u := testenv.PostgresUser(t)
	tmp := u.TempDir(t)

	p := &Primary{
		BinDir:    bin,
		DataDir:   filepath.Join(tmp, "data"),
		Superuser: def(opts.Superuser, "postgres"),
		SuperPass: def(opts.SuperPass, randomPassword(t)),
		ReplUser:  def(opts.ReplUser, "replicator"),
		ReplPass:  def(opts.ReplPass, randomPassword(t)),
		OSUser:    u,
	}
	p.SocketDir = p.DataDir

	pwfile := filepath.Join(tmp, "pwfile")
	if err := os.WriteFile(pwfile, []byte(p.SuperPass+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	u.Chown(t, pwfile)
	args := []string{"-D", p.DataDir, "--username=" + p.Superuser, "--pwfile=" + pwfile,
		"--auth=scram-sha-256", "--encoding=UTF8", "--locale=C", "--no-sync"}
	if opts.DataChecksums {
		args = append(args, "--data-checksums")
	}
	args = append(args, opts.InitdbArgs...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := u.AsUser(exec.CommandContext(ctx, filepath.Join(bin, "initdb"), args...))
	out, err := cmd.CombinedOutput()
	_ = os.Remove(pwfile)
	if err != nil {
		t.Fatalf("initdb %v: %v\n%s", args, err, out)
	}

	p.Port = FreePort(t)
	p.Server = &pg.Server{
		BinDir:    bin,
		DataDir:   p.DataDir,
		SocketDir: p.SocketDir,
		Port:      p.Port,
		User:      p.Superuser,
		Prepare:   func(c *exec.Cmd) { u.AsUser(c) },
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := p.Server.Stop(ctx, "immediate"); err != nil {
			t.Errorf("stopping the test cluster in %s: %v", p.DataDir, err)
		}
	})

	major, err := pg.DataDirVersion(p.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	params := map[string]string{
		"wal_level":       "replica",
		"max_wal_senders": "10",
		"hot_standby":     "on",
		"fsync":           "off",
		"shared_buffers":  "16MB",
		"max_connections": "30",
		"log_line_prefix": "%m [%p] ",
	}
	if major >= 13 {
		params["wal_keep_size"] = "128MB"
	} else {
		params["wal_keep_segments"] = "8"
	}
	maps.Copy(params, opts.Parameters)
	hba := append(append([]string{}, opts.HBA...),
		"local all all scram-sha-256",
		"host all all 127.0.0.1/32 scram-sha-256",
		"host replication all 127.0.0.1/32 scram-sha-256",
	)
	err = pg.WriteSettings(p.DataDir, pg.Settings{
		Listen:     "127.0.0.1:" + strconv.Itoa(p.Port),
		Parameters: params,
		HBA:        hba,
		SocketDir:  p.SocketDir,
		Superuser:  p.Superuser,
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// StartPrimary creates a cluster with [Initdb], starts it and creates the replication role.
func StartPrimary(t testing.TB, opts Options) *Primary {
	t.Helper()
	p := Initdb(t, opts)
	p.Start(t)
	p.EnsureRoles(t)
	return p
}

// EnsureRoles creates the replication role and sets both passwords on a running cluster.
func (p *Primary) EnsureRoles(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := pg.EnsureRoles(ctx, p.Server.Conn().DSN(),
		pg.Role{Username: p.Superuser, Password: p.SuperPass},
		pg.Role{Username: p.ReplUser, Password: p.ReplPass})
	if err != nil {
		t.Fatal(err)
	}
}

// Start starts the cluster and waits until it accepts connections.
func (p *Primary) Start(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := p.Server.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.Server.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
}

// Stop stops the cluster (fast).
func (p *Primary) Stop(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := p.Server.Stop(ctx, "fast"); err != nil {
		t.Fatal(err)
	}
}

// Conn is the superuser's TCP connection to database postgres, without the password.
func (p *Primary) Conn() pg.Conn {
	return pg.Conn{Host: "127.0.0.1", Port: p.Port, User: p.Superuser, Database: "postgres"}
}

// ReplConn is the replication user's TCP connection, without the password.
func (p *Primary) ReplConn() pg.Conn {
	return pg.Conn{Host: "127.0.0.1", Port: p.Port, User: p.ReplUser, Database: "postgres"}
}

// ConnURL is the member URL as the DCS publishes it: postgres://127.0.0.1:port/postgres.
func (p *Primary) ConnURL() string {
	return "postgres://127.0.0.1:" + strconv.Itoa(p.Port) + "/postgres"
}

// PassEntries are pgpass lines for the superuser and the replication user.
func (p *Primary) PassEntries() []pg.PassEntry {
	port := strconv.Itoa(p.Port)
	return []pg.PassEntry{
		{Host: "127.0.0.1", Port: port, User: p.Superuser, Password: p.SuperPass},
		{Host: "127.0.0.1", Port: port, User: p.ReplUser, Password: p.ReplPass},
	}
}

// WritePgpass writes a pgpass file with [Primary.PassEntries] into a fresh directory that the
// PostgreSQL OS user owns, and returns its path.
func (p *Primary) WritePgpass(t testing.TB) string {
	t.Helper()
	path := filepath.Join(p.OSUser.TempDir(t), "pgpass")
	if err := pg.WritePgpass(path, p.PassEntries()...); err != nil {
		t.Fatal(err)
	}
	p.OSUser.Chown(t, path)
	return path
}

// Connect opens a TCP connection as the superuser, closed when the test ends.
func (p *Primary) Connect(t testing.TB) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg, err := pgx.ParseConfig(p.Conn().DSN())
	if err != nil {
		t.Fatal(err)
	}
	cfg.Password = p.SuperPass
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("connecting to the test cluster on port %d: %v", p.Port, err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// Exec runs sql as the superuser.
func (p *Primary) Exec(t testing.TB, sql string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn := p.Connect(t)
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	_ = conn.Close(ctx)
}

// QueryString runs sql as the superuser and returns the first column of the first row as
// PostgreSQL prints it ("" for NULL).
func (p *Primary) QueryString(t testing.TB, sql string, args ...any) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn := p.Connect(t)
	defer conn.Close(ctx)
	var v *string
	err := conn.QueryRow(ctx, sql, append([]any{pgx.QueryExecModeSimpleProtocol}, args...)...).Scan(&v)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	if v == nil {
		return ""
	}
	return *v
}

// SystemIdentifier is the cluster's database system identifier.
func (p *Primary) SystemIdentifier(t testing.TB) uint64 {
	t.Helper()
	id, err := pg.SystemIdentifier(p.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// Basebackup copies the running cluster into dir with pg_basebackup -X stream as the
// replication user, run as the PostgreSQL OS user. dir must not exist or be empty, in a
// directory that user can write.
func (p *Primary) Basebackup(t testing.TB, dir string, extra ...string) {
	t.Helper()
	bin := filepath.Join(p.BinDir, "pg_basebackup")
	if _, err := os.Stat(bin); err != nil {
		testenv.Missing(t, "pg_basebackup not found in %s", p.BinDir)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	args := append([]string{"--pgdata=" + dir, "-X", "stream", "--checkpoint=fast", "--no-sync",
		"--dbname=" + p.ReplConn().DSN()}, extra...)
	cmd := p.OSUser.AsUser(exec.CommandContext(ctx, bin, args...))
	cmd.Env = append(os.Environ(), "PGPASSFILE="+p.WritePgpass(t))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pg_basebackup %v: %v\n%s", args, err, out)
	}
}

var (
	portsMu sync.Mutex
	ports   = map[int]bool{}
)

// FreePort returns a TCP port on 127.0.0.1 that nothing listens on, never the same one twice in
// a test binary.
func FreePort(t testing.TB) int {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("finding a free port: %v", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		if !ports[port] {
			ports[port] = true
			return port
		}
	}
	t.Fatal("no free port found")
	return 0
}

func randomPassword(t testing.TB) string {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func def(v, d string) string {
	if v == "" {
		return d
	}
	return v
}
