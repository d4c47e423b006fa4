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

// patroniCluster runs one measurement of Patroni on etcd with the same PostgreSQL settings as
// pgimaged's and Patroni's own defaults otherwise (unless o.loopWait is set): o.members started
// at once, until a leader and the others streaming replicas. With o.whileUp, it runs with the
// members' REST API ports once the cluster is up, before it is stopped.
func patroniCluster(ctx context.Context, m *machine, patroni string, o clusterOptions) (time.Duration, error) {
	var clean cleanups
	defer clean.run()
	work, err := m.workDir("pgimaged-bench-patroni-")
	if err != nil {
		return 0, err
	}
	clean.add(func() { _ = os.RemoveAll(work) })
	superPass, replPass := o.superPass, password()
	if superPass == "" {
		superPass = password()
	}
	// Patroni's defaults (ttl 30, loop_wait 10, retry_timeout 10); max_connections, which Patroni
	// takes from the DCS only, as the others have it.
	dcs := "{postgresql: {parameters: {max_connections: 30}}}"
	if o.loopWait > 0 {
		dcs = fmt.Sprintf("{loop_wait: %d, postgresql: {parameters: {max_connections: 30}}}", int(o.loopWait.Seconds()))
	}
	leaderRole := "leader"
	if o.standbyOf > 0 {
		// A standby cluster (bootstrap.dcs.standby_cluster) of the server at 127.0.0.1:standbyOf:
		// its leader is Patroni's standby_leader.
		dcs = fmt.Sprintf("{standby_cluster: {host: 127.0.0.1, port: %d}, postgresql: {parameters: {max_connections: 30}}}", o.standbyOf)
		leaderRole = "standby_leader"
	}
	if o.replPass != "" {
		replPass = o.replPass
	}
	var configs []string
	var apiPort int
	var restPorts []int
	for i := 1; i <= o.members; i++ {
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
  dcs: %s
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
    max_connections: 30
    unix_socket_directories: %s
  pg_hba:
    - local all all trust
    - host all all 127.0.0.1/32 scram-sha-256
    - host replication replicator 127.0.0.1/32 scram-sha-256
  basebackup:
    - checkpoint: fast
`, yamlString(fmt.Sprintf("bench-patroni-%d-%d", o.members, o.run)), yamlString(name), restPort, restPort, yamlString(o.etcd), dcs,
			pgPort, pgPort, yamlString(filepath.Join(dir, "data")), yamlString(m.pgBin), yamlString(filepath.Join(dir, "pgpass")),
			yamlString(superPass), yamlString(replPass), yamlString(dir))); err != nil {
			return 0, err
		}
		configs = append(configs, cfg)
	}

	var ms members
	start := time.Now()
	for i, cfg := range configs {
		dataDir := filepath.Join(work, fmt.Sprintf("node%d", i+1), "data")
		if err := ms.startMember(m, nil, filepath.Join(work, fmt.Sprintf("node%d.log", i+1)), &clean, dataDir, patroni, cfg); err != nil {
			return 0, err
		}
	}
	client := http.Client{Timeout: 2 * time.Second}
	err = waitUp(ctx, start, work, func() (bool, error) {
		if err := ms.exited(); err != nil {
			return false, err
		}
		return patroniReady(&client, fmt.Sprintf("http://127.0.0.1:%d/cluster", apiPort), o.members, leaderRole)
	})
	took := time.Since(start)
	if err == nil && o.whileUp != nil {
		err = o.whileUp(restPorts)
	}
	return took, err
}

// yamlString quotes s for YAML: a JSON string is a YAML string.
func yamlString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// patroniReady reads Patroni's GET /cluster: a member of role leaderRole (leader, or a standby
// cluster's standby_leader) and n-1 replicas running; and, since Patroni 3.0 says "running" for
// a replica whether or not it receives WAL, the leader's GET /patroni must list every replica as
// streaming (its view of pg_stat_replication).
func patroniReady(client *http.Client, clusterURL string, n int, leaderRole string) (bool, error) {
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
		if m.Role == leaderRole {
			leaderAPI = m.APIURL
		}
	}
	if !clusterReady(states, n, leaderRole, "running", "streaming") || leaderAPI == "" {
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
	return streaming == n-1, nil
}

func getJSON(client *http.Client, url string, v any) bool {
	resp, err := client.Get(url)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	return resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(v) == nil
}
