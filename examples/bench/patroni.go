package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// patroniCluster runs one measurement of Patroni on etcd with the same PostgreSQL, settings and
// timing as pgimaged's: three members started at once, until a leader and two streaming replicas.
func patroniCluster(ctx context.Context, m *machine, patroni, etcdEndpoint string, run int) (time.Duration, error) {
	var clean cleanups
	defer clean.run()
	work, err := m.workDir("pgimaged-bench-patroni-")
	if err != nil {
		return 0, err
	}
	clean.add(func() { _ = os.RemoveAll(work) })
	superPass, replPass := password(), password()
	var configs []string
	var apiPort int
	for i := 1; i <= 3; i++ {
		pgPort, err := freePort()
		if err != nil {
			return 0, err
		}
		restPort, err := freePort()
		if err != nil {
			return 0, err
		}
		if i == 1 {
			apiPort = restPort
		}
		name := fmt.Sprintf("node%d", i)
		dir := filepath.Join(work, name)
		if err := m.mkdir(dir); err != nil {
			return 0, err
		}
		cfg := filepath.Join(work, name+".yml")
		if err := m.writeFile(cfg, fmt.Sprintf(`scope: %s
namespace: /service/
name: %s
restapi:
  listen: 127.0.0.1:%d
  connect_address: 127.0.0.1:%d
etcd3:
  hosts: %s
bootstrap:
  dcs:
    ttl: 10
    loop_wait: 1
    retry_timeout: 4
  initdb:
    - encoding: UTF8
    - locale: C
postgresql:
  listen: 127.0.0.1:%d
  connect_address: 127.0.0.1:%d
  data_dir: %s
  bin_dir: %s
  pgpass: %s
  authentication:
    superuser:
      username: postgres
      password: %s
    replication:
      username: replicator
      password: %s
  parameters:
    shared_buffers: 16MB
    fsync: "off"
    max_connections: 30
    unix_socket_directories: %s
  pg_hba:
    - local all all trust
    - host all all 127.0.0.1/32 scram-sha-256
    - host replication replicator 127.0.0.1/32 scram-sha-256
  basebackup:
    - checkpoint: fast
`, yamlString(fmt.Sprintf("bench-patroni-%d", run)), yamlString(name), restPort, restPort, yamlString(etcdEndpoint),
			pgPort, pgPort, yamlString(filepath.Join(dir, "data")), yamlString(m.pgBin), yamlString(filepath.Join(dir, "pgpass")),
			yamlString(superPass), yamlString(replPass), yamlString(dir))); err != nil {
			return 0, err
		}
		configs = append(configs, cfg)
	}

	start := time.Now()
	for i, cfg := range configs {
		dataDir := filepath.Join(work, fmt.Sprintf("node%d", i+1), "data")
		if err := startMember(m, nil, filepath.Join(work, fmt.Sprintf("node%d.log", i+1)), &clean, dataDir, patroni, cfg); err != nil {
			return 0, err
		}
	}
	client := http.Client{Timeout: 2 * time.Second}
	err = waitUp(ctx, start, work, func() (bool, error) {
		resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/cluster", apiPort))
		if err != nil {
			return false, nil // not listening yet
		}
		defer resp.Body.Close()
		var st struct {
			Members []memberState `json:"members"`
		}
		if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&st) != nil {
			return false, nil
		}
		// Patroni 3 reports a replica that receives WAL as "streaming"; older versions say
		// "running" without telling whether it streams.
		return clusterReady(st.Members, "leader", "streaming"), nil
	})
	return time.Since(start), err
}

// yamlString quotes s for YAML: a JSON string is a YAML string.
func yamlString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
