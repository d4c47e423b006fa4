package engine

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pgimaged/pgimaged/core/dcs"
)

// Failsafe mode (failsafe_mode, Patroni's): while the DCS cannot be reached, the primary that
// held the leader key at the last read keeps answering /primary 200 as long as every other
// member it knew then accepts it over the API (POST /failsafe), asked every loop_wait; the
// acceptance lasts a ttl. A member that does not answer, or answers that it runs as a primary
// itself or that the DCS names another leader, ends it: /primary turns 503, as without
// failsafe_mode. Nothing else changes: PostgreSQL is neither stopped nor demoted, as without
// the DCS pgimaged never acts on the primary; no member can be promoted without the DCS.

// FailsafeAccepted is a member's answer when it accepts the primary (Patroni's).
const FailsafeAccepted = "Accepted"

// FailsafeRequest is the body of POST /failsafe, as Patroni's leader sends it.
type FailsafeRequest struct {
	Name    string `json:"name"`
	ConnURL string `json:"conn_url,omitempty"`
	APIURL  string `json:"api_url,omitempty"`
}

// failsafeState is the primary's failsafe mode as last checked.
type failsafeState struct {
	mu    sync.Mutex
	until time.Time // /primary answers 200 until then
	said  string    // the last outcome logged, so that it is logged once
}

// failsafeActive reports whether failsafe mode keeps this member the primary now.
func (a *Agent) failsafeActive(now time.Time) bool {
	a.failsafe.mu.Lock()
	defer a.failsafe.mu.Unlock()
	return now.Before(a.failsafe.until)
}

func (a *Agent) setFailsafe(until time.Time, said string, args ...any) {
	a.failsafe.mu.Lock()
	a.failsafe.until = until
	changed := said != a.failsafe.said
	a.failsafe.said = said
	a.failsafe.mu.Unlock()
	if changed && said != "" {
		a.Node.logger().Warn(said, args...)
	}
}

// followFailsafe checks, every loop_wait until ctx ends, whether failsafe mode keeps this
// member the primary while the DCS cannot be reached.
func (a *Agent) followFailsafe(ctx context.Context) {
	if !a.Node.Config.FailsafeMode {
		return
	}
	client, err := a.failsafeClient()
	if err != nil {
		a.Node.logger().Error("failsafe mode is off: the API client cannot be made", "error", err)
		return
	}
	go func() {
		for sleepCtx(ctx, a.LoopWait) {
			a.checkFailsafe(ctx, client)
		}
	}()
}

// FailsafeCandidate says whether snap is a primary that failsafe mode may keep: the DCS cannot
// be read now, the last read showed this member holding the leader key, and PostgreSQL runs
// out of recovery. It returns the other members to ask, as the last read knew them, or why not.
func FailsafeCandidate(snap Snapshot) ([]dcs.Member, string) {
	switch {
	case snap.DCSError == "":
		return nil, "the DCS answers"
	case snap.LedAt.IsZero():
		return nil, "this member did not hold the leader key at the last read of the DCS"
	case !snap.Running || !snap.Queried || snap.InRecovery:
		return nil, "PostgreSQL does not run as a primary"
	case snap.Cluster == nil:
		return nil, "no member list was ever read"
	}
	var others []dcs.Member
	for _, m := range snap.Cluster.Members {
		if m.Name != snap.Name {
			others = append(others, m)
		}
	}
	return others, ""
}

func (a *Agent) checkFailsafe(ctx context.Context, client *http.Client) {
	snap := a.Snapshot()
	others, why := FailsafeCandidate(snap)
	if why != "" {
		said := ""
		if a.failsafeActive(time.Now()) {
			said = "failsafe mode ends: " + why
		}
		a.setFailsafe(time.Time{}, said)
		return
	}
	n := a.Node
	body, _ := json.Marshal(FailsafeRequest{Name: n.Config.Name, ConnURL: n.ConnURL(), APIURL: n.APIURL()})
	refused := make([]string, len(others))
	var wg sync.WaitGroup
	for i, m := range others {
		wg.Add(1)
		go func() {
			defer wg.Done()
			refused[i] = a.askFailsafe(ctx, client, m, body)
		}()
	}
	wg.Wait()
	refused = slices.DeleteFunc(refused, func(s string) bool { return s == "" })
	if len(refused) > 0 {
		a.setFailsafe(time.Time{}, "failsafe mode: the DCS cannot be reached and not every member accepts this primary; /primary answers 503",
			"members", strings.Join(refused, "; "))
		return
	}
	a.setFailsafe(time.Now().Add(n.Config.TTL), "failsafe mode: the DCS cannot be reached but every member accepts this primary; /primary keeps answering 200",
		"members", len(others))
}

// askFailsafe POSTs body to member m's /failsafe; "" when it accepts, else why not.
func (a *Agent) askFailsafe(ctx context.Context, client *http.Client, m dcs.Member, body []byte) string {
	target, err := failsafeURL(m.APIURL)
	if err != nil {
		return fmt.Sprintf("%s: %v", m.Name, err)
	}
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return fmt.Sprintf("%s: %v", m.Name, err)
	}
	req.Header.Set("Content-Type", "application/json")
	api := a.Node.Config.API
	req.SetBasicAuth(api.Username, api.Password)
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Sprintf("%s: %v", m.Name, err)
	}
	defer resp.Body.Close()
	text, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
	if resp.StatusCode != http.StatusOK || string(text) != FailsafeAccepted {
		return fmt.Sprintf("%s: %d %s", m.Name, resp.StatusCode, strings.TrimSpace(string(text)))
	}
	return ""
}

// failsafeURL is the /failsafe path of a member's published api_url (…/patroni).
func failsafeURL(apiURL string) (string, error) {
	if apiURL == "" {
		return "", fmt.Errorf("it publishes no api_url")
	}
	u, err := url.Parse(apiURL)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("its api_url %q cannot be read", apiURL)
	}
	u.Path, u.RawQuery = "/failsafe", ""
	return u.String(), nil
}

// failsafeClient is the HTTP client that asks the other members: with the API's own
// certificate and CA when the API uses TLS.
func (a *Agent) failsafeClient() (*http.Client, error) {
	api := a.Node.Config.API
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if api.TLS() {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		cert, err := tls.LoadX509KeyPair(api.CertFile, api.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("while loading the API's certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
		if api.CAFile != "" {
			pem, err := os.ReadFile(api.CAFile)
			if err != nil {
				return nil, fmt.Errorf("while reading the API's ca_file: %w", err)
			}
			pool := x509.NewCertPool()
			pool.AppendCertsFromPEM(pem)
			tc.RootCAs = pool
		}
		tr.TLSClientConfig = tc
	}
	return &http.Client{Transport: tr, Timeout: 3 * time.Second}, nil
}

// FailsafeAnswer is this member's answer to a primary's POST /failsafe, as Patroni's: 502 without
// failsafe_mode; 500 "Running as a leader" when this member runs a primary itself, or when the
// DCS, read just now, names another leader; else 200 "Accepted".
func FailsafeAnswer(enabled, runsPrimary bool, snap Snapshot, from string) (int, string) {
	switch {
	case !enabled:
		return http.StatusBadGateway, "failsafe_mode is not enabled"
	case runsPrimary:
		return http.StatusInternalServerError, "Running as a leader"
	case snap.DCSError == "" && snap.LeaderName != "" && snap.LeaderName != from:
		return http.StatusInternalServerError, fmt.Sprintf("the DCS names %s as the leader", snap.LeaderName)
	}
	return http.StatusOK, FailsafeAccepted
}

// RunsPrimary asks PostgreSQL now whether it runs out of recovery (for POST /failsafe, whose
// answer must not come from a cycle the DCS outage may have held up).
func (a *Agent) RunsPrimary(ctx context.Context) bool {
	srv := a.server()
	if srv == nil {
		return false
	}
	st := a.Node.queryPG(ctx, srv)
	return st.Running && (!st.Queried || !st.InRecovery) // one that cannot be asked counts as a primary
}
