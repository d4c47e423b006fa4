package engine_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/pgimaged/pgimaged/core/config"
	"github.com/pgimaged/pgimaged/core/engine"
)

// Patroni's config key carries the running configuration in Patroni's shape and units.
func TestPatroniConfig(t *testing.T) {
	cfg := &config.Config{Name: "n1", TTL: 30 * time.Second, LoopWait: 10 * time.Second, MaximumLagOnFailover: 1 << 20}
	cfg.PostgreSQL.Parameters = map[string]string{"max_connections": "100", "wal_level": "replica"}
	cfg.PostgreSQL.RejoinMethods = []string{"rewind"}
	cfg.PostgreSQL.Rejoin = config.RejoinReimage
	cfg.Replication = config.Replication{UseSlots: true, SynchronousMode: true, SynchronousNodeCount: 2}
	b, err := json.Marshal(engine.PatroniConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		T      int   `json:"ttl"`
		L      int   `json:"loop_wait"`
		R      int   `json:"retry_timeout"`
		Lag    int64 `json:"maximum_lag_on_failover"`
		Sync   bool  `json:"synchronous_mode"`
		Strict *bool `json:"synchronous_mode_strict"`
		Count  int   `json:"synchronous_node_count"`
		PG     struct {
			Rewind     bool           `json:"use_pg_rewind"`
			Slots      bool           `json:"use_slots"`
			Remove     bool           `json:"remove_data_directory_on_rewind_failure"`
			Parameters map[string]any `json:"parameters"`
		} `json:"postgresql"`
		Standby any `json:"standby_cluster"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.T != 30 || got.L != 10 || got.R != 10 || got.Lag != 1<<20 || !got.Sync || got.Strict == nil || *got.Strict || got.Count != 2 {
		t.Errorf("config key %s: wrong top-level settings", b)
	}
	if !got.PG.Rewind || !got.PG.Slots || !got.PG.Remove || got.PG.Parameters["max_connections"] != 100.0 || got.PG.Parameters["wal_level"] != "replica" {
		t.Errorf("config key %s: wrong postgresql settings", b)
	}
	if got.Standby != nil {
		t.Errorf("config key %s: a standby_cluster without a standby cluster", b)
	}
}
