package api_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/pgimaged/pgimaged/core/api"
	"github.com/pgimaged/pgimaged/core/dcs"
	"github.com/pgimaged/pgimaged/core/engine"
)

// The standby leader of a standby cluster reports itself and its lag behind the remote; a
// primary reports neither.
func TestStandbyLeaderMetrics(t *testing.T) {
	lag := int64(2048)
	scrape := func(snap engine.Snapshot) string {
		t.Helper()
		m := api.NewMetrics("site-b", "b1", func() engine.Snapshot { return snap })
		srv, _ := api.New(api.Options{Snapshot: func() engine.Snapshot { return snap }, Metrics: m})
		ts := httptest.NewServer(srv)
		defer ts.Close()
		resp, err := http.Get(ts.URL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return string(body)
	}
	leader := engine.Snapshot{Scope: "site-b", Name: "b1", Role: dcs.RoleStandbyLeader, State: dcs.StateRunning, Leader: true,
		Running: true, Queried: true, InRecovery: true, Remote: &dcs.RemoteFollow{LagBytes: &lag, ReplayDelay: 1.5}}
	body := scrape(leader)
	for _, want := range []string{
		`pgimaged_standby_leader{member="b1",scope="site-b"} 1`,
		`pgimaged_remote_lag_bytes{member="b1",scope="site-b"} 2048`,
		`pgimaged_remote_replay_delay_seconds{member="b1",scope="site-b"} 1.5`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics of the standby leader lacks %s", want)
		}
	}
	primary := leader
	primary.Role, primary.InRecovery, primary.Remote = dcs.RolePrimary, false, nil
	body = scrape(primary)
	if !strings.Contains(body, `pgimaged_standby_leader{member="b1",scope="site-b"} 0`) || strings.Contains(body, "pgimaged_remote_lag_bytes{") {
		t.Errorf("/metrics of a primary:\n%s", body)
	}
}
