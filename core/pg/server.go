package pg

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgimaged/pgimaged/internal/backoff"
)

// DefaultLogFile is where [Server] sends the server's output, relative to the data directory.
const DefaultLogFile = "log/pgimaged-postgres.log"

// ErrAlreadyRunning is returned by [Server.Start] when a postmaster already runs in the data
// directory.
var ErrAlreadyRunning = errors.New("PostgreSQL is already running")

// Server starts, stops and watches the PostgreSQL server of one data directory through pg_ctl,
// and connects to it over its unix socket as the superuser (see [Settings] for the peer
// authentication that makes this work without a password).
type Server struct {
	BinDir  string // holds pg_ctl and postgres
	DataDir string

	// SocketDir and Port say where to connect while the server has not said where it listens.
	// Once a running server has written its sockets into postmaster.pid, that is where [Server.Conn]
	// connects, whatever unix_socket_directories and listen_addresses say (see [LocalHost]).
	// Empty or zero: the data directory and 5432.
	SocketDir string
	Port      int

	// User is the role to connect as (default: the OS user this process runs as); Password is
	// only needed when pg_hba.conf asks for one. It is never logged nor put into a DSN.
	User     string
	Password string
	// TLS are the superuser's TLS settings, for a server reached over TCP (a unix socket needs
	// none: libpq and pgx ignore them there).
	TLS TLS

	// LogFile receives the server's output (pg_ctl -l). Default: DataDir/log/pgimaged-postgres.log.
	LogFile string

	// StartTimeout bounds how long Start waits for pg_ctl (default 60s, and never past the
	// context's deadline), and how long WaitReady waits for a running server to answer at all.
	// A start into recovery returns as soon as recovery has begun; use WaitReady, WaitPromoted
	// or WaitStreaming for what comes after.
	StartTimeout time.Duration

	// StopTimeout bounds how long Stop waits for the server to go (default 60s).
	StopTimeout time.Duration

	// Prepare, when set, adjusts every command before it starts, e.g. to run it as the
	// PostgreSQL OS user.
	Prepare func(*exec.Cmd)
}

// ServerError is a failure to start or watch the server, with the last lines the server wrote
// to its log.
type ServerError struct {
	Op      string // what was being attempted: "starting", "waiting for connections", ...
	DataDir string
	Err     error
	LogFile string
	LogTail []string
	// Reason is PostgreSQL's own account of a failed start (see [StartReason]), "" when its
	// log gives none. It comes first in Error(), before pg_ctl's "Examine the log output".
	Reason string
}

func (e *ServerError) Error() string {
	var b strings.Builder
	if e.Reason != "" {
		fmt.Fprintf(&b, "while %s PostgreSQL in data directory %q: %s (%v)", e.Op, e.DataDir, e.Reason, e.Err)
	} else {
		fmt.Fprintf(&b, "while %s PostgreSQL in data directory %q: %v", e.Op, e.DataDir, e.Err)
	}
	if len(e.LogTail) > 0 {
		fmt.Fprintf(&b, "\nlast lines of %s:", e.LogFile)
		for _, l := range e.LogTail {
			b.WriteString("\n    ")
			b.WriteString(l)
		}
	}
	return b.String()
}

func (e *ServerError) Unwrap() error { return e.Err }

const logTailLines = 20

func (s *Server) logFile() string {
	if s.LogFile != "" {
		return s.LogFile
	}
	return filepath.Join(s.DataDir, DefaultLogFile)
}

func (s *Server) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(s.BinDir, name), args...)
	// pg_ctl hands its output files to nobody (postgres writes to LogFile), but never let a
	// stray holder of the pipe keep us waiting.
	cmd.WaitDelay = 10 * time.Second
	cmd.Env = serverEnv()
	if s.Prepare != nil {
		s.Prepare(cmd)
	}
	return cmd
}

// timeoutSeconds is def (or fallback) capped by ctx's deadline, in whole seconds, at least 1.
func timeoutSeconds(ctx context.Context, def, fallback time.Duration) int {
	if def <= 0 {
		def = fallback
	}
	if dl, ok := ctx.Deadline(); ok {
		def = min(def, time.Until(dl))
	}
	return max(1, int((def+time.Second-1)/time.Second))
}

// Start runs pg_ctl start and waits until the server accepts connections or, when it starts in
// recovery, until recovery has begun. On failure it stops whatever postmaster the attempt left
// behind and returns a [*ServerError] holding the tail of the server log.
func (s *Server) Start(ctx context.Context) error {
	if pid, ok := s.Running(); ok {
		return fmt.Errorf("while starting PostgreSQL in data directory %q: %w (pid %d)", s.DataDir, ErrAlreadyRunning, pid)
	}
	dataDir, err := filepath.Abs(s.DataDir)
	if err != nil {
		return fmt.Errorf("while starting PostgreSQL in data directory %q: %w", s.DataDir, err)
	}
	logFile, err := filepath.Abs(s.logFile())
	if err != nil {
		return fmt.Errorf("while starting PostgreSQL in data directory %q: %w", s.DataDir, err)
	}
	if err := mkdirLikeDir(filepath.Dir(logFile), s.DataDir, 0o700); err != nil {
		return fmt.Errorf("while creating the log directory of PostgreSQL in %q: %w", s.DataDir, err)
	}
	offset := fileSize(logFile)
	secs := timeoutSeconds(ctx, s.StartTimeout, 60*time.Second)
	launched := time.Now()
	args := []string{"start", "-D", dataDir, "-l", logFile, "-w", "-t", strconv.Itoa(secs)}
	if s.BinDir != "" {
		// Named, postgres is run as it is; else pg_ctl first runs it once more to check that
		// its version matches (postgres -V), which takes a few tens of milliseconds.
		if postgres, err := filepath.Abs(filepath.Join(s.BinDir, "postgres")); err == nil {
			args = append(args, "-p", postgres)
		}
	}
	cmd := s.command(ctx, "pg_ctl", args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Start()
	if err == nil {
		exited := make(chan error, 1)
		starting.Add(1)
		go func() {
			exited <- cmd.Wait()
			starting.Done()
		}()
		if err = s.awaitStart(exited, launched); err == nil {
			return nil
		}
	}
	if msg := strings.TrimSpace(out.String()); msg != "" {
		err = fmt.Errorf("%w: pg_ctl: %s", err, oneLine(msg))
	}
	if ctx.Err() != nil {
		err = fmt.Errorf("%w (%w)", err, ctx.Err())
	}
	if _, ok := s.Running(); ok {
		stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if serr := s.Stop(stopCtx, "immediate"); serr != nil {
			err = errors.Join(err, serr)
		}
	}
	tail := tailLines(logFile, offset, logTailLines)
	return &ServerError{Op: "starting", DataDir: s.DataDir, Err: err, LogFile: logFile, LogTail: tail, Reason: StartReason(tail)}
}

// starting counts the pg_ctl start processes still running, which Start may return before
// (see awaitStart): [Settle] waits for them.
var starting sync.WaitGroup

// Settle waits, at most limit, until every pg_ctl start that [Server.Start] returned before has
// ended by itself (pg_ctl sees the server up at its next look, within 100 ms): a command that
// exits right after it started a server leaves only that server running. false: some still
// ran at limit.
func Settle(limit time.Duration) bool {
	done := make(chan struct{})
	go func() {
		starting.Wait()
		close(done)
	}()
	select {
	case <-done:
		return true
	case <-time.After(limit):
		return false
	}
}

// startPoll is how often Start looks at postmaster.pid while pg_ctl waits: pg_ctl itself looks
// only every 100 ms.
const startPoll = 5 * time.Millisecond

// awaitStart returns when the server started by pg_ctl start -w is up: pg_ctl has exited (its
// error, nil when it saw the server up), or, first, postmaster.pid says a live postmaster
// started since launched is ready (or a standby that accepts connections), as pg_ctl would see
// at its next look. pg_ctl then ends by itself a moment later; a goroutine reaps it.
func (s *Server) awaitStart(exited <-chan error, launched time.Time) error {
	tick := time.NewTicker(startPoll)
	defer tick.Stop()
	for {
		select {
		case err := <-exited:
			return err
		case <-tick.C:
			p, ok := readPostmasterPID(s.DataDir)
			if ok && (p.Status == "ready" || p.Status == "standby") && p.Started >= launched.Unix() && processAlive(p.PID) {
				return nil
			}
		}
	}
}

// Stop runs pg_ctl stop in mode "smart", "fast" or "immediate" and waits until the postmaster is
// gone. A server that is not running is not an error.
func (s *Server) Stop(ctx context.Context, mode string) error {
	switch mode {
	case "smart", "fast", "immediate":
	default:
		return fmt.Errorf("while stopping PostgreSQL in data directory %q: unknown shutdown mode %q", s.DataDir, mode)
	}
	pid, ok := s.Running()
	if !ok {
		return nil
	}
	dataDir, err := filepath.Abs(s.DataDir)
	if err != nil {
		return fmt.Errorf("while stopping PostgreSQL in data directory %q: %w", s.DataDir, err)
	}
	secs := timeoutSeconds(ctx, s.StopTimeout, 60*time.Second)
	cmd := s.command(ctx, "pg_ctl", "stop", "-D", dataDir, "-m", mode, "-w", "-t", strconv.Itoa(secs))
	out, err := cmd.CombinedOutput()
	if err != nil {
		if _, ok := s.Running(); !ok {
			return nil
		}
		return fmt.Errorf("while stopping PostgreSQL (pid %d) in data directory %q: %w: %s", pid, s.DataDir, err, oneLine(string(out)))
	}
	// pg_ctl returns once postmaster.pid is gone; the process itself follows a moment later.
	for wait := backoff.New(10*time.Millisecond, 500*time.Millisecond); processAlive(pid); {
		select {
		case <-ctx.Done():
			return fmt.Errorf("while stopping PostgreSQL (pid %d) in data directory %q: %w", pid, s.DataDir, ctx.Err())
		case <-time.After(wait.Next()):
		}
	}
	return nil
}

// postmasterPID holds what postmaster.pid says about a running server.
type postmasterPID struct {
	PID        int
	Port       int
	SocketDir  string // the first unix socket directory as configured (maybe relative), "" for none
	ListenAddr string // the first of listen_addresses ("*" for all), "" for none
	// Listening is true once the server has written SocketDir and ListenAddr: it has created
	// its sockets.
	Listening bool
	Status    string // "starting", "ready", "standby", "stopping" (PostgreSQL 10 and later)
	Started   int64  // when the postmaster started, in seconds since the epoch
}

func readPostmasterPID(dataDir string) (postmasterPID, bool) {
	data, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return postmasterPID{}, false
	}
	lines := strings.Split(string(data), "\n")
	line := func(i int) string {
		if i < len(lines) {
			return strings.TrimSpace(lines[i])
		}
		return ""
	}
	var p postmasterPID
	p.PID, err = strconv.Atoi(line(0))
	if err != nil || p.PID == 0 {
		return postmasterPID{}, false
	}
	if p.PID < 0 { // a standalone backend writes its pid negated
		p.PID = -p.PID
	}
	p.Started, _ = strconv.ParseInt(line(2), 10, 64)
	p.Port, _ = strconv.Atoi(line(3))
	p.SocketDir = line(4)
	p.ListenAddr = line(5)
	p.Status = line(7)
	// The shared memory key (line 7) and the status follow the socket lines: once either is
	// there, an empty socket or listen line means "none", not "not yet".
	p.Listening = line(6) != "" || p.Status != ""
	return p, true
}

// Running returns the postmaster's pid when postmaster.pid names a live process.
func (s *Server) Running() (pid int, ok bool) {
	p, ok := readPostmasterPID(s.DataDir)
	if !ok || !processAlive(p.PID) {
		return 0, false
	}
	return p.PID, true
}

// processAlive reports whether pid is a live process: it exists (even if it belongs to another
// user) and is not a zombie waiting to be reaped.
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	if err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return !errors.Is(err, os.ErrNotExist) || !procMounted()
	}
	// pid (comm) state ...: comm may hold spaces and parentheses, the state follows the last ')'.
	if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) {
		switch stat[i+2] {
		case 'Z', 'X', 'x':
			return false
		}
	}
	return true
}

func procMounted() bool {
	_, err := os.Stat("/proc/self/stat")
	return err == nil
}

// Conn describes the superuser connection to the server, database postgres, without a password:
// over the unix socket where the running server says it listens (postmaster.pid), a relative
// socket directory taken relative to the data directory; over TCP when the server has no unix
// socket (see [LocalHost]). Before the server has created its sockets: SocketDir and Port.
func (s *Server) Conn() Conn {
	c := Conn{Host: s.SocketDir, Port: s.Port, User: s.User, Database: "postgres",
		Params: map[string]string{"application_name": "pgimaged"}}
	if p, ok := readPostmasterPID(s.DataDir); ok {
		if p.Listening {
			var dirs []string
			if p.SocketDir != "" {
				dirs = []string{p.SocketDir}
			}
			c.Host = LocalHost(s.DataDir, dirs, p.ListenAddr, p.Port)
		}
		if p.Port != 0 {
			c.Port = p.Port
		}
	}
	if c.Host == "" {
		c.Host, _ = filepath.Abs(s.DataDir)
	}
	if c.Port == 0 {
		c.Port = 5432
	}
	if c.User == "" {
		if u, err := user.Current(); err == nil {
			c.User = u.Username
		}
	}
	return c.WithTLS(s.TLS, true)
}

func (s *Server) connConfig() (*pgx.ConnConfig, error) { return s.configFor(s.Conn()) }

// configFor is pgx's configuration of c with the server's password.
func (s *Server) configFor(c Conn) (*pgx.ConnConfig, error) {
	cfg, err := pgx.ParseConfigWithOptions(c.DSN(), pgx.ParseConfigOptions{ParseConfigOptions: c.ParseOptions()})
	if err != nil {
		return nil, err
	}
	dropLibpqOnly(cfg.RuntimeParams)
	if s.Password != "" {
		cfg.Password = s.Password
	}
	if cfg.ConnectTimeout == 0 || cfg.ConnectTimeout > 10*time.Second {
		cfg.ConnectTimeout = 10 * time.Second
	}
	return cfg, nil
}

// Connect opens a connection to the server as described by [Server.Conn]. When the unix
// socket refuses the role (the peer line of pg_hba.conf admits only the OS user pgimaged's
// agent runs as: `pgimaged plan` or `status` run by root, say) and a password is known, it
// connects over TCP to the address the server listens on instead, where pg_hba.conf decides.
func (s *Server) Connect(ctx context.Context) (*pgx.Conn, error) {
	cfg, err := s.connConfig()
	if err != nil {
		return nil, fmt.Errorf("while connecting to PostgreSQL in data directory %q: %w", s.DataDir, err)
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil && s.Password != "" && strings.HasPrefix(cfg.Host, "/") && authRefused(err) {
		if tcp, ok := s.tcpConnConfig(); ok {
			c, terr := pgx.ConnectConfig(ctx, tcp)
			if terr == nil {
				return c, nil
			}
			err = fmt.Errorf("%w; over TCP: %w", err, terr)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("while connecting to PostgreSQL in data directory %q: %w", s.DataDir, err)
	}
	return conn, nil
}

// authRefused: the server refused the connection's role or password (SQLSTATE class 28).
func authRefused(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && strings.HasPrefix(pe.Code, "28")
}

// tcpConnConfig is [Server.connConfig] over TCP to the first address the running server
// listens on (a wildcard one meaning loopback); false when it listens on none.
func (s *Server) tcpConnConfig() (*pgx.ConnConfig, bool) {
	p, ok := readPostmasterPID(s.DataDir)
	if !ok || !p.Listening || p.ListenAddr == "" {
		return nil, false
	}
	c := s.Conn()
	c.Host = LocalHost(s.DataDir, nil, p.ListenAddr, p.Port)
	if strings.HasPrefix(c.Host, "/") {
		return nil, false
	}
	cfg, err := s.configFor(c)
	return cfg, err == nil
}

// WaitReady waits until the server accepts connections, as pg_isready does: a server that
// answers, even with an authentication error, is ready; one that says it is starting up or not
// yet consistent is not. A standby with hot_standby = off, which accepts no connection before
// it leaves recovery, is ready as soon as it says so. It connects where the running server says
// it listens (see [Server.Conn]).
//
// The wait ends at once with a [*ServerError] holding the server log's tail when the postmaster
// is gone ([ErrNotRunning]), or when it has created its sockets but the unix socket it named is
// not there ([ErrNoSocket]). A server that does not answer at all within StartTimeout (default
// 60s, pgimaged's pg_ctl_timeout) is an error too; one that answers that it is still recovering
// is waited for as long as ctx allows.
func (s *Server) WaitReady(ctx context.Context) error {
	const op = "waiting for connections to"
	bound := s.StartTimeout
	if bound <= 0 {
		bound = 60 * time.Second
	}
	deadline := time.Now().Add(bound)
	answered := false
	var last error
	wait := backoff.New(20*time.Millisecond, 500*time.Millisecond)
	for {
		p, ok := readPostmasterPID(s.DataDir)
		if !ok || !processAlive(p.PID) {
			return s.failure(op, ErrNotRunning)
		}
		cfg, err := s.connConfig()
		if err != nil {
			return s.failure(op, err)
		}
		cctx, cancel := ctx, context.CancelFunc(func() {})
		if !answered {
			cctx, cancel = context.WithDeadline(ctx, deadline)
		}
		conn, err := pgconn.ConnectConfig(cctx, &cfg.Config)
		cancel()
		if err == nil {
			_ = conn.Close(ctx)
			return nil
		}
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) {
			if pgErr.Code != "57P03" || hotStandbyOff(pgErr) { // 57P03: cannot_connect_now
				return nil
			}
			answered = true
		}
		last = err
		if !answered {
			if err := missingSocket(p, cfg.Host, cfg.Port); err != nil {
				// A server that shuts down (its startup process failed: a recovery target
				// not in the archive) removes its sockets before it exits.
				if exitsWithin(p.PID, socketGoneGrace) {
					return s.failure(op, ErrNotRunning)
				}
				return s.failure(op, err)
			}
			if ctx.Err() == nil && !time.Now().Before(deadline) {
				return s.failure(op, fmt.Errorf("no answer from PostgreSQL at %s within %s (pg_ctl_timeout): %w", where(cfg.Host, cfg.Port), bound, last))
			}
		}
		select {
		case <-ctx.Done():
			return s.failure(op, fmt.Errorf("%w; last attempt: %w", ctx.Err(), last))
		case <-time.After(wait.Next()):
		}
	}
}

// hotStandbyOff reports the answer of a server in recovery with hot_standby = off (14 and
// later, messages in English): it accepts no connection before it leaves recovery, so waiting
// for one gains nothing.
func hotStandbyOff(err *pgconn.PgError) bool {
	return err.Code == "57P03" && strings.Contains(err.Detail, "Hot standby mode is disabled")
}

// socketGoneGrace is how long WaitReady gives a server whose unix socket is gone to exit, as
// one that shuts down does, before it reports the socket missing.
const socketGoneGrace = time.Second

// exitsWithin reports whether process pid is gone within limit.
func exitsWithin(pid int, limit time.Duration) bool {
	for end := time.Now().Add(limit); processAlive(pid); {
		if !time.Now().Before(end) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// missingSocket reports a server that has created its sockets (postmaster.pid says so) while
// the unix socket at host and port is not there: nothing will make it appear.
func missingSocket(p postmasterPID, host string, port uint16) error {
	if !p.Listening || !strings.HasPrefix(host, "/") {
		return nil
	}
	socket := filepath.Join(host, ".s.PGSQL."+strconv.Itoa(int(port)))
	if _, err := os.Stat(socket); !errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return fmt.Errorf("%w: %s does not exist although the server (pid %d) has created its sockets; "+
		"was it removed, or does unix_socket_directories name another place (postmaster.pid says %q)?",
		ErrNoSocket, socket, p.PID, p.SocketDir)
}

func where(host string, port uint16) string {
	if strings.HasPrefix(host, "/") {
		return "unix socket " + filepath.Join(host, ".s.PGSQL."+strconv.Itoa(int(port)))
	}
	return net.JoinHostPort(host, strconv.Itoa(int(port)))
}

// WaitPromoted waits until the server has left recovery (pg_is_in_recovery() is false), as a
// point-in-time restore does when it reaches its target and promotes. A recovery that has
// paused (at its target under PostgreSQL's default recovery_target_action = 'pause', or for a
// setting lower than on the primary) never ends by itself: WaitPromoted then fails at once with
// [ErrRecoveryPaused], leaving the server running.
func (s *Server) WaitPromoted(ctx context.Context) error {
	return s.poll(ctx, "waiting for the end of recovery of", nil, func(ctx context.Context, conn *pgx.Conn) (bool, error) {
		// pg_is_wal_replay_paused() is also true while a pause is only requested (14 and
		// later); pg_get_wal_replay_pause_state() tells a pause that has happened.
		paused := "pg_get_wal_replay_pause_state() = 'paused'"
		switch v := serverVersionNum(conn); {
		case v > 0 && v < 100000:
			paused = "pg_is_xlog_replay_paused()"
		case v > 0 && v < 140000:
			paused = "pg_is_wal_replay_paused()"
		}
		var inRecovery, isPaused bool
		var replayed string
		err := conn.QueryRow(ctx, "SELECT pg_is_in_recovery(), CASE WHEN pg_is_in_recovery() THEN "+paused+" ELSE false END, "+
			"COALESCE(CASE WHEN pg_is_in_recovery() THEN "+replayLSN(conn)+"::text END, '')").
			Scan(&inRecovery, &isPaused, &replayed)
		switch {
		case err != nil:
			return false, err
		case isPaused:
			return false, permanent{fmt.Errorf("%w %s, replayed up to %s, and will not end by itself: at a recovery target "+
				"this is PostgreSQL's default recovery_target_action = 'pause'; a bootstrap needs recovery_target_action = 'promote' "+
				"(the server log below says where and why it paused)", ErrRecoveryPaused, recoveryTarget(ctx, conn), replayed)}
		case inRecovery:
			return false, errors.New("still in recovery")
		}
		return true, nil
	})
}

// recoveryTarget describes the recovery target the server runs with: "at its target
// (recovery_target_name = 'x')", or "with no recovery target" when none is set.
func recoveryTarget(ctx context.Context, conn *pgx.Conn) string {
	var targets []string
	rows, err := conn.Query(ctx, "SELECT name, setting FROM pg_settings WHERE name IN "+
		"('recovery_target', 'recovery_target_lsn', 'recovery_target_name', 'recovery_target_time', 'recovery_target_xid') "+
		"AND setting <> '' ORDER BY name")
	if err == nil {
		for rows.Next() {
			var name, setting string
			if rows.Scan(&name, &setting) == nil {
				targets = append(targets, name+" = "+QuoteConfValue(setting))
			}
		}
		rows.Close()
	}
	switch {
	case err != nil || rows.Err() != nil:
		return ""
	case len(targets) == 0:
		return "with no recovery target"
	}
	return "at its target (" + strings.Join(targets, ", ") + ")"
}

func replayLSN(conn *pgx.Conn) string {
	if v := serverVersionNum(conn); v > 0 && v < 100000 {
		return "pg_last_xlog_replay_location()"
	}
	return "pg_last_wal_replay_lsn()"
}

// WaitStreaming waits until a standby receives or replays WAL: its WAL receiver reports
// "streaming", or the replay position moves. A server that is not in recovery fails at once
// with [ErrNotInRecovery]. A standby restoring from an archive where no new WAL arrives never
// moves; bound the wait with ctx.
func (s *Server) WaitStreaming(ctx context.Context) error {
	firstLSN := ""
	// Without hot standby there is no connection to ask; the WAL receiver's process title
	// ("walreceiver streaming 0/3000148") tells.
	offline := func(err error) bool {
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || !hotStandbyOff(pgErr) {
			return false
		}
		p, ok := readPostmasterPID(s.DataDir)
		return ok && walReceiverStreaming(p.PID)
	}
	return s.poll(ctx, "waiting for WAL to stream into", offline, func(ctx context.Context, conn *pgx.Conn) (bool, error) {
		lsn := replayLSN(conn)
		var inRecovery bool
		var status, replayed string
		err := conn.QueryRow(ctx, "SELECT pg_is_in_recovery(), "+
			"COALESCE((SELECT status FROM pg_stat_wal_receiver LIMIT 1), ''), "+
			"COALESCE("+lsn+"::text, '')").Scan(&inRecovery, &status, &replayed)
		switch {
		case err != nil:
			return false, err
		case !inRecovery:
			return false, permanent{ErrNotInRecovery}
		case status == "streaming":
			return true, nil
		case firstLSN == "":
			firstLSN = replayed
		case replayed != "" && replayed != firstLSN:
			return true, nil
		}
		return false, fmt.Errorf("WAL receiver status %q, replayed up to %q", status, replayed)
	})
}

// permanent marks an error that ends a poll at once.
type permanent struct{ error }

func (p permanent) Unwrap() error { return p.error }

// A poll looks again after pollFirst, then twice as late each time, at most every pollMax: a
// check is one query on a connection kept open, cheap enough to repeat, while each pause adds
// to the time until a standby is known to stream.
const (
	pollFirst = 10 * time.Millisecond
	pollMax   = 50 * time.Millisecond
)

// poll runs check on a connection until it reports done, the postmaster dies, check returns a
// permanent error, or ctx ends; when there is no connection, offline (if set) may report done. Connection failures are retried, except authentication errors
// and a missing database, which no amount of waiting fixes.
func (s *Server) poll(ctx context.Context, op string, offline func(error) bool, check func(context.Context, *pgx.Conn) (bool, error)) error {
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			_ = conn.Close(context.WithoutCancel(ctx))
		}
	}()
	var last error
	wait := backoff.New(pollFirst, pollMax)
	for {
		if _, ok := s.Running(); !ok {
			return s.failure(op, ErrNotRunning)
		}
		if conn == nil {
			c, err := s.Connect(ctx)
			var pgErr *pgconn.PgError
			switch {
			case errors.As(err, &pgErr) && (strings.HasPrefix(pgErr.Code, "28") || pgErr.Code == "3D000"):
				return s.failure(op, err)
			case err != nil && offline != nil && offline(err):
				return nil
			case err != nil:
				last = err
			default:
				conn = c
			}
		}
		if conn != nil {
			done, err := check(ctx, conn)
			var p permanent
			switch {
			case errors.As(err, &p):
				return s.failure(op, p.error)
			case err == nil && done:
				return nil
			case err != nil:
				last = err
				if conn.IsClosed() || isConnError(err) {
					_ = conn.Close(ctx)
					conn = nil
				}
			}
		}
		select {
		case <-ctx.Done():
			if last == nil {
				return s.failure(op, ctx.Err())
			}
			return s.failure(op, fmt.Errorf("%w; last: %w", ctx.Err(), last))
		case <-time.After(wait.Next()):
		}
	}
}

func isConnError(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Severity == "FATAL" || pgErr.Code == "57P01" || strings.HasPrefix(pgErr.Code, "08")
	}
	return true
}

func serverVersionNum(conn *pgx.Conn) int {
	n, err := ParseServerVersion("(PostgreSQL) " + conn.PgConn().ParameterStatus("server_version"))
	if err != nil {
		return 0
	}
	return n
}

func (s *Server) failure(op string, err error) error {
	return &ServerError{Op: op, DataDir: s.DataDir, Err: err, LogFile: s.logFile(), LogTail: s.LogTail(logTailLines)}
}

// LogTail returns the last n lines of the server log. When that log ends by saying the
// messages went to the logging collector, the end of the collector's current stderr file
// follows it.
func (s *Server) LogTail(n int) []string {
	lines := tailLines(s.logFile(), 0, n)
	redirected := false
	for _, l := range lines[max(0, len(lines)-2):] {
		redirected = redirected || strings.Contains(l, "redirecting log output to logging collector process")
	}
	if f := CollectorLogs(s.DataDir)["stderr"]; redirected && f != "" && f != s.logFile() {
		lines = append(lines, tailLines(f, 0, n)...)
	}
	return lines[max(0, len(lines)-n):]
}

// CollectorLogs are the files PostgreSQL's logging collector writes now, by format ("stderr",
// "csvlog", "jsonlog"), as current_logfiles in the data directory names them (made absolute
// against it); none when the collector is off.
func CollectorLogs(dataDir string) map[string]string {
	b, err := os.ReadFile(filepath.Join(dataDir, "current_logfiles"))
	if err != nil {
		return nil
	}
	files := map[string]string{}
	for _, l := range strings.Split(string(b), "\n") {
		if format, file, ok := strings.Cut(strings.TrimSpace(l), " "); ok && file != "" {
			if !filepath.IsAbs(file) {
				file = filepath.Join(dataDir, file)
			}
			files[format] = file
		}
	}
	return files
}

// tailLines returns the last n lines of path after byte offset from (at most 64 KiB of it).
func tailLines(path string, from int64, n int) []string {
	f, err := os.Open(path)
	if err != nil || n <= 0 {
		return nil
	}
	defer f.Close()
	const window = 64 << 10
	size := fileSize(path)
	start := max(from, size-window)
	if start > size {
		start = 0
	}
	data, err := io.ReadAll(io.NewSectionReader(f, start, size-start))
	if err != nil {
		return nil
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if start > from && len(lines) > 0 {
		lines = lines[1:] // the first line is probably cut
	}
	if len(lines) == 1 && lines[0] == "" {
		return nil
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// EnsureRoles is [EnsureRoles] over the server's own connection ([Server.Connect]: where the
// server listens, with Password when pg_hba.conf asks for one).
func (s *Server) EnsureRoles(ctx context.Context, superuser, replication Role, rewind ...Role) error {
	conn, err := s.Connect(ctx)
	if err != nil {
		return fmt.Errorf("while connecting to create the superuser and replication roles: %w", err)
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	return ensureRoles(ctx, conn, superuser, replication, rewind...)
}

// Checkpoint runs CHECKPOINT on the server (as the superuser, over [Server.Connect]): every
// dirty buffer is written and synced now, so that a base backup taken next, even with a
// spread checkpoint, has next to nothing left to write. Only for a server pgimaged itself has
// just bootstrapped: on someone else's busy primary, an immediate checkpoint is their choice.
func (s *Server) Checkpoint(ctx context.Context) error {
	conn, err := s.Connect(ctx)
	if err != nil {
		return fmt.Errorf("while connecting to run a checkpoint: %w", err)
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	// Every connection reads pg_authid, and the first reads of the role rows just written set
	// their hint bits, dirtying a page again after the checkpoint: read them all first, so
	// that the checkpoint writes those pages as they will stay.
	if _, err := conn.Exec(ctx, "SELECT count(*) FROM pg_catalog.pg_authid"); err != nil {
		return fmt.Errorf("while reading the roles before a checkpoint in %q: %w", s.DataDir, err)
	}
	if _, err := conn.Exec(ctx, "CHECKPOINT"); err != nil {
		return fmt.Errorf("while running a checkpoint in %q: %w", s.DataDir, err)
	}
	return nil
}

// walReceiverStreaming reports whether a child of the postmaster is a WAL receiver whose process
// title says it streams.
func walReceiverStreaming(postmaster int) bool {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return false
	}
	parent := strconv.Itoa(postmaster)
	for _, e := range ents {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		fields := strings.Fields(string(stat[i+1:]))
		if len(fields) < 2 || fields[1] != parent {
			continue
		}
		title, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil {
			continue
		}
		if t := string(title); strings.Contains(t, "walreceiver") && strings.Contains(t, "streaming") {
			return true
		}
	}
	return false
}

// LogSince returns the last n lines of the log file at path written after byte offset from
// (at most 64 KiB of it); LogSize is the offset its end is at now.
func LogSince(path string, from int64, n int) []string { return tailLines(path, from, n) }

// LogSize is the size of the log file at path (0 if there is none): see [LogSince].
func LogSize(path string) int64 { return fileSize(path) }
