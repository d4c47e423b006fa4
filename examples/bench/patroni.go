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
// With whileUp, it runs with the members' REST API ports once the cluster is up, before it is
// stopped.
func patroniCluster(ctx context.Context, m *machine, patroni, etcdEndpoint string, run int, whileUp func(apiPorts []int) error) (time.Duration, error) {
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
	var restPorts []int
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
		restPorts = append(restPorts, restPort)
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
		return patroniReady(&client, fmt.Sprintf("http://127.0.0.1:%d/cluster", apiPort))
	})
	took := time.Since(start)
	if err == nil && whileUp != nil {
		err = whileUp(restPorts)
	}
	return took, err
}

// yamlString quotes s for YAML: a JSON string is a YAML string.
func yamlString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// patroniReady reads Patroni's GET /cluster: a leader and two replicas running; and, since Patroni
// 3.0 says "running" for a replica whether or not it receives WAL, the leader's GET /patroni
// must list both replicas as streaming (its view of pg_stat_replication).
func patroniReady(client *http.Client, clusterURL string) (bool, error) {
	var cl struct {
		Members []struct {
			memberState
			APIURL string `json:"api_url"`
		} `json:"members"`
	}
	if !getJSON(client, clusterURL, &cl) {
		return false, nil // not answering yet
	}
	var states []memberState
	leaderAPI := ""
	for _, m := range cl.Members {
		states = append(states, m.memberState)
		if m.Role == "leader" {
			leaderAPI = m.APIURL
		}
	}
	if !clusterReady(states, "leader", "running", "streaming") || leaderAPI == "" {
		return false, nil
	}
	var leader struct {
		Replication []struct {
			State string `json:"state"`
		} `json:"replication"`
	}
	if !getJSON(client, leaderAPI, &leader) {
		return false, nil
	}
	streaming := 0
	for _, r := range leader.Replication {
		if r.State == "streaming" {
			streaming++
		}
	}
	return streaming == 2, nil
}

func getJSON(client *http.Client, url string, v any) bool {
	resp, err := client.Get(url)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	return resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(v) == nil
}
