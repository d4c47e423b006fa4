// Package api is the HTTP API of `pgimaged run`: health checks with Patroni's paths and status
// codes (so that HAProxy, keepalived and Kubernetes probes written for Patroni work unchanged),
// the cluster's status as `pgimaged status -json` shows it, and Prometheus metrics. Every
// answer comes from the agent's snapshot ([engine.Agent.Snapshot]); no request waits on
// PostgreSQL or the DCS.
package api

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/pgimaged/pgimaged/core/config"
	"github.com/pgimaged/pgimaged/core/dcs"
	"github.com/pgimaged/pgimaged/core/engine"
)

// Options configure a [Server].
type Options struct {
	Config config.API
	// Snapshot is the member's state; it must be cheap (engine.Agent.Snapshot).
	Snapshot func() engine.Snapshot
	// Status renders a cluster as `pgimaged status -json` does, for / and /cluster.
	Status func(dcs.Cluster) any
	// Metrics, if set, is served on /metrics.
	Metrics *Metrics
	// Liveness is how long after its last cycle the agent's loop still counts as alive.
	Liveness time.Duration
	// Effective, if set, is the configuration in effect with its secrets masked, for GET /config.
	Effective func() any
	// Version is pgimaged's version, shown in the answers' bodies.
	Version string
	Logger  hclog.Logger
}

// Server is the HTTP API.
type Server struct {
	opts  Options
	http  *http.Server
	ln    net.Listener
	mu    sync.RWMutex
	posts map[string]http.Handler
	// deletes are the DELETE handlers, authenticated as posts are.
	deletes map[string]http.Handler
	done    chan struct{}
}

// New prepares the server; [Server.Start] binds and serves.
func New(opts Options) (*Server, error) {
	s := &Server{opts: opts, posts: map[string]http.Handler{}, deletes: map[string]http.Handler{}, done: make(chan struct{})}
	if s.opts.Logger == nil {
		s.opts.Logger = hclog.NewNullLogger()
	}
	s.http = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: s.opts.Logger.StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true})}
	if opts.Config.TLS() {
		tc, err := tlsConfig(opts.Config)
		if err != nil {
			return nil, err
		}
		s.http.TLSConfig = tc
	}
	return s, nil
}

func tlsConfig(c config.API) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("while loading the API's certificate %s and key %s: %w", c.CertFile, c.KeyFile, err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("while reading the API's ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("the API's ca_file %s holds no PEM certificate", c.CAFile)
		}
		tc.ClientCAs, tc.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return tc, nil
}

// HandleAuthenticated registers h for POST requests on path. Requests must carry the
// configured api username and password (basic authentication); without credentials in the
// configuration every such request is refused.
func (s *Server) HandleAuthenticated(path string, h http.Handler) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.posts[path] = h
}

// HandleAuthenticatedDelete registers h for DELETE requests on path, authenticated as
// [Server.HandleAuthenticated]'s.
func (s *Server) HandleAuthenticatedDelete(path string, h http.Handler) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deletes[path] = h
}

// SetCredentials replaces the api username and password that authenticated requests must
// carry (a reload of the configuration changed them).
func (s *Server) SetCredentials(username, password string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opts.Config.Username, s.opts.Config.Password = username, password
}

// Start binds the configured address and serves until [Server.Shutdown].
func (s *Server) Start() error {
	ln, err := net.Listen("tcp", s.opts.Config.Listen)
	if err != nil {
		return fmt.Errorf("while listening on api.listen %s: %w", s.opts.Config.Listen, err)
	}
	s.ln = ln
	go func() {
		defer close(s.done)
		var err error
		if s.http.TLSConfig != nil {
			err = s.http.ServeTLS(ln, "", "")
		} else {
			err = s.http.Serve(ln)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.opts.Logger.Error("the HTTP API stopped", "error", err)
		}
	}()
	s.opts.Logger.Info("HTTP API listening", "address", ln.Addr().String(), "tls", s.http.TLSConfig != nil)
	return nil
}

// Addr is the address the server listens on (after Start).
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Shutdown stops the server, letting requests in flight finish until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.ln == nil {
		return nil
	}
	err := s.http.Shutdown(ctx)
	<-s.done
	return err
}

// healthPaths are the GET/HEAD/OPTIONS paths answered with a status code in Patroni's manner.
var healthPaths = map[string]bool{
	"/": true, "/primary": true, "/master": true, "/leader": true, "/read-write": true,
	"/replica": true, "/read-only": true, "/health": true, "/liveness": true, "/readiness": true,
	"/standby-leader": true, "/standby_leader": true,
	"/sync": true, "/synchronous": true, "/async": true, "/asynchronous": true,
}

// ServeHTTP dispatches a request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Server", "pgimaged")
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
	case http.MethodPost:
		s.authenticated(s.posts, w, r)
		return
	case http.MethodDelete:
		s.authenticated(s.deletes, w, r)
		return
	default:
		http.Error(w, "method not supported", http.StatusNotImplemented)
		return
	}
	path := r.URL.Path
	switch {
	case path == "/metrics" && s.opts.Metrics != nil:
		promhttp.HandlerFor(s.opts.Metrics.Registry(), promhttp.HandlerOpts{}).ServeHTTP(w, r)
	case path == "/cluster":
		s.cluster(w, r)
	case jsonPaths[path]:
		s.serveJSONPath(w, r)
	case healthPaths[path]:
		s.health(w, r)
	default:
		http.Error(w, "not found", http.StatusNotFound)
	}
}

func (s *Server) authenticated(handlers map[string]http.Handler, w http.ResponseWriter, r *http.Request) {
	s.mu.RLock()
	h, c := handlers[r.URL.Path], s.opts.Config
	s.mu.RUnlock()
	if h == nil {
		http.Error(w, "method not supported", http.StatusNotImplemented)
		return
	}
	if c.Username == "" {
		http.Error(w, "requests that change something need api.username and api.password in the configuration", http.StatusForbidden)
		return
	}
	user, pass, ok := r.BasicAuth()
	if !ok || subtle.ConstantTimeCompare([]byte(user), []byte(c.Username)) != 1 ||
		subtle.ConstantTimeCompare([]byte(pass), []byte(c.Password)) != 1 {
		w.Header().Set("WWW-Authenticate", `Basic realm="pgimaged"`)
		http.Error(w, "no or wrong credentials", http.StatusUnauthorized)
		return
	}
	h.ServeHTTP(w, r)
}

// Health is the status code each health path answers for a snapshot, as Patroni's REST API
// does; lag is the query's lag parameter ("" for none).
func Health(path, lag string, snap engine.Snapshot, liveness time.Duration, now time.Time) int {
	code := func(ok bool) int {
		if ok {
			return http.StatusOK
		}
		return http.StatusServiceUnavailable
	}
	primary := snap.Primary()
	replica := snap.Replica()
	if limit, ok := ParseSize(lag); ok && replica {
		// As Patroni: lagging when the leader's position exceeds the replayed one plus the limit.
		if l := snap.Lag(); l > limit {
			replica = false
		}
	}
	switch path {
	case "/", "/primary", "/master", "/leader", "/read-write":
		return code(primary)
	case "/replica":
		return code(replica)
	case "/read-only":
		return code(primary || replica)
	case "/health":
		return code(snap.Running)
	case "/liveness":
		last := snap.LastCycle
		if last.IsZero() {
			last = snap.Started
		}
		return code(snap.Busy || now.Sub(last) <= liveness)
	case "/readiness":
		return code(primary || snap.Replica() && snap.Streaming)
	case "/standby-leader", "/standby_leader":
		return code(standbyLeader(snap))
	case "/sync", "/synchronous":
		return code(snap.Cluster != nil && replica && SyncStandby(snap))
	case "/async", "/asynchronous":
		return code(snap.Cluster != nil && replica && !SyncStandby(snap))
	}
	return http.StatusNotFound
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	snap := s.opts.Snapshot()
	status := Health(r.URL.Path, r.URL.Query().Get("lag"), snap, s.opts.Liveness, time.Now())
	if r.Method != http.MethodGet || r.URL.Path == "/liveness" || r.URL.Path == "/readiness" {
		// HEAD and OPTIONS, and the probes, answer with the status code alone, as Patroni's.
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(status)
		return
	}
	if r.URL.Path == "/" {
		writeJSON(w, status, s.status(snap))
		return
	}
	writeJSON(w, status, s.memberBody(snap))
}

func (s *Server) status(snap engine.Snapshot) any {
	var cl dcs.Cluster
	if snap.Cluster != nil {
		cl = *snap.Cluster
	}
	if s.opts.Status == nil {
		return cl
	}
	out := s.opts.Status(cl)
	if m, ok := out.(map[string]any); ok && snap.Scheduled != nil {
		m["scheduled_switchover"] = ScheduledSwitchover(*snap.Scheduled)
	}
	return out
}

// ScheduledSwitchover is a switchover scheduled for later as Patroni's GET /cluster shows it:
// {"at": ISO 8601, "from": leader, "to": candidate}, each name only when there is one.
func ScheduledSwitchover(r engine.ChangeRequest) map[string]string {
	v := map[string]string{"at": r.ScheduledAt.UTC().Format("2006-01-02T15:04:05.999999-07:00")}
	if r.Leader != "" {
		v["from"] = r.Leader
	}
	if r.Candidate != "" {
		v["to"] = r.Candidate
	}
	return v
}

func (s *Server) cluster(w http.ResponseWriter, r *http.Request) {
	snap := s.opts.Snapshot()
	status := http.StatusOK
	if snap.Cluster == nil {
		status = http.StatusServiceUnavailable
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(status)
		return
	}
	writeJSON(w, status, s.status(snap))
}

// memberBody is the JSON body of a health answer and of GET /patroni, shaped as Patroni's.
func (s *Server) memberBody(snap engine.Snapshot) map[string]any {
	state := snap.State
	switch {
	case snap.Running && snap.Queried:
		state = dcs.StateRunning
	case snap.Running:
		state = dcs.StateStarting
	case state == engine.StateReinitializing:
		state = dcs.StateCreatingReplica // Patroni's state while it re-clones (patronictl reinit --wait waits on it)
	case !snap.Busy:
		state = dcs.StateStopped
	}
	body := map[string]any{
		"state":   state,
		"role":    snap.Role,
		"patroni": map[string]any{"version": s.opts.Version, "scope": snap.Scope, "name": snap.Name},
	}
	if snap.LeaderName == "" {
		body["cluster_unlocked"] = true // as Patroni: present only when no member holds the leader key
	}
	if snap.Paused {
		body["pause"] = true // as Patroni: present only in maintenance mode
	}
	if snap.Failsafe {
		body["failsafe_mode_is_active"] = true // as Patroni: present only while it keeps the primary
	}
	if snap.Role == "" {
		body["role"] = "uninitialized"
	}
	if len(snap.Tags) > 0 {
		body["tags"] = snap.Tags
	}
	if snap.SystemIdentifier != "" {
		body["database_system_identifier"] = snap.SystemIdentifier
	}
	if snap.Progress != nil {
		body["progress"] = snap.Progress // pgimaged's: the bootstrap or clone in flight
	}
	if snap.Running && snap.Queried {
		body["timeline"] = snap.Timeline
		if snap.InRecovery {
			body["role"] = dcs.RoleReplica
			if standbyLeader(snap) {
				body["role"] = dcs.RoleStandbyLeader
			}
			if lag := snap.Lag(); lag >= 0 {
				body["lag"] = lag
			}
			if snap.NotStreaming != "" {
				body["not_streaming"] = snap.NotStreaming // pgimaged's: why its WAL receiver does not stream
			}
		} else {
			body["role"] = dcs.RolePrimary
			body["xlog"] = map[string]any{"location": snap.Position}
		}
		serverBody(body, snap)
	}
	if snap.LastError != "" {
		body["last_error"] = snap.LastError
	}
	return body
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
