package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgimaged/pgimaged/internal/pgtest"
	"github.com/pgimaged/pgimaged/internal/testenv"
)

// startProcess starts a real client (HAProxy, Prometheus) as the test's own process, in its own
// process group, killed when the test ends.
func startProcess(t *testing.T, name string, args ...string) *syncBuffer {
	t.Helper()
	cmd := exec.Command(name, args...)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		if t.Failed() {
			t.Logf("%s output:\n%s", filepath.Base(name), out.String())
		}
	})
	return out
}

// httpStatus is the status code of a GET, 0 when the request failed.
func httpStatus(url string) int {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// recoveryVia connects through addr's port and reports pg_is_in_recovery(); ok false when no
// session could be made.
func recoveryVia(port int, password string) (inRecovery, ok bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg, err := pgx.ParseConfig(fmt.Sprintf("host=127.0.0.1 port=%d user=postgres dbname=postgres sslmode=disable", port))
	if err != nil {
		return false, false
	}
	cfg.Password = password
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return false, false
	}
	defer conn.Close(context.Background())
	if err := conn.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&inRecovery); err != nil {
		return false, false
	}
	return inRecovery, true
}

// TestAgentAPIBehindHAProxyAndPrometheus puts two members behind a real HAProxy that checks their
// HTTP APIs as it checks Patroni's, and has a real Prometheus scrape their metrics.
func TestAgentAPIBehindHAProxyAndPrometheus(t *testing.T) {
	haproxy := testenv.LookPath(t, "haproxy", "/usr/sbin")
	prometheus := testenv.LookPath(t, "prometheus")
	c := fileCluster(t)
	api1, api2 := pgtest.FreePort(t), pgtest.FreePort(t)
	// One member listens on loopback, the other on every address with a connect_address.
	n1 := c.member(t, "node1", fmt.Sprintf("api {\n  listen = \"127.0.0.1:%d\"\n}", api1))
	n2 := c.member(t, "node2", fmt.Sprintf("api {\n  listen = \"0.0.0.0:%d\"\n  connect_address = \"127.0.0.1:%d\"\n}", api2, api2))
	agents := startInTurn(t, n1, n2)
	waitStreaming(t, n1, "node2")

	// The member keys carry api_url, as Patroni's do.
	st, err := status(t, n1)
	if err != nil {
		t.Fatal(err)
	}
	wantURL := map[string]string{"node1": fmt.Sprintf("http://127.0.0.1:%d/patroni", api1), "node2": fmt.Sprintf("http://127.0.0.1:%d/patroni", api2)}
	for _, m := range st.Members {
		if m.APIURL != wantURL[m.Name] {
			t.Errorf("member %s publishes api_url %q, want %q", m.Name, m.APIURL, wantURL[m.Name])
		}
	}

	base1, base2 := fmt.Sprintf("http://127.0.0.1:%d", api1), fmt.Sprintf("http://127.0.0.1:%d", api2)
	waitFor(t, guard, "node1's API to answer /primary with 200 and node2's /replica with 200", agents, func() bool {
		return httpStatus(base1+"/primary") == 200 && httpStatus(base2+"/replica") == 200
	})
	for url, want := range map[string]int{
		base1 + "/replica": 503, base2 + "/primary": 503, base2 + "/master": 503, base1 + "/read-only": 200,
		base2 + "/read-only": 200, base1 + "/health": 200, base2 + "/health": 200, base2 + "/readiness": 200,
		base1 + "/liveness": 200, base2 + "/replica?lag=16MB": 200, base1 + "/cluster": 200,
	} {
		if got := httpStatus(url); got != want {
			t.Errorf("GET %s: %d, want %d", url, got, want)
		}
	}

	// HAProxy sends sessions to whichever member answers its health check with 200.
	work := workDir(t)
	front, replicas, stats := pgtest.FreePort(t), pgtest.FreePort(t), pgtest.FreePort(t)
	hcfg := writeFile(t, work, "haproxy.cfg", fmt.Sprintf(`global
    maxconn 100

defaults
    mode tcp
    timeout connect 5s
    timeout client 1m
    timeout server 1m
    timeout check 5s

frontend stats
    mode http
    bind 127.0.0.1:%[7]d
    stats enable
    stats uri /stats

listen primary
    bind 127.0.0.1:%[1]d
    option httpchk OPTIONS /primary
    http-check expect status 200
    default-server inter 300ms fall 2 rise 1 on-marked-down shutdown-sessions
    server node1 127.0.0.1:%[3]d check port %[4]d
    server node2 127.0.0.1:%[5]d check port %[6]d

listen replicas
    bind 127.0.0.1:%[2]d
    option httpchk OPTIONS /replica
    http-check expect status 200
    default-server inter 300ms fall 2 rise 1 on-marked-down shutdown-sessions
    server node1 127.0.0.1:%[3]d check port %[4]d
    server node2 127.0.0.1:%[5]d check port %[6]d
`, front, replicas, n1.port, api1, n2.port, api2, stats), 0o600)
	startProcess(t, haproxy, "-db", "-f", hcfg)
	// Wait until HAProxy's checks have marked the backends (its stats page says so), then
	// every session through the primary frontend must reach the primary.
	waitFor(t, guard, "HAProxy to mark node1 up for primary and node2 up for replicas", agents, func() bool {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/stats;csv", stats))
		if err != nil {
			return false
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		up := map[string]bool{}
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Split(line, ",")
			if len(f) > 17 {
				up[f[0]+"/"+f[1]] = f[17] == "UP"
			}
		}
		return up["primary/node1"] && !up["primary/node2"] && up["replicas/node2"] && !up["replicas/node1"]
	})
	for i := range 5 {
		inRecovery, ok := recoveryVia(front, c.superPass)
		if !ok || inRecovery {
			t.Errorf("session %d through HAProxy's primary frontend: connected %v, pg_is_in_recovery() = %v; want the primary", i, ok, inRecovery)
		}
		inRecovery, ok = recoveryVia(replicas, c.superPass)
		if !ok || !inRecovery {
			t.Errorf("session %d through HAProxy's replica frontend: connected %v, pg_is_in_recovery() = %v; want a replica", i, ok, inRecovery)
		}
	}

	// Prometheus scrapes both members; node2 cloned with basebackup, node1 cloned nothing.
	pcfg := writeFile(t, work, "prometheus.yml", fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: pgimaged
    static_configs:
      - targets: ['127.0.0.1:%d', '127.0.0.1:%d']
`, api1, api2), 0o600)
	promPort := pgtest.FreePort(t)
	startProcess(t, prometheus, "--config.file="+pcfg, "--storage.tsdb.path="+filepath.Join(work, "tsdb"),
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", promPort))
	type series struct {
		Metric map[string]string `json:"metric"`
		Value  []any             `json:"value"`
	}
	var got []series
	query := func(q string) []series {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/api/v1/query?query=%s", promPort, url.QueryEscape(q)))
		if err != nil {
			return nil
		}
		defer resp.Body.Close()
		var body struct {
			Status string `json:"status"`
			Data   struct {
				Result []series `json:"result"`
			} `json:"data"`
		}
		if json.NewDecoder(resp.Body).Decode(&body) != nil || body.Status != "success" {
			return nil
		}
		return body.Data.Result
	}
	waitFor(t, guard, "Prometheus to have scraped both members", agents, func() bool {
		return len(query(`up{job="pgimaged"} == 1`)) == 2
	})
	got = query("pgimaged_clone_attempts_total")
	if len(got) != 1 {
		t.Fatalf("pgimaged_clone_attempts_total: %d series, want node2's alone: %+v", len(got), got)
	}
	m := got[0].Metric
	if m["member"] != "node2" || m["method"] != "basebackup" || m["scope"] != c.scope || len(got[0].Value) != 2 || got[0].Value[1] != "1" {
		t.Errorf("pgimaged_clone_attempts_total = %+v, want node2's one basebackup attempt", got[0])
	}
	if p := query(`pgimaged_primary == 1`); len(p) != 1 || p[0].Metric["member"] != "node1" {
		t.Errorf("pgimaged_primary == 1: %+v, want node1 alone", p)
	}
}

// postReinit sends POST /reinit with basic auth (user "" for none) and returns the status code.
func postReinit(t *testing.T, base, user, password, body string) int {
	t.Helper()
	code, _ := post(t, base+"/reinit", user, password, body)
	return code
}

// TestAPIReinit: POST /reinit, as patronictl and scripts written for Patroni send it, re-clones a
// replica with the methods asked for; the leader refuses, and so does a request without the
// API's credentials.
func TestAPIReinit(t *testing.T) {
	c := fileCluster(t)
	api1, api2 := pgtest.FreePort(t), pgtest.FreePort(t)
	block := func(port int) string {
		return fmt.Sprintf("api {\n  listen = \"127.0.0.1:%d\"\n  username = \"ops\"\n  password = \"s3cret-api\"\n}", port)
	}
	n1 := c.member(t, "node1", block(api1))
	n2 := c.member(t, "node2", block(api2))
	agents := startInTurn(t, n1, n2)
	waitStreaming(t, n1, "node2")
	base1, base2 := fmt.Sprintf("http://127.0.0.1:%d", api1), fmt.Sprintf("http://127.0.0.1:%d", api2)
	waitFor(t, guard, "node1's API to answer /primary with 200", agents, func() bool { return httpStatus(base1+"/primary") == 200 })

	marker := filepath.Join(n2.dataDir, "placed-before-reinit")
	if err := os.WriteFile(marker, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := postReinit(t, base1, "ops", "s3cret-api", `{}`); got != http.StatusServiceUnavailable {
		t.Errorf("POST /reinit on the leader: %d, want 503", got)
	}
	if got := postReinit(t, base2, "", "", `{}`); got != http.StatusUnauthorized {
		t.Errorf("POST /reinit without credentials: %d, want 401", got)
	}
	if got := postReinit(t, base2, "ops", "wrong", `{}`); got != http.StatusUnauthorized {
		t.Errorf("POST /reinit with a wrong password: %d, want 401", got)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("a refused reinit touched the replica's data directory: %v", err)
	}
	if got := postReinit(t, base2, "ops", "s3cret-api", `{"methods": ["basebackup"]}`); got != http.StatusOK {
		t.Fatalf("POST /reinit on the replica: %d, want 200", got)
	}
	waitFor(t, guard, "node2 to be cloned afresh", agents, func() bool {
		_, err := os.Stat(marker)
		return os.IsNotExist(err)
	})
	waitStreaming(t, n1, "node2")
	if _, err := os.Stat(filepath.Join(n1.dataDir, "PG_VERSION")); err != nil {
		t.Errorf("the leader's data directory was touched: %v", err)
	}
}
