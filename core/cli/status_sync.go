package cli

import (
	"github.com/pgimaged/pgimaged/core/config"
	"github.com/pgimaged/pgimaged/core/dcs"
)

// RoleSyncStandby is how Patroni's GET /cluster and patronictl name a synchronous standby.
const RoleSyncStandby = "sync_standby"

// syncStandby reports whether the sync key names member as a synchronous standby of the leader
// that holds the leader key (the key a former leader wrote names none).
func syncStandby(cl dcs.Cluster, member string) bool {
	return cl.Sync != nil && cl.Leader != "" && cl.Sync.Leader == cl.Leader && member != cl.Leader && cl.Sync.Has(member)
}

// clusterJSON is GET /cluster: the status of statusJSON, with a synchronous standby's role
// sync_standby, as Patroni's.
func clusterJSON(cfg *config.Config, cl dcs.Cluster) map[string]any {
	out := statusJSON(cfg, cl)
	if members, ok := out["members"].([]memberStatus); ok {
		for i := range members {
			if members[i].SyncStandby {
				members[i].Role = RoleSyncStandby
			}
		}
	}
	return out
}
