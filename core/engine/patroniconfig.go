package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pgimaged/pgimaged/core/config"
	"github.com/pgimaged/pgimaged/core/dcs"
)

// dcsRetryTimeout is how long the agent waits on one DCS request before it counts as failed:
// Patroni's retry_timeout, as the config key publishes it.
const dcsRetryTimeout = 10 * time.Second

// PatroniConfig is Patroni's config key for cfg: the cluster's dynamic configuration in
// Patroni's shape, so that patronictl (reload, list, show-config) reads pgimaged's settings as
// Patroni's. Times are whole seconds, as Patroni writes them.
func PatroniConfig(cfg *config.Config) map[string]any {
	params := map[string]any{}
	for k, v := range cfg.PostgreSQL.Parameters {
		params[k] = patroniValue(v)
	}
	pgc := map[string]any{
		"use_pg_rewind": slices.Contains(cfg.PostgreSQL.RejoinMethods, "rewind"),
		"use_slots":     cfg.Replication.UseSlots,
		"parameters":    params,
	}
	if len(cfg.PostgreSQL.PGHBA) > 0 {
		pgc["pg_hba"] = cfg.PostgreSQL.PGHBA
	}
	if cfg.PostgreSQL.Rejoin == config.RejoinReimage {
		pgc["remove_data_directory_on_rewind_failure"] = true
		pgc["remove_data_directory_on_diverged_timelines"] = true
	}
	out := map[string]any{
		"ttl":                     int(cfg.TTL / time.Second),
		"loop_wait":               int(cfg.LoopWait / time.Second),
		"retry_timeout":           int(dcsRetryTimeout / time.Second),
		"maximum_lag_on_failover": cfg.MaximumLagOnFailover,
		"synchronous_mode":        cfg.Replication.SynchronousMode,
		"synchronous_mode_strict": cfg.Replication.SynchronousModeStrict,
		"synchronous_node_count":  max(cfg.Replication.SynchronousNodeCount, 1),
		"failsafe_mode":           cfg.FailsafeMode,
		"postgresql":              pgc,
	}
	if ttl := cfg.Replication.MemberSlotsTTL; ttl > 0 {
		out["member_slots_ttl"] = int(ttl / time.Second)
	}
	if s := cfg.StandbyCluster; s != nil {
		sc := map[string]any{}
		if s.Host != "" {
			sc["host"] = s.Host
		}
		if len(s.Ports) > 0 {
			var ports []string
			for _, p := range s.Ports {
				ports = append(ports, strconv.Itoa(p))
			}
			sc["port"] = strings.Join(ports, ",")
		}
		for k, v := range map[string]string{"primary_slot_name": s.PrimarySlotName, "restore_command": s.RestoreCommand,
			"archive_cleanup_command": s.ArchiveCleanupCommand} {
			if v != "" {
				sc[k] = v
			}
		}
		if len(s.CreateReplicaMethods) > 0 {
			sc["create_replica_methods"] = s.CreateReplicaMethods
		}
		if d := s.RecoveryMinApplyDelay; d > 0 {
			sc["recovery_min_apply_delay"] = d.String()
		}
		out["standby_cluster"] = sc
	}
	return out
}

// patroniValue is a parameter's value as Patroni's YAML would carry it: a number when it is
// one, else the string.
func patroniValue(v string) any {
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return n
	}
	return v
}

// tendConfigKey writes Patroni's config key from the configuration in use when this member
// holds the leader key and the key says something else (first lead, a reload, another
// writer). Failures are logged; the next cycle tries again.
func (a *Agent) tendConfigKey(ctx context.Context) {
	cfg := a.ConfigInUse()
	if a.store == nil || a.cl.Leader == "" || a.cl.Leader != cfg.Name {
		return
	}
	value, err := json.Marshal(PatroniConfig(cfg))
	if err != nil {
		return
	}
	value = []byte(a.Node.secrets().Mask(string(value)))
	cctx, cancel := context.WithTimeout(ctx, dcsRetryTimeout)
	defer cancel()
	if cur, ok, err := a.store.Get(cctx, dcs.ConfigKey); err != nil || ok && bytes.Equal(cur, value) {
		return
	}
	if err := a.store.Put(cctx, dcs.ConfigKey, value); err != nil {
		a.Node.logger().Warn("could not write Patroni's config key", "error", err)
	}
}
