package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/pgimaged/pgimaged/core/api"
	"github.com/pgimaged/pgimaged/core/config"
	"github.com/pgimaged/pgimaged/core/dcs"
	"github.com/pgimaged/pgimaged/core/engine"
	"github.com/pgimaged/pgimaged/core/pg"
)

// reloadWait bounds how long a reload waits for the agent's loop to take it and apply it.
const reloadWait = 2 * time.Minute

// reloadConfig loads file afresh for a running agent, as `run` loads it; when it does not
// validate, its diagnostics as text (file:line:col and the source line) instead.
func reloadConfig(ctx context.Context, file string, logger hclog.Logger) (*config.Config, []string) {
	cfg, diags := config.Load(file)
	if !diags.HasErrors() {
		finishConfig(cfg)
		diags = append(diags, cfg.Require("pgimaged run", "postgresql.listen")...)
	}
	if !diags.HasErrors() {
		diags = append(diags, newNode(cfg, logger).Validate(ctx)...)
	}
	if !diags.HasErrors() {
		return cfg, nil
	}
	var b strings.Builder
	_ = config.WriteDiagnostics(&b, withLockFiles(cfg.Files(), diags), diags, false)
	return nil, []string{strings.TrimSpace(b.String())}
}

// reloadAgent has the agent re-read its configuration file (SIGHUP, POST /reload). A file that
// does not validate is refused whole, and the agent keeps the configuration it has.
func reloadAgent(ctx context.Context, agent *engine.Agent, file string, logger hclog.Logger) dcs.ReloadOutcome {
	cfg, diags := reloadConfig(ctx, file, logger)
	ctx, cancel := context.WithTimeout(ctx, reloadWait)
	defer cancel()
	var out dcs.ReloadOutcome
	var err error
	if diags != nil {
		logger.Error("reload refused: the configuration does not validate; the agent keeps the one it has\n" + strings.Join(diags, "\n"))
		out, err = agent.RefuseReload(ctx, diags)
	} else {
		out, err = agent.Reload(ctx, cfg)
	}
	if err != nil {
		logger.Error("reload not carried out", "error", err)
		return dcs.ReloadOutcome{At: time.Now().UTC(), Invalid: diags != nil, Errors: append(diags, err.Error())}
	}
	return out
}

// reloadOnSIGHUP has the agent reload its configuration file on every SIGHUP until ctx ends.
// (The log file, when there is one, is reopened on SIGHUP as well: see [openLogSink].)
func reloadOnSIGHUP(ctx context.Context, agent *engine.Agent, file string, logger hclog.Logger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-hup:
				logger.Info("SIGHUP: reloading the configuration", "file", file)
				reloadAgent(ctx, agent, file, logger)
			case <-ctx.Done():
				return
			}
		}
	}()
}

// reloadStatus is the HTTP status of a reload's outcome: 202 applied (Patroni's answer), 400
// a configuration that does not validate, 409 a setting that cannot change live, 500 applied
// but PostgreSQL rejected part of it (or a step failed).
func reloadStatus(out dcs.ReloadOutcome) int {
	switch {
	case out.Invalid:
		return http.StatusBadRequest
	case len(out.Refused) > 0:
		return http.StatusConflict
	case len(out.Errors) > 0:
		return http.StatusInternalServerError
	}
	return http.StatusAccepted
}

// reloadHandler is POST /reload, as Patroni's: the agent re-reads its configuration file. The
// answer's body is the outcome as JSON (the member key's pgimaged.reload), its status
// [reloadStatus].
func reloadHandler(agent *engine.Agent, file string, logger hclog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		out := reloadAgent(r.Context(), agent, file, logger)
		b, _ := json.Marshal(out)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(reloadStatus(out))
		_, _ = w.Write(b)
	})
}

// runReload is `pgimaged reload`: the member's agent re-reads its configuration file. Through
// the member's API when it publishes one (POST /reload, with this configuration's api
// credentials), else, for this configuration's own member, by SIGHUP to its agent, whose
// outcome is read back from its member key.
func runReload(ctx context.Context, e *env, args []string) int {
	c, fs := newCommand(e, "reload", "-config FILE [--member NAME] [-json]", true)
	member := fs.String("member", "", "the member whose agent reloads, from any host that reaches the DCS (default: this configuration's member)")
	cfg, code := c.load(e, fs, args)
	if cfg == nil {
		return code
	}
	name := orDefault(*member, cfg.Name)
	if err := dcs.ValidMemberName(name); err != nil {
		return e.failf(exitUsage, "reload --member: %v", err)
	}
	logger := newLogger(e, cfg, orDefault(c.logLevel, "warn"))
	ctx, cancel := context.WithTimeout(ctx, reloadWait+15*time.Second)
	defer cancel()
	cl, err := readCluster(ctx, cfg, logger)
	if err != nil {
		return e.failf(exitFailed, "reload: cannot read the DCS: %v", err)
	}
	m, published := cl.Member(name)
	var out dcs.ReloadOutcome
	switch {
	case published && m.APIURL != "":
		out, err = postReload(ctx, cfg, strings.TrimSuffix(m.APIURL, "/patroni")+"/reload")
	case name == cfg.Name:
		out, err = signalReload(ctx, cfg, logger)
	case !published:
		return e.failf(exitFailed, "reload: the DCS has no member %s running (its agent does not run, or it is not of scope %s)", name, cfg.Scope)
	default:
		return e.failf(exitFailed, "reload: member %s publishes no API (its configuration has no api block): run `pgimaged reload` on its host, or send its agent SIGHUP", name)
	}
	if err != nil {
		return e.failf(exitFailed, "reload of member %s: %v", name, err)
	}
	return reportReload(e, c.jsonOut, name, out)
}

// reportReload prints a reload's outcome and returns the exit code: 0 applied, 1 applied but
// PostgreSQL rejected part of it, 3 the configuration does not validate, 4 refused.
func reportReload(e *env, jsonOut bool, name string, out dcs.ReloadOutcome) int {
	code := exitOK
	switch {
	case out.Invalid:
		code = exitConfig
	case len(out.Refused) > 0:
		code = exitRefused
	case len(out.Errors) > 0:
		code = exitFailed
	}
	if jsonOut {
		writeJSON(e.stdout, out)
		return code
	}
	switch code {
	case exitConfig:
		fmt.Fprintf(e.stderr, "pgimaged: reload of member %s refused: the configuration does not validate; the agent keeps the one it has\n", name)
		for _, d := range out.Errors {
			fmt.Fprintln(e.stderr, d)
		}
		return code
	case exitRefused:
		fmt.Fprintf(e.stderr, "pgimaged: reload of member %s refused; the agent keeps its configuration, nothing was applied:\n", name)
		for _, r := range out.Refused {
			fmt.Fprintf(e.stderr, "  %s\n", r)
		}
		return code
	}
	if len(out.Changed) == 0 {
		fmt.Fprintf(e.stdout, "member %s: configuration reloaded, nothing changed\n", name)
	} else {
		fmt.Fprintf(e.stdout, "member %s: configuration reloaded; changed: %s\n", name, strings.Join(out.Changed, ", "))
	}
	if len(out.Rotated) > 0 {
		fmt.Fprintf(e.stdout, "  password set for roles %s\n", strings.Join(out.Rotated, ", "))
	}
	if len(out.PendingRestart) > 0 {
		fmt.Fprintf(e.stdout, "  pending restart (takes effect when PostgreSQL restarts): %s\n", strings.Join(out.PendingRestart, ", "))
	}
	for _, msg := range out.Errors {
		fmt.Fprintf(e.stderr, "pgimaged: %s\n", msg)
	}
	return code
}

// postReload sends POST /reload to url with this configuration's api credentials and reads the
// outcome from the answer.
func postReload(ctx context.Context, cfg *config.Config, url string) (dcs.ReloadOutcome, error) {
	var out dcs.ReloadOutcome
	client, err := apiClient(cfg.API)
	if err != nil {
		return out, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(nil))
	if err != nil {
		return out, err
	}
	if cfg.API.Username != "" {
		req.SetBasicAuth(cfg.API.Username, cfg.API.Password)
	}
	resp, err := client.Do(req)
	if err != nil {
		return out, fmt.Errorf("while asking the agent's API: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return out, fmt.Errorf("while reading the agent's answer: %w", err)
	}
	if err := json.Unmarshal(body, &out); err != nil || out.At.IsZero() {
		return out, fmt.Errorf("the agent's API answered %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	return out, nil
}

// apiClient is an HTTP client for another member's API: its TLS settings are this
// configuration's api block's (the CA that signs the members' certificates, the client
// certificate they ask for).
func apiClient(a config.API) (*http.Client, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if a.CAFile != "" {
		pem, err := os.ReadFile(a.CAFile)
		if err != nil {
			return nil, fmt.Errorf("while reading the api ca_file: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("the api ca_file %s holds no PEM certificate", a.CAFile)
		}
	}
	if a.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(a.CertFile, a.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("while loading the api certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: tc}, Timeout: reloadWait + 10*time.Second}, nil
}

// signalReload sends SIGHUP to the agent that holds this configuration's data directory and
// waits until its member key publishes the outcome of a reload newer than the signal.
func signalReload(ctx context.Context, cfg *config.Config, logger hclog.Logger) (dcs.ReloadOutcome, error) {
	pid, err := agentPID(cfg.DataDir)
	if err != nil {
		return dcs.ReloadOutcome{}, err
	}
	sent := time.Now() // the agent runs on this host: one clock
	if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
		return dcs.ReloadOutcome{}, fmt.Errorf("while sending SIGHUP to the agent (pid %d): %w", pid, err)
	}
	for {
		cl, err := readCluster(ctx, cfg, logger)
		if err == nil {
			if m, ok := cl.Member(cfg.Name); ok && m.PGImaged != nil && m.PGImaged.Reload != nil && m.PGImaged.Reload.At.After(sent) {
				return *m.PGImaged.Reload, nil
			}
		}
		select {
		case <-ctx.Done():
			return dcs.ReloadOutcome{}, fmt.Errorf("the agent (pid %d) got SIGHUP, but its member key published no outcome in time (its log says what happened)", pid)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// agentPID is the pid of the `pgimaged run` that holds dataDir's lock.
func agentPID(dataDir string) (int, error) {
	b, err := os.ReadFile(pg.LockPath(dataDir))
	if errors.Is(err, os.ErrNotExist) {
		return 0, fmt.Errorf("no agent runs for data directory %s (no lock file %s)", dataDir, pg.LockPath(dataDir))
	} else if err != nil {
		return 0, fmt.Errorf("while reading the lock file of the agent: %w", err)
	}
	var pid int
	var command string
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "pid="); ok {
			pid, _ = strconv.Atoi(v)
		}
		if v, ok := strings.CutPrefix(line, "command="); ok {
			command = v
		}
	}
	if pid <= 0 || command != "pgimaged run" || syscall.Kill(pid, 0) != nil {
		return 0, fmt.Errorf("no agent runs for data directory %s (lock file %s names %q, pid %d)", dataDir, pg.LockPath(dataDir), command, pid)
	}
	return pid, nil
}

// reloaded is what a reload changes outside the engine: the log level (unless the command line
// set it), the log file, the API's credentials.
func reloaded(e *env, logger hclog.Logger, srv *api.Server, levelFlag string) func(*config.Config) {
	return func(cfg *config.Config) {
		if levelFlag == "" {
			logger.SetLevel(hclog.LevelFromString(orDefault(cfg.LogLevel, config.DefaultLogLevel)))
		}
		if e.sink != nil {
			if err := e.sink.retarget(cfg.LogFile); err != nil {
				logger.Error("could not open the new log file; logging goes on where it went", "error", err)
			}
		}
		if srv != nil {
			srv.SetCredentials(cfg.API.Username, cfg.API.Password)
		}
	}
}

// writeReloads says, under status's table, which members' last reload did not take effect whole.
func writeReloads(e *env, cl dcs.Cluster) {
	for _, m := range cl.Members {
		if m.PGImaged == nil || m.PGImaged.Reload == nil || m.PGImaged.Reload.OK() {
			continue
		}
		r := m.PGImaged.Reload
		fmt.Fprintf(e.stdout, "Last reload of %s at %s did not take effect whole:\n", m.Name, r.At.Format(time.RFC3339))
		for _, msg := range append(append([]string{}, r.Refused...), r.Errors...) {
			fmt.Fprintf(e.stdout, "  %s\n", strings.ReplaceAll(msg, "\n", "\n  "))
		}
	}
}
