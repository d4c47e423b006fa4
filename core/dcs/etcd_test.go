package dcs_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/pgimaged/pgimaged/core/dcs"
	"github.com/pgimaged/pgimaged/internal/testenv"
)

// One etcd serves every test of the package, each on its own scope; TestMain stops it.
var etcdServer struct {
	once sync.Once
	proc *etcdProcess
	err  error
}

// etcdEndpoint starts the package's etcd on free loopback ports on first use.
func etcdEndpoint(t *testing.T) string {
	t.Helper()
	bin := testenv.LookPath(t, "etcd")
	etcdServer.once.Do(func() {
		etcdServer.proc, etcdServer.err = launchEtcd(bin, etcdOptions{})
	})
	if etcdServer.err != nil {
		t.Fatalf("starting etcd: %v", etcdServer.err)
	}
	return etcdServer.proc.endpoint
}

func stopEtcd() {
	if etcdServer.proc != nil {
		etcdServer.proc.stop()
	}
}

// etcdProcess is an etcd started on free loopback ports; stop ends it and removes its data.
type etcdProcess struct {
	cmd      *exec.Cmd
	dir      string
	endpoint string // client URL
	exited   chan struct{}
}

// etcdOptions change how launchEtcd starts etcd.
type etcdOptions struct {
	// scheme of the client URL; "" is http.
	scheme string
	// flags are added to etcd's command line, such as its TLS files.
	flags []string
	// health asks etcd's /health endpoint; nil is http.DefaultClient.
	health *http.Client
}

// launchEtcd starts etcd and waits until it is healthy. It tries again a few times, as a free
// port may be taken between probing and binding.
func launchEtcd(bin string, opts etcdOptions) (*etcdProcess, error) {
	var err error
	for range 3 {
		var p *etcdProcess
		if p, err = startEtcd(bin, opts); err == nil {
			return p, nil
		}
	}
	return nil, err
}

func startEtcd(bin string, opts etcdOptions) (*etcdProcess, error) {
	if opts.scheme == "" {
		opts.scheme = "http"
	}
	if opts.health == nil {
		opts.health = http.DefaultClient
	}
	dir, err := os.MkdirTemp("", "pgimaged-etcd-")
	if err != nil {
		return nil, err
	}
	clientPort, peerPort := freePort(), freePort()
	clientURL := fmt.Sprintf("%s://127.0.0.1:%d", opts.scheme, clientPort)
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", peerPort)
	log, err := os.Create(filepath.Join(dir, "etcd.log"))
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	defer log.Close()
	args := []string{
		"--name=pgimaged-test", "--data-dir=" + filepath.Join(dir, "data"),
		"--listen-client-urls=" + clientURL, "--advertise-client-urls=" + clientURL,
		"--listen-peer-urls=" + peerURL, "--initial-advertise-peer-urls=" + peerURL,
		"--initial-cluster=pgimaged-test=" + peerURL,
		"--logger=zap", "--log-level=error",
	}
	cmd := exec.Command(bin, append(args, opts.flags...)...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	p := &etcdProcess{cmd: cmd, dir: dir, endpoint: clientURL, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.exited) }()
	end := time.Now().Add(deadline)
	for time.Now().Before(end) {
		select {
		case <-p.exited:
			out, _ := os.ReadFile(log.Name())
			os.RemoveAll(dir)
			return nil, fmt.Errorf("etcd exited: %s", out)
		case <-time.After(100 * time.Millisecond):
		}
		if healthy(opts.health, clientURL) {
			return p, nil
		}
	}
	p.stop()
	return nil, fmt.Errorf("etcd at %s not healthy after %s", clientURL, deadline)
}

func healthy(client *http.Client, url string) bool {
	resp, err := client.Get(url + "/health")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode == http.StatusOK && strings.Contains(string(b), `"true"`)
}

// stop kills etcd and removes its data directory.
func (p *etcdProcess) stop() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.exited
	os.RemoveAll(p.dir)
}

// freePort returns a loopback TCP port that nothing listens on.
func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

var scopeSeq atomic.Int64

// uniqueScope names a scope no other test uses.
func uniqueScope(t *testing.T) string {
	r := strings.NewReplacer("/", "_", " ", "_")
	return fmt.Sprintf("%s-%d", r.Replace(t.Name()), scopeSeq.Add(1))
}

func rawClient(t *testing.T, endpoint string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// revokeScopeLeases revokes the leases of the keys under scope, as etcd does when they expire.
func revokeScopeLeases(t *testing.T, endpoint, scope string) {
	t.Helper()
	cli := rawClient(t, endpoint)
	resp, err := cli.Get(t.Context(), "/service/"+scope+"/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	revoked := 0
	for _, kv := range resp.Kvs {
		if kv.Lease == 0 {
			continue
		}
		if _, err := cli.Revoke(t.Context(), clientv3.LeaseID(kv.Lease)); err != nil {
			t.Fatalf("revoking lease of %s: %v", kv.Key, err)
		}
		revoked++
	}
	if revoked == 0 {
		t.Fatal("no lease to revoke")
	}
}

func TestEtcdUnreachable(t *testing.T) {
	const password = "s3cret-pw"
	ops := []struct {
		name string
		cfg  func(*dcs.EtcdConfig)
		do   func(ctx context.Context, s dcs.Store) (held bool, err error)
	}{
		{name: "TryInitialize", do: func(ctx context.Context, s dcs.Store) (bool, error) { return s.TryInitialize(ctx) }},
		{name: "AcquireLeader", do: func(ctx context.Context, s dcs.Store) (bool, error) { return s.AcquireLeader(ctx, "node1") }},
		{name: "PutMember", do: func(ctx context.Context, s dcs.Store) (bool, error) {
			err := s.PutMember(ctx, dcs.Member{Name: "node1"})
			return err == nil, err
		}},
		{name: "Cluster", do: func(ctx context.Context, s dcs.Store) (bool, error) {
			_, err := s.Cluster(ctx)
			return err == nil, err
		}},
		{
			name: "TryInitialize with credentials",
			cfg:  func(c *dcs.EtcdConfig) { c.Username, c.Password = "root", password },
			do:   func(ctx context.Context, s dcs.Store) (bool, error) { return s.TryInitialize(ctx) },
		},
	}
	for _, op := range ops {
		t.Run(op.name, func(t *testing.T) {
			cfg := dcs.EtcdConfig{
				Endpoints:      []string{fmt.Sprintf("127.0.0.1:%d", freePort())},
				DialTimeout:    500 * time.Millisecond,
				RequestTimeout: time.Second,
			}
			if op.cfg != nil {
				op.cfg(&cfg)
			}
			s, err := dcs.OpenEtcd(t.Context(), cfg, "batman", testLogger(t))
			if err != nil {
				t.Fatalf("OpenEtcd does not contact etcd, yet: %v", err)
			}
			defer s.Close()
			held, err := op.do(t.Context(), s)
			if held || !errors.Is(err, dcs.ErrUnavailable) {
				t.Fatalf("%s against a closed port: %v, %v; want false and ErrUnavailable", op.name, held, err)
			}
			t.Logf("%s: %v", op.name, err)
			if strings.Contains(err.Error(), password) {
				t.Errorf("error reveals the password: %v", err)
			}
			if err := s.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	}
}

func TestEtcdConfigMasksPassword(t *testing.T) {
	cfg := dcs.EtcdConfig{Endpoints: []string{"127.0.0.1:2379"}, Username: "root", Password: "s3cret-pw"}
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		if got := fmt.Sprintf(format, cfg); strings.Contains(got, "s3cret-pw") {
			t.Errorf("%s shows the password: %s", format, got)
		}
	}
}

func TestOpenEtcdRefuses(t *testing.T) {
	cases := []struct {
		name  string
		cfg   dcs.EtcdConfig
		scope string
	}{
		{name: "no endpoints", cfg: dcs.EtcdConfig{}, scope: "batman"},
		{name: "empty endpoint", cfg: dcs.EtcdConfig{Endpoints: []string{""}}, scope: "batman"},
		{name: "ttl under a second", cfg: dcs.EtcdConfig{Endpoints: []string{"127.0.0.1:2379"}, TTL: time.Millisecond}, scope: "batman"},
		{name: "password without user", cfg: dcs.EtcdConfig{Endpoints: []string{"127.0.0.1:2379"}, Password: "x"}, scope: "batman"},
		{name: "scope with a slash", cfg: dcs.EtcdConfig{Endpoints: []string{"127.0.0.1:2379"}}, scope: "bat/man"},
		{name: "empty scope", cfg: dcs.EtcdConfig{Endpoints: []string{"127.0.0.1:2379"}}, scope: ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if s, err := dcs.OpenEtcd(t.Context(), tc.cfg, tc.scope, nil); err == nil {
				s.Close()
				t.Fatal("OpenEtcd succeeded")
			}
		})
	}
}

// TestEtcdReadsPatroniCluster reads keys laid out and written as Patroni writes them.
func TestEtcdReadsPatroniCluster(t *testing.T) {
	endpoint := etcdEndpoint(t)
	scope := uniqueScope(t)
	cli := rawClient(t, endpoint)
	lease, err := cli.Grant(t.Context(), 30)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = cli.Revoke(context.Background(), lease.ID) })
	prefix := "/service/" + scope + "/"
	puts := []struct {
		key, value string
		lease      bool
	}{
		{key: "initialize", value: "7301234567890123456"},
		{key: "config", value: `{"ttl":30,"loop_wait":10}`},
		{key: "history", value: `[]`},
		{key: "optime/leader", value: "67109208"},
		{key: "leader", value: "pg0", lease: true},
		{key: "members/pg0", value: fixture(t, "patroni2-master.json"), lease: true},
		{key: "members/pg1", value: fixture(t, "patroni3-replica-clonefrom.json"), lease: true},
		{key: "members/pg2", value: fixture(t, "patroni-legacy-url.txt"), lease: true},
	}
	for _, p := range puts {
		var opts []clientv3.OpOption
		if p.lease {
			opts = append(opts, clientv3.WithLease(lease.ID))
		}
		if _, err := cli.Put(t.Context(), prefix+p.key, p.value, opts...); err != nil {
			t.Fatal(err)
		}
	}

	s, err := dcs.OpenEtcd(t.Context(), dcs.EtcdConfig{Endpoints: []string{endpoint}, TTL: 2 * time.Second}, scope, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := cluster(t, s)
	if got := c.SystemIdentifier(); got != "7301234567890123456" {
		t.Errorf("system identifier: %q", got)
	}
	if got := memberNames(c); strings.Join(got, ",") != "pg0,pg1,pg2" {
		t.Errorf("members: %v, want pg0,pg1,pg2", got)
	}
	leader, ok := c.LeaderMember()
	if !ok || !leader.IsPrimary() || leader.Role != "master" || leader.ConnURL != "postgres://10.0.0.1:5432/postgres" {
		t.Errorf("leader member: %+v (%v), want pg0 as a primary", leader, ok)
	}
	if pg1, _ := c.Member("pg1"); pg1.IsPrimary() || !pg1.CloneFrom() || !pg1.IsRunning() {
		t.Errorf("pg1: %+v, want a running replica tagged clonefrom", pg1)
	}
	if pg2, _ := c.Member("pg2"); pg2.ConnURL != "postgres://10.0.0.3:5432/postgres" {
		t.Errorf("pg2 (legacy URL value): %+v", pg2)
	}
	if tryInitialize(t, s) {
		t.Error("TryInitialize won over Patroni's system identifier")
	}
	if acquireLeader(t, s, "node1") {
		t.Error("AcquireLeader took Patroni's leader key")
	}
}

func fixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// TestEtcdHistoryPatroni: the history key is Patroni's, both ways: pgimaged reads what Patroni
// wrote (lines copied from a history file without a timestamp too), and Patroni 3.0.2's
// patronictl shows what pgimaged appended.
func TestEtcdHistoryPatroni(t *testing.T) {
	endpoint := etcdEndpoint(t)
	scope := uniqueScope(t)
	cli := rawClient(t, endpoint)
	const patroni = `[[1,50331808,"no recovery target specified","2026-12-06T10:00:00.123456+01:00","pg1"],[2,83886240,"no recovery target specified"]]`
	if _, err := cli.Put(t.Context(), "/service/"+scope+"/history", patroni); err != nil {
		t.Fatal(err)
	}
	s, err := dcs.OpenEtcd(t.Context(), dcs.EtcdConfig{Endpoints: []string{endpoint}, TTL: 2 * time.Second}, scope, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	h := cluster(t, s).History
	want := []dcs.TimelineSwitch{
		{Timeline: 2, LSN: 50331808, Reason: "no recovery target specified", Time: time.Date(2026, 12, 6, 9, 0, 0, 123456000, time.UTC), NewLeader: "pg1"},
		{Timeline: 3, LSN: 83886240, Reason: "no recovery target specified"},
	}
	if !reflect.DeepEqual(h.Switches, want) {
		t.Fatalf("Patroni's history read as\n%+v\nwant\n%+v", h.Switches, want)
	}
	sw := dcs.TimelineSwitch{Timeline: 4, LSN: 100663456, Reason: "switchover", Time: time.Date(2026, 12, 6, 20, 0, 0, 0, time.UTC), OldLeader: "pg1", NewLeader: "pg2"}
	if err := s.AppendTimelineSwitch(t.Context(), h, sw); err != nil {
		t.Fatal(err)
	}
	ctl := testenv.LookPath(t, "patronictl")
	conf := filepath.Join(t.TempDir(), "patronictl.yml")
	if err := os.WriteFile(conf, []byte("etcd3:\n  hosts: "+strings.TrimPrefix(endpoint, "http://")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(t.Context(), ctl, "-c", conf, "history", scope, "--format", "json").CombinedOutput()
	if err != nil {
		t.Fatalf("patronictl history: %v\n%s", err, out)
	}
	var rows []map[string]any
	if err := json.Unmarshal(out, &rows); err != nil {
		t.Fatalf("patronictl history -f json: %v\n%s", err, out)
	}
	if len(rows) != 3 {
		t.Fatalf("patronictl shows %d switches, want 3:\n%s", len(rows), out)
	}
	last := rows[2]
	if last["TL"] != 3.0 || last["LSN"] != 100663456.0 || last["Reason"] != "switchover" ||
		last["Timestamp"] != "2026-12-06T20:00:00.000000+00:00" || last["New Leader"] != "pg2" {
		t.Errorf("patronictl shows the appended switch as %v", last)
	}
	// The table, which refuses lines of another width than its five columns.
	out, err = exec.CommandContext(t.Context(), ctl, "-c", conf, "history", scope).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "pg2") {
		t.Errorf("patronictl history: %v\n%s", err, out)
	}
}
