package api_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/pgimaged/pgimaged/core/api"
	"github.com/pgimaged/pgimaged/core/dcs"
	"github.com/pgimaged/pgimaged/core/engine"
)

// GET /sync and /async answer as Patroni's: 200 for a running replica that the sync key names
// a synchronous standby of the current leader (/sync) or does not (/async), 503 otherwise.
func TestSyncAndAsyncStatusCodes(t *testing.T) {
	const ok, no = http.StatusOK, http.StatusServiceUnavailable
	replica := func(sync *dcs.SyncState) engine.Snapshot {
		return engine.Snapshot{Scope: "batman", Name: "n2", State: dcs.StateRunning, Role: dcs.RoleReplica, Running: true, Queried: true,
			InRecovery: true, Streaming: true, LeaderName: "n1", Position: 5 << 20, LeaderPosition: 5 << 20,
			Cluster: &dcs.Cluster{Leader: "n1", Sync: sync}, LastCycle: time.Now(), Started: time.Now()}
	}
	primary := replica(&dcs.SyncState{Leader: "n1", Standbys: []string{"n2"}})
	primary.Name, primary.InRecovery, primary.Role, primary.Leader = "n1", false, dcs.RolePrimary, true
	noDCS := replica(&dcs.SyncState{Leader: "n1", Standbys: []string{"n2"}})
	noDCS.Cluster = nil
	lagging := replica(&dcs.SyncState{Leader: "n1", Standbys: []string{"n2"}})
	lagging.LeaderPosition += 64 << 20
	for name, c := range map[string]struct {
		snap        engine.Snapshot
		sync, async int
	}{
		"synchronous standby":                    {replica(&dcs.SyncState{Leader: "n1", Standbys: []string{"n2", "n3"}}), ok, no},
		"asynchronous standby":                   {replica(&dcs.SyncState{Leader: "n1", Standbys: []string{"n3"}}), no, ok},
		"no synchronous mode":                    {replica(nil), no, ok},
		"named by a former leader's sync key":    {replica(&dcs.SyncState{Leader: "n0", Standbys: []string{"n2"}}), no, ok},
		"the primary":                            {primary, no, no},
		"DCS never read":                         {noDCS, no, no},
		"synchronous standby over the lag asked": {lagging, ok, no},
	} {
		for _, p := range []struct {
			path string
			want int
		}{{"/sync", c.sync}, {"/synchronous", c.sync}, {"/async", c.async}, {"/asynchronous", c.async}} {
			if got := api.Health(p.path, "", c.snap, time.Minute, time.Now()); got != p.want {
				t.Errorf("%s: %s answers %d, want %d", name, p.path, got, p.want)
			}
		}
		if c.sync == ok {
			if got := api.Health("/sync", "1MB", c.snap, time.Minute, time.Now()); name == "synchronous standby over the lag asked" && got != no {
				t.Errorf("%s: /sync?lag=1MB answers %d, want 503", name, got)
			}
		}
	}
}
