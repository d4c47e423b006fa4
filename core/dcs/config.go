package dcs

// ConfigKey is Patroni's config key under the scope: the cluster's dynamic configuration as
// JSON (ttl, loop_wait, retry_timeout, maximum_lag_on_failover, synchronous_mode,
// postgresql.parameters, ...). The leader writes it from the configuration it runs with;
// patronictl reads it (reload, list, show-config).
const ConfigKey = "config"
