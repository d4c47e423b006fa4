package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgimaged/pgimaged/internal/pgtest"
	"github.com/pgimaged/pgimaged/internal/testenv"
)

// patronictl runs Patroni's own patronictl with the configuration file cfg and returns its
// result; it is killed after two minutes.
func patronictl(t *testing.T, cfg string, args ...string) result {
	t.Helper()
	bin := testenv.LookPath(t, "patronictl")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"-c", cfg}, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+filepath.Dir(cfg))
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("patronictl %v did not finish within two minutes:\n%s\n%s", args, out.String(), errb.String())
	}
	code := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("running patronictl %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return result{stdout: out.String(), stderr: errb.String(), code: code}
}

// patronictlRow is one row of `patronictl list -f json`.
type patronictlRow struct {
	Member string `json:"Member"`
	Host   string `json:"Host"`
	Role   string `json:"Role"`
	State  string `json:"State"`
	TL     any    `json:"TL"`
}

// TestPatronictl: Patroni's own patronictl, configured for the cluster's etcd, lists the
// members of a pgimaged cluster and re-clones a replica through its agent's API (POST
// /reinitialize) and restarts one (POST /restart); its reinit of the leader is refused with
// Patroni's answer. GET /patroni,
// /history, /config and /standby-leader answer as Patroni's do.
func TestPatronictl(t *testing.T) {
	e := startEtcd(t, 0)
	scope := "patronictl-" + randomHex(t)[:8]
	c := backend{kind: "etcd", endpoint: e.endpoint}.cluster(t, scope)
	api1, api2 := pgtest.FreePort(t), pgtest.FreePort(t)
	block := func(port int) string {
		return fmt.Sprintf("tags = { nofailover = true }\napi {\n  listen = \"127.0.0.1:%d\"\n  username = \"ops\"\n  password = \"s3cret-api\"\n}", port)
	}
	n1, n2 := c.member(t, "node1", block(api1)), c.member(t, "node2", block(api2))
	agents := startInTurn(t, n1, n2)
	waitStreaming(t, n1, "node2")
	base1, base2 := fmt.Sprintf("http://127.0.0.1:%d", api1), fmt.Sprintf("http://127.0.0.1:%d", api2)
	waitFor(t, guard, "node1's /primary and node2's /replica to answer 200", agents, func() bool {
		return httpStatus(base1+"/primary") == 200 && httpStatus(base2+"/replica") == 200
	})

	ctlConfig := patronictlConfig(t, scope, e.endpoint)

	var rows []patronictlRow
	waitFor(t, guard, "patronictl list to show node1 as leader and node2 streaming", agents, func() bool {
		r := patronictl(t, ctlConfig, "list", "-f", "json")
		rows = nil
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &rows) != nil {
			t.Logf("patronictl list: %s", r)
			return false
		}
		roles := map[string]string{}
		for _, m := range rows {
			roles[m.Member] = m.Role + "/" + m.State
		}
		return len(rows) == 2 && roles["node1"] == "Leader/running" && roles["node2"] == "Replica/running"
	})
	for _, m := range rows {
		port := n1.port
		if m.Member == "node2" {
			port = n2.port
		}
		if want := fmt.Sprintf("127.0.0.1:%d", port); m.Host != want || fmt.Sprint(m.TL) != "1" {
			t.Errorf("patronictl list shows %s at %s on timeline %v, want %s on timeline 1", m.Member, m.Host, m.TL, want)
		}
	}
	if r := patronictl(t, ctlConfig, "list"); r.code != 0 || !strings.Contains(r.stdout, "node1") || !strings.Contains(r.stdout, "Leader") {
		t.Errorf("patronictl list (table): %s", r)
	}

	t.Run("GET paths", func(t *testing.T) {
		var primary, replica map[string]any
		getJSON(t, base1+"/patroni", &primary)
		getJSON(t, base2+"/patroni", &replica)
		if primary["state"] != "running" || primary["role"] != "primary" || primary["server_version"] == nil ||
			primary["postmaster_start_time"] == nil || primary["database_system_identifier"] != sysidOf(t, n1) {
			t.Errorf("GET /patroni on the primary: %v", primary)
		}
		if reps, _ := primary["replication"].([]any); len(reps) != 1 || reps[0].(map[string]any)["usename"] != "replicator" ||
			reps[0].(map[string]any)["state"] != "streaming" {
			t.Errorf("GET /patroni on the primary: replication %v, want node2 streaming as replicator", primary["replication"])
		}
		if p, _ := primary["patroni"].(map[string]any); p["scope"] != scope || p["name"] != "node1" || p["version"] == "" {
			t.Errorf("GET /patroni on the primary: patroni %v", primary["patroni"])
		}
		if tags, _ := primary["tags"].(map[string]any); tags["nofailover"] != true {
			t.Errorf("GET /patroni on the primary: tags %v", primary["tags"])
		}
		xlog, _ := replica["xlog"].(map[string]any)
		if replica["role"] != "replica" || xlog["received_location"] == nil || xlog["replayed_location"] == nil || replica["timeline"] != 1.0 {
			t.Errorf("GET /patroni on the replica: %v", replica)
		}
		var history []any
		getJSON(t, base1+"/history", &history)
		if history == nil || len(history) != 0 {
			t.Errorf("GET /history: %v, want []", history)
		}
		var cfg map[string]any
		text := getJSON(t, base2+"/config", &cfg)
		if cfg["name"] != "node2" || cfg["scope"] != scope || strings.Contains(text, "s3cret-api") ||
			strings.Contains(text, n2.superPass) || strings.Contains(text, n2.replPass) {
			t.Errorf("GET /config on node2: %s", text)
		}
		for _, base := range []string{base1, base2} {
			if got := httpStatus(base + "/standby-leader"); got != http.StatusServiceUnavailable {
				t.Errorf("GET %s/standby-leader: %d, want 503 (no standby cluster)", base, got)
			}
		}
	})

	t.Run("config key and reload", func(t *testing.T) {
		// The leader writes Patroni's config key from the configuration it runs with.
		var shown result
		waitFor(t, guard, "patronictl show-config to show the leader's settings", agents, func() bool {
			shown = patronictl(t, ctlConfig, "show-config", scope)
			return shown.code == 0 && strings.Contains(shown.stdout, "loop_wait: 1\n")
		})
		for _, want := range []string{"ttl: 3\n", "maximum_lag_on_failover: 1048576\n", "synchronous_mode: false\n", "use_slots: true\n", "use_pg_rewind: true\n"} {
			if !strings.Contains(shown.stdout, want) {
				t.Errorf("patronictl show-config does not say %q:\n%s", want, shown)
			}
		}
		for _, s := range append(n1.secrets(), "s3cret-api") {
			if strings.Contains(shown.stdout, s) {
				t.Errorf("a password appears in the config key")
			}
		}
		r := patronictl(t, ctlConfig, "reload", scope, "--force")
		for _, m := range []string{"node1", "node2"} {
			if want := "Reload request received for member " + m + " and will be processed within 1 seconds"; r.code != 0 || !strings.Contains(r.stdout, want) {
				t.Errorf("patronictl reload: %s\nwant %q", r, want)
			}
		}
		// A reload that changes loop_wait changes the key.
		editConfig(t, n1, `loop_wait = "1s"`, `loop_wait = "2s"`)
		if r := patronictl(t, ctlConfig, "reload", scope, "node1", "--force"); r.code != 0 || !strings.Contains(r.stdout, "Reload request received for member node1") {
			t.Fatalf("patronictl reload node1: %s", r)
		}
		waitFor(t, guard, "patronictl show-config to show loop_wait 2 after node1's reload", agents, func() bool {
			shown = patronictl(t, ctlConfig, "show-config", scope)
			return shown.code == 0 && strings.Contains(shown.stdout, "loop_wait: 2\n")
		})
	})

	t.Run("reinit of the leader refused", func(t *testing.T) {
		// patronictl itself offers only replicas; the leader's API refuses as Patroni's does.
		if r := patronictl(t, ctlConfig, "reinit", scope, "node1", "--force"); r.code == 0 || !strings.Contains(r.stderr, "No replica among provided members") {
			t.Errorf("patronictl reinit of the leader: %s", r)
		}
		code, text := post(t, base1+"/reinitialize", "ops", "s3cret-api", `{"force": true}`)
		if code != http.StatusServiceUnavailable || text != "I am the leader, can not reinitialize" {
			t.Errorf("POST /reinitialize on the leader: %d %q, want 503 and Patroni's answer", code, text)
		}
		if code, _ := post(t, base2+"/reinitialize", "", "", `{}`); code != http.StatusUnauthorized {
			t.Errorf("POST /reinitialize without credentials: %d, want 401", code)
		}
	})

	t.Run("restart", func(t *testing.T) {
		before := postmasterStart(t, n2)
		if r := patronictl(t, ctlConfig, "restart", scope, "node2", "--force"); r.code != 0 || !strings.Contains(r.stdout, "Success: restart on member node2") {
			t.Fatalf("patronictl restart of the replica: %s\nagent:\n%s", r, agents[1].out.String())
		}
		if postmasterStart(t, n2) == before {
			t.Errorf("patronictl restart succeeded but node2's PostgreSQL runs since %s still", before)
		}
		for _, tc := range []struct {
			body string
			code int
			text string
		}{
			{`{"restart_pending": true}`, http.StatusServiceUnavailable, "restart conditions are not satisfied"},
			{`{"role": "replica"}`, http.StatusServiceUnavailable, "restart conditions are not satisfied"},
			{`{"role": "boss"}`, http.StatusBadRequest, "PostgreSQL role should be either primary, standby_leader, or replica"},
		} {
			if code, text := post(t, base1+"/restart", "ops", "s3cret-api", tc.body); code != tc.code || text != tc.text {
				t.Errorf("POST /restart %s on the leader: %d %q, want %d %q", tc.body, code, text, tc.code, tc.text)
			}
		}
		waitStreaming(t, n1, "node2")
	})

	marker := writeFile(t, n2.dataDir, "placed-before-reinit", "x", 0o600)
	r := patronictl(t, ctlConfig, "reinit", scope, "node2", "--force")
	if r.code != 0 || !strings.Contains(r.stdout, "Success: reinitialize for member node2") {
		t.Fatalf("patronictl reinit of the replica: %s\nagent:\n%s", r, agents[1].out.String())
	}
	waitFor(t, guard, "node2 re-cloned after patronictl reinit", agents, func() bool {
		_, err := os.Stat(marker)
		return os.IsNotExist(err)
	})
	waitStreaming(t, n1, "node2")
	if !strings.Contains(agents[1].out.String(), "reinit requested") {
		t.Errorf("node2's agent does not say it carried out a reinit request:\n%s", agents[1].out.String())
	}
}

// getJSON GETs url, decodes its JSON body into v and returns the body.
func getJSON(t *testing.T, url string, v any) string {
	t.Helper()
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b.String())
	}
	if err := json.Unmarshal(b.Bytes(), v); err != nil {
		t.Fatalf("GET %s: not JSON (%v): %s", url, err, b.String())
	}
	return b.String()
}

// post sends POST url with body and basic auth (user "" for none); it returns the status code
// and the body.
func post(t *testing.T, url, user, password, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	c := http.Client{Timeout: 30 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String()
}
