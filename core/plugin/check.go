package plugin

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/pgimaged/pgimaged/core/plugin/host"
	hostproc "github.com/pgimaged/pgimaged/core/plugin/host/proc"
	"github.com/pgimaged/pgimaged/sdk"
)

// CheckResult is one conformance check of [Check].
type CheckResult struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
	// Skipped says why the check could not test what it is about (OK is then true: it found
	// nothing wrong, and proved nothing either); "" for a check that ran.
	Skipped string `json:"skipped,omitempty"`
}

// CheckOptions shape [Check].
type CheckOptions struct {
	// Source, when set, is a password-free libpq connection string to a running primary: the
	// plugin then clones it for real into a temporary directory. SourceEnv is passed along
	// (PGPASSFILE carries the password).
	Source    string
	SourceEnv map[string]string
	// Command and Options are what a method block would give the plugin (its command, and its
	// other attributes): the calls of the checks carry them, so that a plugin with a required
	// option gets as far as running something.
	Command string
	Options sdk.Options
	// BinDir is the PostgreSQL binaries' directory handed to the plugin.
	BinDir        string
	ServerVersion int
	// TempDir is where the temporary data directories go; "" is os.TempDir.
	TempDir string
	// StartTimeout bounds launch, handshake and Describe (0: 30s); CloneTimeout bounds the
	// clone from Source (0: 30 minutes). Grace is how long a cancelled call has to end every
	// process it started (0: KillGrace).
	StartTimeout, CloneTimeout, Grace time.Duration
	Logger                            hclog.Logger
}

// checkMethod is the method label conformance calls carry.
const checkMethod = "pgimaged-check"

// Check runs the conformance checks against the plugin executable at path, whatever language
// it is written in: launch, handshake, mutual TLS, Describe, Validate with bad options, a
// cancelled call of each capability leaving no process, and with opts.Source a real clone. A
// check that cannot run because an earlier one failed is left out; one that ran but could not
// test what it is about (a call that ended before it could be cancelled) says why in Skipped.
func Check(ctx context.Context, path string, opts CheckOptions) []CheckResult {
	var out []CheckResult
	add := func(name string, err error, okDetail string) bool {
		r := CheckResult{Name: name, OK: err == nil, Detail: okDetail}
		if err != nil {
			r.Detail = err.Error()
		}
		out = append(out, r)
		return err == nil
	}
	fi, err := os.Stat(path)
	if err == nil && (!fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0) {
		err = fmt.Errorf("%s is not an executable file (mode %s)", path, fi.Mode())
	}
	if !add("executable", err, path) {
		return out
	}
	inst, err := LaunchFile(ctx, path, opts.StartTimeout, opts.Logger)
	if !add("launch and handshake", err, fmt.Sprintf("protocol %d over gRPC", host.ProtocolVersion)) {
		return out
	}
	defer inst.Kill()
	add("mutual TLS", inst.checkTLS(), "serves the certificate handed to it and requires pgimaged's")
	add("describe", checkDescribe(path, inst.Info), fmt.Sprintf("%s %s, %v", inst.Info.Name, inst.Info.Version, inst.Info.Capabilities))
	add("option schema", errors.Join(inst.Info.Schema.Check()...), fmt.Sprintf("%d options", len(inst.Info.Schema.Options)))
	for _, c := range []sdk.Capability{sdk.CapClone, sdk.CapBootstrap} {
		if inst.Info.Can(c) {
			d, err := inst.checkValidate(ctx, c)
			add("validate bad options ("+string(c)+")", err, d)
			if len(opts.Options) > 0 || opts.Command != "" {
				d, err := inst.checkGivenOptions(ctx, c, opts)
				add("validate the given options ("+string(c)+")", err, d)
			}
		}
	}
	if err := inst.End(); err != nil {
		add("end", err, "")
		return out
	}
	for _, c := range []sdk.Capability{sdk.CapClone, sdk.CapBootstrap} {
		if !inst.Info.Can(c) {
			continue
		}
		d, skipped, err := checkCancel(ctx, path, c, opts)
		if add("cancelled "+string(c)+" leaves no process", err, d) && skipped != "" {
			out[len(out)-1].Skipped = skipped
		}
	}
	if opts.Source != "" {
		if !inst.Info.Can(sdk.CapClone) {
			add("clone from source", errors.New("the plugin cannot clone"), "")
		} else {
			d, err := checkClone(ctx, path, opts)
			add("clone from source", err, d)
		}
	}
	return out
}

// checkTLS connects to the plugin's socket twice: with pgimaged's certificate, trusting only
// the certificate handed to the plugin (which must succeed), and without a client certificate
// (which the plugin must refuse).
func (i *Instance) checkTLS() error {
	rc := i.gp.ReattachConfig()
	if rc == nil || rc.Addr == nil {
		return errors.New("the plugin's address is unknown")
	}
	if i.issued == nil || hostCertErr != nil {
		return errors.New("no certificate was handed to the plugin")
	}
	dial := func(withCert bool) error {
		cfg := &tls.Config{RootCAs: i.issued, ServerName: "localhost", MinVersion: tls.VersionTLS12,
			NextProtos: []string{"h2"}}
		if withCert {
			cfg.Certificates = []tls.Certificate{hostCert}
		}
		d := &net.Dialer{Timeout: 5 * time.Second}
		conn, err := tls.DialWithDialer(d, rc.Addr.Network(), rc.Addr.String(), cfg)
		if err != nil {
			return err
		}
		defer conn.Close()
		// TLS 1.3 servers refuse a missing client certificate after the handshake: read to see it.
		_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, err = conn.Read(make([]byte, 1))
		var ne net.Error
		if err == nil || errors.As(err, &ne) && ne.Timeout() {
			return nil
		}
		return err
	}
	if err := dial(true); err != nil {
		return fmt.Errorf("a TLS connection trusting only the certificate handed to the plugin (%s) fails: %w; the plugin must serve the certificate and key given in %s", host.PluginTLSEnv, err, host.PluginTLSEnv)
	}
	if err := dial(false); err == nil {
		return errors.New("the plugin accepts connections without a client certificate; it must require the one given in PLUGIN_CLIENT_CERT")
	}
	return nil
}

func checkDescribe(path string, info sdk.Info) error {
	var problems []string
	if info.Name == "" {
		problems = append(problems, "empty name")
	} else if err := NameMatches(FileName(path), info.Name, info.Version); err != nil {
		problems = append(problems, fmt.Sprintf("file is named %s%s but the plugin describes itself as %q (version %q)", Prefix, FileName(path), info.Name, info.Version))
	}
	if info.Version == "" {
		problems = append(problems, "empty version")
	}
	if len(info.Capabilities) == 0 {
		problems = append(problems, "no capability (neither clone nor bootstrap)")
	}
	for _, c := range info.Capabilities {
		if c != sdk.CapClone && c != sdk.CapBootstrap {
			problems = append(problems, fmt.Sprintf("unknown capability %q", c))
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// badOptions are options no plugin accepts: an unknown name, a value that is no value.
var badOptions = sdk.Options{
	{Name: "pgimaged-check-no-such-option", Value: "\x00not a value"},
	{Name: "pgimaged-check-no-such-flag", Flag: true},
}

// checkValidate sends Validate a method with options no plugin knows: the plugin must answer,
// not fail or crash, and stay up.
func (i *Instance) checkValidate(ctx context.Context, c sdk.Capability) (string, error) {
	path := sdk.PathClone
	if c == sdk.CapBootstrap {
		path = sdk.PathBootstrap
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := i.Client.Validate(cctx, sdk.ValidateRequest{Method: checkMethod, Path: path, Options: badOptions})
	if err != nil {
		return "", fmt.Errorf("the Validate call failed instead of returning diagnostics: %w", i.Failure(err))
	}
	if i.Exited() {
		return "", i.Failure(errors.New("the plugin exited after Validate"))
	}
	var errs int
	for _, d := range resp.Diagnostics {
		if d.Severity == sdk.SeverityError {
			errs++
		}
	}
	// A closed schema refuses unknown options before the plugin's Validate sees them: pgimaged
	// reports them from the schema, and the plugin drops what it would say about them.
	var refused int
	if len(i.Info.Schema.Options) > 0 && !i.Info.Schema.Open {
		_, diags := i.Info.Schema.Decode(badOptions)
		for _, d := range diags {
			if d.Severity == sdk.SeverityError {
				refused++
			}
		}
	}
	switch {
	case refused > 0:
		return fmt.Sprintf("its option schema refuses the unknown options (%d error(s), reported by pgimaged before anything runs); Validate answered with %d more error(s)", refused, errs), nil
	case errs == 0:
		// An open schema (or none) lets a plugin pass options it does not know on to its tool;
		// answering is what counts.
		return fmt.Sprintf("answered with no error diagnostic for unknown options (%d warning(s)): its schema is open, it passes options on", len(resp.Diagnostics)), nil
	}
	return fmt.Sprintf("%d error diagnostic(s)", errs), nil
}

// checkGivenOptions checks the options the caller gives (a method block's): the schema and the
// plugin's Validate must accept them.
func (i *Instance) checkGivenOptions(ctx context.Context, c sdk.Capability, opts CheckOptions) (string, error) {
	path := sdk.PathClone
	if c == sdk.CapBootstrap {
		path = sdk.PathBootstrap
	}
	_, diags := i.Info.Schema.Decode(opts.Options)
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := i.Client.Validate(cctx, sdk.ValidateRequest{Method: checkMethod, Path: path, Command: opts.Command, Options: opts.Options})
	if err != nil {
		return "", fmt.Errorf("the Validate call failed instead of returning diagnostics: %w", i.Failure(err))
	}
	var problems []string
	for _, d := range append(diags, resp.Diagnostics...) {
		if d.Severity == sdk.SeverityError {
			problems = append(problems, strings.TrimSuffix(d.Option+": "+d.Summary+": "+d.Detail, ": "))
		}
	}
	if len(problems) > 0 {
		return "", fmt.Errorf("the options given are refused: %s", strings.Join(problems, "; "))
	}
	if opts.Command != "" {
		return fmt.Sprintf("accepted the command and %d option(s)", len(opts.Options)), nil
	}
	return fmt.Sprintf("accepted %d option(s)", len(opts.Options)), nil
}

// checkDirs makes a temporary directory for a check and an empty data directory in it, mode
// 0700. The caller removes dir.
func checkDirs(opts CheckOptions) (dir, data string, err error) {
	dir, err = os.MkdirTemp(opts.TempDir, "pgimaged-check-")
	if err != nil {
		return "", "", fmt.Errorf("while making a temporary directory: %w", err)
	}
	data = filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		_ = os.RemoveAll(dir)
		return "", "", fmt.Errorf("while making a temporary data directory: %w", err)
	}
	return dir, data, nil
}

// checkCancel starts a call of capability c against a source that never answers (a clone) or
// into an empty directory (a bootstrap), cancels it once the plugin runs a process of its own
// (or after a moment), and checks that within the grace period every process the plugin
// started has ended, without pgimaged having to kill any. A call that ends before it can be
// cancelled tests nothing: skipped says why.
func checkCancel(ctx context.Context, path string, c sdk.Capability, opts CheckOptions) (detail, skipped string, err error) {
	dir, data, err := checkDirs(opts)
	if err != nil {
		return "", "", err
	}
	defer os.RemoveAll(dir)
	// A listener that accepts and never answers: a PostgreSQL client waits on it for ever.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", "", fmt.Errorf("while opening a silent source: %w", err)
	}
	defer ln.Close()
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, conn)
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	inst, err := LaunchFile(ctx, path, opts.StartTimeout, opts.Logger)
	if err != nil {
		return "", "", err
	}
	defer inst.Kill()
	cluster := sdk.Cluster{Scope: "pgimaged-check", Name: "check", DataDir: data, BinDir: opts.BinDir, ServerVersion: opts.ServerVersion}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopWatch := inst.watch()
	defer stopWatch()
	type result struct {
		err error
	}
	done := make(chan result, 1)
	go func() {
		var err error
		if c == sdk.CapClone {
			_, err = inst.Client.Clone(cctx, sdk.CloneRequest{Method: checkMethod, Cluster: cluster, Command: opts.Command, Options: opts.Options,
				ConnString: fmt.Sprintf("host=127.0.0.1 port=%d user=pgimaged_check dbname=postgres connect_timeout=3600", port)}, nil)
		} else {
			_, err = inst.Client.Bootstrap(cctx, sdk.BootstrapRequest{Method: checkMethod, Cluster: cluster, Command: opts.Command, Options: opts.Options,
				Superuser: sdk.Credentials{Username: "postgres", Password: "pgimaged-check"}}, nil)
		}
		done <- result{err}
	}()
	// Cancel once the plugin runs something, or after a moment if it runs nothing.
	var running map[int]hostproc.Process
	deadline := time.Now().Add(5 * time.Second)
	ended := false
	for time.Now().Before(deadline) {
		select {
		case r := <-done:
			done <- r
			ended = true
		default:
		}
		if ended {
			break
		}
		if running = inst.track(true); len(running) > 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	grace := opts.Grace
	if grace <= 0 {
		grace = KillGrace
	}
	var callErr error
	select {
	case r := <-done:
		callErr = r.err
	case <-time.After(grace):
		callErr = errors.New("the call had not returned")
	}
	inst.awaitQuiet(grace)
	stopWatch()
	left := inst.track(true)
	detail = "cancelled while it ran " + describeProcs(running)
	if ended {
		why := "it succeeded at once"
		if callErr != nil {
			why = "it failed: " + firstLine(callErr.Error())
		}
		detail, skipped = "", "the call ended before it could be cancelled ("+why+"); give the options a method block would (-option name=value, or -config FILE -method NAME) so that it runs"
	}
	if inst.Exited() && !ended {
		return "", "", inst.Failure(errors.New("the plugin exited when the call was cancelled"))
	}
	if len(left) > 0 {
		endErr := inst.End()
		err := fmt.Errorf("%s %s %s after the call was cancelled; a plugin must end every process it started when its call is cancelled",
			describeProcs(left), stillRunning(len(left)), grace)
		return "", "", errors.Join(err, endErr)
	}
	if err := inst.End(); err != nil {
		return "", "", err
	}
	return detail, skipped, nil
}

func stillRunning(n int) string {
	if n == 1 {
		return "was still running"
	}
	return "were still running"
}

func describeProcs(ps map[int]hostproc.Process) string {
	if len(ps) == 0 {
		return "no process of its own"
	}
	pids := slices.Sorted(maps.Keys(ps))
	parts := make([]string, 0, len(pids))
	for _, pid := range pids {
		parts = append(parts, fmt.Sprintf("%s (pid %d)", ps[pid].Comm, pid))
	}
	return strings.Join(parts, ", ")
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// checkClone clones opts.Source into a temporary directory, checks that PG_VERSION and
// global/pg_control are there, and removes it.
func checkClone(ctx context.Context, path string, opts CheckOptions) (string, error) {
	dir, data, err := checkDirs(opts)
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	inst, err := LaunchFile(ctx, path, opts.StartTimeout, opts.Logger)
	if err != nil {
		return "", err
	}
	defer inst.Kill()
	timeout := opts.CloneTimeout
	if timeout <= 0 {
		timeout = 30 * time.Minute
	}
	start := time.Now()
	cluster := sdk.Cluster{Scope: "pgimaged-check", Name: "check", DataDir: data, BinDir: opts.BinDir, ServerVersion: opts.ServerVersion}
	_, err = inst.Clone(ctx, sdk.CloneRequest{Method: checkMethod, Cluster: cluster, ConnString: opts.Source, Env: opts.SourceEnv,
		Command: opts.Command, Options: opts.Options}, nil, timeout)
	if err != nil {
		return "", fmt.Errorf("clone failed: %w", err)
	}
	var missing []string
	for _, f := range []string{"PG_VERSION", filepath.Join("global", "pg_control")} {
		if _, err := os.Stat(filepath.Join(data, f)); err != nil {
			missing = append(missing, f)
		}
	}
	if len(missing) > 0 {
		return "", fmt.Errorf("the clone reported success but %s has no %s", data, strings.Join(missing, " or "))
	}
	size, _ := dirSize(data)
	return fmt.Sprintf("cloned %d MB in %s into a temporary directory, removed", size>>20, time.Since(start).Round(100*time.Millisecond)), nil
}

func dirSize(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n, err
}
