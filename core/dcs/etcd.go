package dcs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/pgimaged/pgimaged/internal/backoff"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// EtcdConfig configures the etcd backend (v3 API). The session is an etcd lease kept alive while
// the store is open; the empty initialize, leader and member keys are attached to it, so they
// vanish at most TTL after their owner stops renewing it.
type EtcdConfig struct {
	// Endpoints are etcd client URLs or host:port pairs, e.g. "127.0.0.1:2379".
	Endpoints []string
	// TTL of the session lease; default 30s. etcd may raise a very short one to its minimum.
	TTL time.Duration
	// Username and Password authenticate when etcd has authentication enabled.
	Username string
	Password string
	// DialTimeout bounds connecting and authenticating; default 5s.
	DialTimeout time.Duration
	// RequestTimeout bounds each request; default 5s. A request that runs out of time fails with
	// ErrUnavailable.
	RequestTimeout time.Duration
	// Namespace is the first element of every key; default "/service", as in Patroni.
	Namespace string
	// CAFile holds the PEM certificates that sign etcd's server certificate; "" trusts the
	// system's roots.
	CAFile string
	// CertFile and KeyFile are a PEM client certificate and its private key, for an etcd that
	// checks client certificates (--client-cert-auth). They are given together.
	CertFile string
	KeyFile  string
}

// Default values of [EtcdConfig].
const (
	DefaultEtcdTTL            = 30 * time.Second
	DefaultEtcdDialTimeout    = 5 * time.Second
	DefaultEtcdRequestTimeout = 5 * time.Second
	DefaultNamespace          = "/service"
)

// String describes the configuration with the password masked.
func (c EtcdConfig) String() string {
	pw := ""
	if c.Password != "" {
		pw = "xxxxx"
	}
	return fmt.Sprintf("etcd{endpoints=%v ttl=%s username=%q password=%q dial_timeout=%s request_timeout=%s namespace=%q ca_file=%q cert_file=%q key_file=%q}",
		c.Endpoints, c.TTL, c.Username, pw, c.DialTimeout, c.RequestTimeout, c.Namespace, c.CAFile, c.CertFile, c.KeyFile)
}

// GoString is String, so %#v does not print the password either.
func (c EtcdConfig) GoString() string { return c.String() }

// usesTLS tells whether the client speaks TLS: a TLS file is given or an endpoint is https://.
func (c EtcdConfig) usesTLS() bool {
	if c.CAFile != "" || c.CertFile != "" || c.KeyFile != "" {
		return true
	}
	return slices.ContainsFunc(c.Endpoints, func(ep string) bool { return EndpointScheme(ep) == "https" })
}

// EndpointScheme is the lower-case scheme of an etcd endpoint, "" for host:port.
func EndpointScheme(ep string) string {
	scheme, _, found := strings.Cut(ep, "://")
	if !found {
		return ""
	}
	return strings.ToLower(scheme)
}

// tlsConfig reads the TLS files; it is nil when the client does not speak TLS.
func (c EtcdConfig) tlsConfig() (*tls.Config, error) {
	if !c.usesTLS() {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("while reading the etcd CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("while reading the etcd CA file %q: no PEM certificate in it", c.CAFile)
		}
		tc.RootCAs = pool
	}
	if c.CertFile != "" {
		pair, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("while loading the etcd client certificate %q with key %q: %w", c.CertFile, c.KeyFile, err)
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	return tc, nil
}

func (c EtcdConfig) withDefaults() EtcdConfig {
	if c.TTL == 0 {
		c.TTL = DefaultEtcdTTL
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = DefaultEtcdDialTimeout
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = DefaultEtcdRequestTimeout
	}
	if c.Namespace == "" {
		c.Namespace = DefaultNamespace
	}
	return c
}

// OpenEtcd opens a session on scope in etcd. It does not contact etcd: the connection is made by
// the first call that needs it, and the lease by the first call that writes a session-bound key,
// so a store that cannot reach etcd reports ErrUnavailable from its calls and may be retried.
//
// The client speaks TLS (1.2 or later) when a TLS file is given or an endpoint is https://;
// OpenEtcd reads the files, so a store opened later picks up renewed certificates. A failed
// handshake (etcd refuses the client certificate, or CAFile does not sign etcd's) leaves etcd
// unreachable: calls report ErrUnavailable with the reason.
func OpenEtcd(ctx context.Context, cfg EtcdConfig, scope string, logger hclog.Logger) (Store, error) {
	if err := validName("scope", scope); err != nil {
		return nil, fmt.Errorf("while opening the etcd DCS: %w", err)
	}
	cfg = cfg.withDefaults()
	switch {
	case len(cfg.Endpoints) == 0:
		return nil, errors.New("while opening the etcd DCS: no endpoints")
	case slices.Contains(cfg.Endpoints, ""):
		return nil, errors.New("while opening the etcd DCS: an endpoint is empty")
	case cfg.TTL < time.Second:
		return nil, fmt.Errorf("while opening the etcd DCS: ttl %s is shorter than 1s", cfg.TTL)
	case cfg.DialTimeout < 0 || cfg.RequestTimeout < 0:
		return nil, errors.New("while opening the etcd DCS: timeouts must be positive")
	case cfg.Password != "" && cfg.Username == "":
		return nil, errors.New("while opening the etcd DCS: a password is set without a username")
	case (cfg.CertFile == "") != (cfg.KeyFile == ""):
		return nil, errors.New("while opening the etcd DCS: a client certificate and its key go together; one is set without the other")
	}
	if cfg.usesTLS() {
		for _, ep := range cfg.Endpoints {
			if EndpointScheme(ep) == "http" {
				return nil, fmt.Errorf("while opening the etcd DCS: endpoint %q is plain HTTP although TLS is in use; write https:// or host:port", ep)
			}
		}
	}
	tc, err := cfg.tlsConfig()
	if err != nil {
		return nil, fmt.Errorf("while opening the etcd DCS: %w", err)
	}
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	base, cancel := context.WithCancel(context.WithoutCancel(ctx))
	return &etcdStore{
		cfg:        cfg,
		tls:        tc,
		prefix:     path.Clean("/"+cfg.Namespace+"/"+scope) + "/",
		log:        logger.With("dcs", "etcd", "scope", scope),
		base:       base,
		cancel:     cancel,
		lostSignal: lostSignal{ch: make(chan struct{})},
	}, nil
}

type etcdStore struct {
	cfg    EtcdConfig
	tls    *tls.Config // nil: plain text
	prefix string      // "/service/<scope>/"
	log    hclog.Logger
	base   context.Context // lives until Close: the client, the keepalive and watchers
	cancel context.CancelFunc

	mu         sync.Mutex
	cli        *clientv3.Client
	lease      clientv3.LeaseID // 0 until granted
	closed     bool
	lostSignal // closed when the lease is lost or the store closed

	// connErr is the latest reason gRPC gave for not reaching etcd, such as a refused
	// certificate; nil after a call that succeeded. The etcd client reports a call that ran out
	// of time with the bare context error, without it.
	connErr atomic.Pointer[string]
}

var _ Store = (*etcdStore)(nil)

func (s *etcdStore) key(rel string) string { return s.prefix + rel }

// client returns the connection, making it on first use.
func (s *etcdStore) client(ctx context.Context) (*clientv3.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.clientLocked(ctx)
}

func (s *etcdStore) clientLocked(ctx context.Context) (*clientv3.Client, error) {
	if s.closed {
		return nil, ErrClosed
	}
	if s.cli != nil {
		return s.cli, nil
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   s.cfg.Endpoints,
		DialTimeout: s.cfg.DialTimeout,
		Username:    s.cfg.Username,
		Password:    s.cfg.Password,
		TLS:         s.tls,
		Context:     s.base,
		Logger:      zap.NewNop(),
		DialOptions: []grpc.DialOption{grpc.WithChainUnaryInterceptor(s.noteConnError)},
	})
	if err != nil {
		return nil, fmt.Errorf("while connecting to etcd: %w", s.classify(ctx, err))
	}
	s.cli = cli
	return cli, nil
}

// session returns the client and this store's lease according to mode (0 when there is none).
func (s *etcdStore) session(ctx context.Context, mode sessionMode) (*clientv3.Client, clientv3.LeaseID, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cli, err := s.clientLocked(ctx)
	if err != nil {
		return nil, 0, err
	}
	if s.isLost() {
		if mode == sessionOptional {
			return cli, 0, nil
		}
		return nil, 0, ErrSessionLost
	}
	if s.lease != 0 || mode == sessionOptional {
		return cli, s.lease, nil
	}
	if mode == sessionExisting {
		return nil, 0, ErrNotHeld
	}
	octx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	ttl := int64(math.Ceil(s.cfg.TTL.Seconds()))
	grant, err := cli.Grant(octx, ttl)
	if err != nil {
		return nil, 0, fmt.Errorf("while granting a session lease: %w", s.classify(ctx, err))
	}
	kactx, kacancel := context.WithCancel(s.base)
	ka, err := cli.KeepAlive(kactx, grant.ID)
	if err != nil {
		kacancel()
		_, _ = cli.Revoke(octx, grant.ID)
		return nil, 0, fmt.Errorf("while keeping the session lease alive: %w", s.classify(ctx, err))
	}
	s.lease = grant.ID
	s.log.Debug("session started", "lease", fmt.Sprintf("%x", int64(grant.ID)), "ttl", grant.TTL)
	go s.keepAlive(ka, grant.ID, kacancel)
	return cli, grant.ID, nil
}

// keepAlive drains the lease's keepalive responses; the channel closes when the lease could not be
// renewed within its TTL, or on Close.
func (s *etcdStore) keepAlive(ka <-chan *clientv3.LeaseKeepAliveResponse, id clientv3.LeaseID, cancel context.CancelFunc) {
	defer cancel()
	for range ka {
	}
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if !closed {
		s.log.Warn("session lost: the lease could not be renewed; keys bound to it are no longer held",
			"lease", fmt.Sprintf("%x", int64(id)))
	}
	s.markLost()
}

// noteConnError keeps in connErr why a call could not reach etcd.
func (s *etcdStore) noteConnError(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	err := invoker(ctx, method, req, reply, cc, opts...)
	if err == nil {
		s.connErr.Store(nil)
	} else if st, ok := status.FromError(err); ok {
		if msg, found := strings.CutPrefix(st.Message(), "latest balancer error: "); found {
			s.connErr.Store(&msg)
		}
	}
	return err
}

// classify wraps err as ErrUnavailable when etcd could not be reached in time, or ErrSessionLost
// when the lease is gone. ctx is the caller's: when it ended, err is its own affair.
func (s *etcdStore) classify(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if ctx != nil && ctx.Err() != nil {
		return err
	}
	if errors.Is(err, rpctypes.ErrLeaseNotFound) {
		s.markLost()
		return fmt.Errorf("%w: %w", ErrSessionLost, err)
	}
	if !unavailable(err) {
		return err
	}
	at := strings.Join(s.cfg.Endpoints, ",")
	why := ""
	if msg := s.connErr.Load(); msg != nil && !strings.Contains(err.Error(), *msg) {
		why = fmt.Sprintf(" (last connection error: %s)", *msg)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: etcd at %s did not answer in time: %w%s", ErrUnavailable, at, err, why)
	}
	return fmt.Errorf("%w: etcd at %s: %w%s", ErrUnavailable, at, err, why)
}

func unavailable(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, clientv3.ErrNoAvailableEndpoints) {
		return true
	}
	code := codes.OK
	var ee rpctypes.EtcdError
	if errors.As(err, &ee) {
		code = ee.Code()
	} else if st, ok := status.FromError(err); ok {
		code = st.Code()
	}
	switch code {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled, codes.Aborted, codes.ResourceExhausted:
		return true
	}
	return false
}

// do runs one request with the request timeout and classifies its error.
func (s *etcdStore) do(ctx context.Context, what string, fn func(ctx context.Context) error) error {
	octx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	if err := fn(octx); err != nil {
		return fmt.Errorf("while %s: %w", what, s.classify(ctx, err))
	}
	return nil
}

// Cluster reads the scope with one range request.
func (s *etcdStore) Cluster(ctx context.Context) (Cluster, error) {
	const what = "reading the cluster"
	cli, err := s.client(ctx)
	if err != nil {
		return Cluster{}, fmt.Errorf("while %s: %w", what, err)
	}
	var resp *clientv3.GetResponse
	err = s.do(ctx, what, func(ctx context.Context) (err error) {
		resp, err = cli.Get(ctx, s.prefix, clientv3.WithPrefix())
		return err
	})
	if err != nil {
		return Cluster{}, err
	}
	var c Cluster
	var extras []byte
	for _, kv := range resp.Kvs {
		rel := strings.TrimPrefix(string(kv.Key), s.prefix)
		switch rel {
		case "initialize":
			v := string(kv.Value)
			c.Initialize = &v
		case "leader":
			c.Leader = string(kv.Value)
		case historyKey:
			c.History.value, c.History.rev = string(kv.Value), kv.ModRevision
		case SwitchesKey:
			extras = kv.Value
		case SyncKey:
			c.Sync = ParseSync(kv.Value)
		default:
			name, ok := strings.CutPrefix(rel, "members/")
			if !ok || validName("member", name) != nil {
				continue // Patroni's config, history, optime, status, ...
			}
			m, err := parseMember(name, kv.Value)
			if err != nil {
				s.log.Warn("unreadable member", "member", name, "error", err)
			}
			c.Members = append(c.Members, m)
		}
	}
	c.History.Switches = parseHistory([]byte(c.History.value), extras)
	slices.SortFunc(c.Members, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	return c, nil
}

// TryInitialize creates the empty initialize attached to the lease if the key was never created.
func (s *etcdStore) TryInitialize(ctx context.Context) (bool, error) {
	const what = "racing for the initialize key"
	cli, lease, err := s.session(ctx, sessionCreate)
	if err != nil {
		return false, fmt.Errorf("while %s: %w", what, err)
	}
	key := s.key("initialize")
	var resp *clientv3.TxnResponse
	err = s.do(ctx, what, func(ctx context.Context) (err error) {
		resp, err = cli.Txn(ctx).
			If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
			Then(clientv3.OpPut(key, "", clientv3.WithLease(lease))).
			Else(clientv3.OpGet(key)).
			Commit()
		return err
	})
	if err != nil {
		return false, err
	}
	won := resp.Succeeded
	if !won {
		kvs := resp.Responses[0].GetResponseRange().GetKvs()
		won = len(kvs) == 1 && len(kvs[0].Value) == 0 && clientv3.LeaseID(kvs[0].Lease) == lease
	}
	if won {
		s.log.Debug("holding the initialize key")
	}
	return won, nil
}

// SetInitialize replaces the empty initialize attached to this lease with sysid, detached from any
// lease.
func (s *etcdStore) SetInitialize(ctx context.Context, sysid string) error {
	const what = "writing the system identifier into initialize"
	if err := validSystemIdentifier(sysid); err != nil {
		return fmt.Errorf("while %s: %w", what, err)
	}
	cli, lease, err := s.session(ctx, sessionExisting)
	if err != nil {
		return fmt.Errorf("while %s: %w", what, err)
	}
	key := s.key("initialize")
	var resp *clientv3.TxnResponse
	err = s.do(ctx, what, func(ctx context.Context) (err error) {
		resp, err = cli.Txn(ctx).
			If(clientv3.Compare(clientv3.Value(key), "=", ""), clientv3.Compare(clientv3.LeaseValue(key), "=", lease)).
			Then(clientv3.OpPut(key, sysid)).
			Commit()
		return err
	})
	if err != nil {
		return err
	}
	if !resp.Succeeded {
		return fmt.Errorf("while %s: %w", what, ErrNotHeld)
	}
	return nil
}

// ReleaseInitialize deletes initialize if it is empty and attached to this lease.
func (s *etcdStore) ReleaseInitialize(ctx context.Context) error {
	const what = "releasing the initialize key"
	cli, lease, err := s.session(ctx, sessionOptional)
	if err != nil || lease == 0 {
		return wrapIf(what, err)
	}
	key := s.key("initialize")
	return s.do(ctx, what, func(ctx context.Context) error {
		_, err := cli.Txn(ctx).
			If(clientv3.Compare(clientv3.Value(key), "=", ""), clientv3.Compare(clientv3.LeaseValue(key), "=", lease)).
			Then(clientv3.OpDelete(key)).
			Commit()
		return err
	})
}

// AcquireLeader creates leader = name attached to the lease, or renames the leader this lease holds.
func (s *etcdStore) AcquireLeader(ctx context.Context, name string) (bool, error) {
	const what = "acquiring the leader key"
	if err := validName("member", name); err != nil {
		return false, fmt.Errorf("while %s: %w", what, err)
	}
	cli, lease, err := s.session(ctx, sessionCreate)
	if err != nil {
		return false, fmt.Errorf("while %s: %w", what, err)
	}
	key := s.key("leader")
	var resp *clientv3.TxnResponse
	err = s.do(ctx, what, func(ctx context.Context) (err error) {
		resp, err = cli.Txn(ctx).
			If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
			Then(clientv3.OpPut(key, name, clientv3.WithLease(lease))).
			Else(clientv3.OpGet(key)).
			Commit()
		return err
	})
	if err != nil {
		return false, err
	}
	if resp.Succeeded {
		s.log.Debug("holding the leader key", "leader", name)
		return true, nil
	}
	kvs := resp.Responses[0].GetResponseRange().GetKvs()
	if len(kvs) != 1 {
		return false, nil
	}
	if clientv3.LeaseID(kvs[0].Lease) != lease {
		if string(kvs[0].Value) != name {
			return false, nil
		}
		// The key names this member under an earlier session (a lease that outlived an
		// outage): it is this member's, bind it to this session.
		rev := kvs[0].ModRevision
		err = s.do(ctx, what, func(ctx context.Context) (err error) {
			resp, err = cli.Txn(ctx).
				If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).
				Then(clientv3.OpPut(key, name, clientv3.WithLease(lease))).
				Commit()
			return err
		})
		if err == nil && resp.Succeeded {
			s.log.Debug("took over the leader key of this member's earlier session", "leader", name)
		}
		return err == nil && resp.Succeeded, err
	}
	if string(kvs[0].Value) == name {
		return true, nil
	}
	err = s.do(ctx, what, func(ctx context.Context) (err error) {
		resp, err = cli.Txn(ctx).
			If(clientv3.Compare(clientv3.LeaseValue(key), "=", lease)).
			Then(clientv3.OpPut(key, name, clientv3.WithLease(lease))).
			Commit()
		return err
	})
	return err == nil && resp.Succeeded, err
}

// ReleaseLeader deletes leader if it is attached to this lease.
func (s *etcdStore) ReleaseLeader(ctx context.Context) error {
	const what = "releasing the leader key"
	cli, lease, err := s.session(ctx, sessionOptional)
	if err != nil || lease == 0 {
		return wrapIf(what, err)
	}
	key := s.key("leader")
	return s.do(ctx, what, func(ctx context.Context) error {
		_, err := cli.Txn(ctx).
			If(clientv3.Compare(clientv3.LeaseValue(key), "=", lease)).
			Then(clientv3.OpDelete(key)).
			Commit()
		return err
	})
}

// PutMember writes members/<name> attached to the lease.
func (s *etcdStore) PutMember(ctx context.Context, m Member) error {
	what := fmt.Sprintf("publishing member %q", m.Name)
	if err := validName("member", m.Name); err != nil {
		return fmt.Errorf("while %s: %w", what, err)
	}
	value, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("while %s: %w", what, err)
	}
	cli, lease, err := s.session(ctx, sessionCreate)
	if err != nil {
		return fmt.Errorf("while %s: %w", what, err)
	}
	var resp *clientv3.PutResponse
	err = s.do(ctx, what, func(ctx context.Context) (err error) {
		resp, err = cli.Put(ctx, s.key("members/"+m.Name), string(value), clientv3.WithLease(lease), clientv3.WithPrevKV())
		return err
	})
	if err != nil {
		return err
	}
	if prev := resp.PrevKv; prev != nil && clientv3.LeaseID(prev.Lease) != lease {
		s.log.Warn("took over a member key held by another session", "member", m.Name)
	}
	return nil
}

// DeleteMember deletes members/<name> if it is attached to this lease.
func (s *etcdStore) DeleteMember(ctx context.Context, name string) error {
	what := fmt.Sprintf("deleting member %q", name)
	if err := validName("member", name); err != nil {
		return fmt.Errorf("while %s: %w", what, err)
	}
	cli, lease, err := s.session(ctx, sessionOptional)
	if err != nil {
		return fmt.Errorf("while %s: %w", what, err)
	}
	key := s.key("members/" + name)
	exists := false
	err = s.do(ctx, what, func(ctx context.Context) error {
		if lease == 0 {
			resp, err := cli.Get(ctx, key, clientv3.WithCountOnly())
			exists = err == nil && resp.Count > 0
			return err
		}
		resp, err := cli.Txn(ctx).
			If(clientv3.Compare(clientv3.LeaseValue(key), "=", lease)).
			Then(clientv3.OpDelete(key)).
			Else(clientv3.OpGet(key, clientv3.WithCountOnly())).
			Commit()
		exists = err == nil && !resp.Succeeded && resp.Responses[0].GetResponseRange().GetCount() > 0
		return err
	})
	if err == nil && exists {
		err = fmt.Errorf("while %s: %w", what, ErrNotHeld)
	}
	return err
}

// Watch watches the scope's prefix. When the watch breaks (etcd unreachable, history compacted) it
// signals, since a change may have been missed, and watches again from the current revision.
func (s *etcdStore) Watch(ctx context.Context) <-chan struct{} {
	ch := make(chan struct{}, 1)
	cli, err := s.client(ctx)
	if err != nil && errors.Is(err, ErrClosed) {
		close(ch)
		return ch
	}
	var rev int64 // the revision seen last; 0: unknown
	if err == nil {
		_ = s.do(ctx, "reading the current revision", func(ctx context.Context) error {
			resp, err := cli.Get(ctx, s.prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
			if err == nil {
				rev = resp.Header.Revision
			}
			return err
		})
	}
	go s.watchLoop(ctx, ch, rev)
	return ch
}

func (s *etcdStore) watchLoop(ctx context.Context, ch chan struct{}, rev int64) {
	defer close(ch)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(s.base, cancel)
	defer stop()
	notify := func() {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	wait := backoff.New(100*time.Millisecond, 5*time.Second)
	for ctx.Err() == nil {
		cli, err := s.client(ctx)
		if err != nil {
			return // closed
		}
		if rev == 0 {
			err := s.do(ctx, "reading the current revision", func(octx context.Context) error {
				resp, err := cli.Get(octx, s.prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
				if err == nil {
					rev = resp.Header.Revision
				}
				return err
			})
			if err == nil {
				notify() // changes since the watch broke are unknown
				wait.Reset()
			}
		}
		if rev != 0 {
			wctx, wcancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
			for resp := range cli.Watch(wctx, s.prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1)) {
				if err := resp.Err(); err != nil {
					if ctx.Err() == nil {
						s.log.Debug("watch broken; watching again", "error", err)
					}
					rev = 0
					break
				}
				if len(resp.Events) > 0 {
					notify()
					wait.Reset()
				}
				rev = max(rev, resp.Header.Revision)
			}
			wcancel()
			if ctx.Err() != nil {
				return
			}
			rev = 0 // the channel closed: start again from a fresh revision
		}
		t := time.NewTimer(wait.Next())
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// Close revokes the lease, which deletes every key attached to it, and disconnects.
func (s *etcdStore) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	cli, lease := s.cli, s.lease
	s.mu.Unlock()
	defer s.markLost()
	var err error
	if cli != nil && lease != 0 && !s.isLost() {
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.RequestTimeout)
		_, rerr := cli.Revoke(ctx, lease)
		cancel()
		if rerr != nil && !errors.Is(rerr, rpctypes.ErrLeaseNotFound) {
			err = fmt.Errorf("while revoking the session lease (its keys expire within %s): %w", s.cfg.TTL, s.classify(ctx, rerr))
		}
	}
	s.cancel()
	if cli != nil {
		_ = cli.Close()
	}
	if err == nil && lease != 0 {
		s.log.Debug("session closed")
	}
	return err
}

func wrapIf(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("while %s: %w", what, err)
}
