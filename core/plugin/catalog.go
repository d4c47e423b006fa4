// Package plugin finds, verifies and launches pgimaged's method plugins: executables named
// pgimaged-plugin-<name> in the plugin directory, spoken to over go-plugin's gRPC transport with
// a versioned handshake and mutual TLS.
package plugin

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"

	"github.com/pgimaged/pgimaged/core/plugin/host"
	hostproc "github.com/pgimaged/pgimaged/core/plugin/host/proc"
	"github.com/pgimaged/pgimaged/sdk"
)

// Prefix is the file name prefix of plugin executables.
const Prefix = "pgimaged-plugin-"

var (
	// ErrNotFound: no plugin of that name in the plugin directory (and no pinned path).
	ErrNotFound = errors.New("plugin not found")
	// ErrChecksumMismatch: the executable's sha256 differs from the pinned one; it was not started.
	ErrChecksumMismatch = errors.New("plugin checksum mismatch")
	// ErrUnsafeDir: the plugin directory (or an executable) can be written by other users.
	ErrUnsafeDir = errors.New("plugin directory is writable by other users")
)

// Pin fixes where a plugin lives and what its executable's sha256 must be. Both are optional.
type Pin struct {
	Path   string
	SHA256 string
}

// Entry is one plugin the catalog knows of.
type Entry struct {
	Name   string `json:"name"`
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
	Pinned bool   `json:"pinned"`
}

// Catalog is the set of plugins available to this node.
type Catalog struct {
	Dir    string
	Pins   map[string]Pin
	Logger hclog.Logger
	// StartTimeout bounds the handshake with a starting plugin; default 30s.
	StartTimeout time.Duration
	// ProcessRecord, if set, is a file where a running call keeps the list of processes the
	// plugin has started (pid, start time, command name), replaced atomically as they change and
	// removed when the call has ended and they are gone. A pgimaged started after one that was
	// killed with SIGKILL passes it to [EndRecorded] before touching the data directory. Empty:
	// no record.
	ProcessRecord string
	// LockFile is the plugin lock file (see [Lock]) that Launch enforces, read at every launch.
	// Empty, or no such file: no lock is enforced.
	LockFile string
}

// packagedDir, set at link time (-X) by packaged builds, is where the package puts the plugins:
// /usr/lib/pgimaged/plugins rather than /usr/bin/plugins.
var packagedDir string

// DefaultDir is plugins/ beside the running pgimaged binary, or the packaged plugin directory
// in a packaged build.
func DefaultDir() string {
	if packagedDir != "" {
		return packagedDir
	}
	exe, err := os.Executable()
	if err != nil {
		return "plugins"
	}
	if r, err := filepath.EvalSymlinks(exe); err == nil {
		exe = r
	}
	return filepath.Join(filepath.Dir(exe), "plugins")
}

// CheckDir refuses a plugin directory that other users could write to: anyone who can replace
// a plugin runs code as the PostgreSQL OS user.
func CheckDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("while checking plugin directory %q: %w", dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("plugin directory %q is not a directory", dir)
	}
	return checkOwnerMode(dir, fi)
}

func checkOwnerMode(path string, fi os.FileInfo) error {
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("%w: %q has mode %04o (group or others may write); run chmod go-w %q", ErrUnsafeDir, path, fi.Mode().Perm(), path)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		if st.Uid != 0 && int(st.Uid) != os.Geteuid() {
			return fmt.Errorf("%w: %q belongs to uid %d, neither root nor this user (uid %d)", ErrUnsafeDir, path, st.Uid, os.Geteuid())
		}
	}
	return nil
}

// List returns every plugin found in the directory plus pinned ones elsewhere, sorted by name.
func (c *Catalog) List() ([]Entry, error) {
	byName := map[string]string{}
	if c.Dir != "" {
		if err := CheckDir(c.Dir); err != nil {
			return nil, err
		}
		des, err := os.ReadDir(c.Dir)
		if err != nil {
			return nil, fmt.Errorf("while reading plugin directory %q: %w", c.Dir, err)
		}
		for _, de := range des {
			name, ok := strings.CutPrefix(de.Name(), Prefix)
			if !ok || name == "" || de.IsDir() {
				continue
			}
			byName[name] = filepath.Join(c.Dir, de.Name())
		}
	}
	for name, pin := range c.Pins {
		if pin.Path != "" {
			byName[name] = pin.Path
		}
	}
	names := slices.Sorted(maps.Keys(byName))
	out := make([]Entry, 0, len(names))
	for _, n := range names {
		sum, err := fileSHA256(byName[n])
		if err != nil {
			return nil, err
		}
		_, pinned := c.Pins[n]
		out = append(out, Entry{Name: n, Path: byName[n], SHA256: sum, Pinned: pinned && c.Pins[n].SHA256 != ""})
	}
	return out, nil
}

// Has reports whether a plugin called name can be found.
func (c *Catalog) Has(name string) bool {
	_, err := c.path(name)
	return err == nil
}

func (c *Catalog) path(name string) (string, error) {
	if pin, ok := c.Pins[name]; ok && pin.Path != "" {
		if _, err := os.Stat(pin.Path); err != nil {
			return "", fmt.Errorf("%w: %s (pinned path %q: %v)", ErrNotFound, name, pin.Path, err)
		}
		return pin.Path, nil
	}
	if c.Dir == "" {
		return "", fmt.Errorf("%w: %s (no plugin directory)", ErrNotFound, name)
	}
	p := filepath.Join(c.Dir, Prefix+name)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%w: %s (looked for %s)", ErrNotFound, name, p)
	}
	return p, nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("while reading plugin %q: %w", path, err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("while reading plugin %q: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Instance is one running plugin process.
type Instance struct {
	Name   string
	Path   string
	Info   sdk.Info
	Client host.Client

	gp      *goplugin.Client
	stderr  *lineRing
	once    sync.Once
	killErr error
	pid     int
	start   uint64 // the plugin process's start time, see proc.go
	sockDir string
	record  string
	logger  hclog.Logger
	// recorded: this instance has written the process record (and may remove it)
	recorded atomic.Bool

	mu   sync.Mutex
	seen map[int]hostproc.Process // processes of the plugin's tree seen during calls (the plugin excluded)

	issued *x509.CertPool // holds only the certificate handed to the plugin (see mtls.go)
}

// Launch verifies and starts the plugin called name and asks it to describe itself. The caller
// must Kill the instance when done with it.
func (c *Catalog) Launch(ctx context.Context, name string) (*Instance, error) {
	path, err := c.path(name)
	if err != nil {
		return nil, err
	}
	if c.Dir != "" && filepath.Dir(path) == filepath.Clean(c.Dir) {
		if err := CheckDir(c.Dir); err != nil {
			return nil, err
		}
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("while checking plugin %q: %w", path, err)
	}
	if err := checkOwnerMode(path, fi); err != nil {
		return nil, err
	}
	var secure *goplugin.SecureConfig
	if pin := c.Pins[name]; pin.SHA256 != "" {
		sum, err := fileSHA256(path)
		if err != nil {
			return nil, err
		}
		if !strings.EqualFold(sum, pin.SHA256) {
			return nil, &ChecksumError{Name: name, Path: path, Got: sum, Want: strings.ToLower(pin.SHA256)}
		}
		want, _ := hex.DecodeString(pin.SHA256)
		secure = &goplugin.SecureConfig{Checksum: want, Hash: sha256.New()}
	}
	locked, err := c.checkLock(name, path)
	if err != nil {
		return nil, err
	}
	if secure == nil {
		secure = locked
	}
	return c.start(ctx, name, path, secure)
}

// start launches the executable at path as the plugin called name, without the catalog's
// checks of where it lives and what it holds, and asks it to describe itself.
func (c *Catalog) start(ctx context.Context, name, path string, secure *goplugin.SecureConfig) (*Instance, error) {
	logger := c.Logger
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	timeout := c.StartTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	tlsConfig, tlsEnv, err := clientTLS()
	if err != nil {
		return nil, err
	}
	// The plugin's socket lives in a directory of this launch's own, removed with the plugin
	// even when the plugin dies without cleaning up, and by the next launch when pgimaged itself
	// was killed.
	sockDir, err := socketDir()
	if err != nil {
		return nil, fmt.Errorf("while creating a socket directory for plugin %s: %w", name, err)
	}
	cmd := exec.Command(path)
	cmd.Env = append(tlsEnv, goplugin.EnvUnixSocketDir+"="+sockDir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	ring := newLineRing(20)
	gp := goplugin.NewClient(&goplugin.ClientConfig{
		HandshakeConfig:  host.Handshake,
		VersionedPlugins: map[int]goplugin.PluginSet{host.ProtocolVersion: {host.PluginName: &host.GRPCPlugin{}}},
		Cmd:              cmd,
		SecureConfig:     secure,
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		TLSConfig:        tlsConfig, // mutual TLS: see mtls.go
		Logger:           logger.Named("plugin").Named(name),
		Stderr:           ring,
		StartTimeout:     timeout,
	})
	inst := &Instance{Name: name, Path: path, gp: gp, stderr: ring, sockDir: sockDir, record: c.ProcessRecord,
		logger: logger.Named("plugin").Named(name), seen: map[int]hostproc.Process{}, issued: tlsConfig.RootCAs}
	rpc, err := gp.Client()
	if cmd.Process != nil {
		inst.pid = cmd.Process.Pid
		if p, ok := hostproc.Read(inst.pid); ok {
			inst.start = p.Start
		}
	}
	if err != nil {
		inst.Kill()
		return nil, fmt.Errorf("while starting plugin %s (%s): %w%s", name, path, err, ring.suffix())
	}
	raw, err := rpc.Dispense(host.PluginName)
	if err != nil {
		inst.Kill()
		return nil, fmt.Errorf("while connecting to plugin %s: %w%s", name, err, ring.suffix())
	}
	client, ok := raw.(host.Client)
	if !ok {
		inst.Kill()
		return nil, fmt.Errorf("plugin %s: unexpected client type %T", name, raw)
	}
	inst.Client = client
	info, err := client.Info(ctx)
	if err != nil {
		inst.Kill()
		return nil, fmt.Errorf("while asking plugin %s to describe itself: %w%s", name, err, ring.suffix())
	}
	inst.Info = info
	return inst, nil
}

// Exited reports whether the plugin process has gone away.
func (i *Instance) Exited() bool { return i.gp.Exited() }

// StderrTail returns the plugin process's last stderr lines (JSON log lines reduced to their message).
func (i *Instance) StderrTail() []string { return i.stderr.lines() }

// Failure explains err from a call to this plugin: a crashed plugin becomes [sdk.ErrPluginShutdown]
// with its last stderr lines.
func (i *Instance) Failure(err error) error {
	if err == nil {
		return nil
	}
	if i.gp.Exited() || errors.Is(err, sdk.ErrPluginShutdown) {
		// give the stderr reader a moment to catch the last lines of a crash
		time.Sleep(50 * time.Millisecond)
		msg := "plugin " + i.Name + " exited during the call"
		if p := i.stderr.panicLine(); p != "" {
			msg = "plugin " + i.Name + " crashed: " + p
		} else if tail := i.stderr.lines(); len(tail) > 0 {
			if len(tail) > 3 {
				tail = tail[len(tail)-3:]
			}
			msg += ": " + strings.Join(tail, " | ")
		}
		return &CrashError{Plugin: i.Name, Tail: i.stderr.lines(), msg: msg}
	}
	return err
}

// CrashError is a plugin process that died during a call.
type CrashError struct {
	Plugin string
	Tail   []string
	msg    string
}

func (e *CrashError) Error() string        { return e.msg }
func (e *CrashError) Is(target error) bool { return target == sdk.ErrPluginShutdown }

// Kill ends the plugin process and every process it started, whatever process group or
// session they moved to, and returns once they are all gone (see [Instance.End]). Safe to call
// twice. A process that survives is logged; use End to get the error.
func (i *Instance) Kill() {
	if err := i.End(); err != nil {
		i.logger.Error("processes of the plugin are still there after being killed", "error", err)
	}
}

// End is Kill with an error: it stops everything the plugin started with SIGSTOP, kills it with
// SIGKILL, asks the plugin to exit (killing it after 2s), then ends whatever of the plugin's
// tree is still there the same way, and waits until each process is gone (at most 10s, then an
// error wrapping [ErrSurvivors] that names those left). It also removes the plugin's socket
// directory and, when all are gone, the process record. Calling it again returns the first
// call's result.
func (i *Instance) End() error {
	i.once.Do(func() {
		i.killErr = i.endAll()
		if i.sockDir != "" {
			removeSocketDir(i.sockDir)
		}
		if i.killErr == nil && i.record != "" && i.recorded.Load() {
			if err := removeRecord(i.record); err != nil {
				i.killErr = err
			}
		}
	})
	return i.killErr
}

// lineRing keeps the last lines written to it.
type lineRing struct {
	mu    sync.Mutex
	n     int
	buf   []string
	carry []byte
	panic string // the first "panic:" or "fatal error:" line, kept even when the stack pushes it out
}

func newLineRing(n int) *lineRing { return &lineRing{n: n} }

func (r *lineRing) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	data := append(r.carry, p...)
	for {
		i := strings.IndexByte(string(data), '\n')
		if i < 0 {
			break
		}
		r.add(string(data[:i]))
		data = data[i+1:]
	}
	r.carry = append([]byte(nil), data...)
	return len(p), nil
}

func (r *lineRing) add(line string) {
	line = strings.TrimSpace(line)
	if line == "" {
		return
	}
	if strings.HasPrefix(line, "{") {
		if m := jsonMessage(line); m != "" {
			line = m
		}
	}
	if r.panic == "" && (strings.HasPrefix(line, "panic: ") || strings.HasPrefix(line, "fatal error: ")) {
		r.panic = line
	}
	r.buf = append(r.buf, line)
	if len(r.buf) > r.n {
		r.buf = r.buf[len(r.buf)-r.n:]
	}
}

func (r *lineRing) lines() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := append([]string(nil), r.buf...)
	if len(r.carry) > 0 {
		out = append(out, string(r.carry))
	}
	return out
}

func (r *lineRing) panicLine() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.panic
}

func (r *lineRing) suffix() string {
	l := r.lines()
	if len(l) == 0 {
		return ""
	}
	if len(l) > 3 {
		l = l[len(l)-3:]
	}
	return " (plugin stderr: " + strings.Join(l, " | ") + ")"
}
