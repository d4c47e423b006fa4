package config_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/pgimaged/pgimaged/core/config"
)

// reloadBase is the configuration a running agent has in the reload cases; each case edits it.
const reloadBase = `scope    = "batman"
name     = "node1"
data_dir = "/srv/pg/node1"
loop_wait = "10s"
tags = { nofailover = false }
log_level = "info"
dcs "file" { path = "/srv/pg/dcs" }
api {
  listen   = "127.0.0.1:8008"
  username = "admin"
  password = "api-secret"
}
postgresql {
  listen     = "127.0.0.1:5432"
  parameters = { max_connections = 100, work_mem = "4MB" }
  pg_hba     = ["host replication replicator 127.0.0.1/32 scram-sha-256"]
  authentication {
    superuser {
      username = "postgres"
      password = "super-secret"
    }
    replication {
      username = "replicator"
      password = "repl-secret"
    }
  }
}
method "basebackup" { checkpoint = "fast" }
`

func parseReload(t *testing.T, src string) *config.Config {
	t.Helper()
	cfg, diags := config.Parse("node1.hcl", []byte(src))
	if diags.HasErrors() {
		t.Fatalf("%s\n%s", diags, src)
	}
	return cfg
}

func TestCompareLive(t *testing.T) {
	dcsKind := []string{"dcs.ca_file", "dcs.cert_file", "dcs.dial_timeout", "dcs.endpoints", "dcs.key_file", "dcs.kind", "dcs.password", "dcs.path", "dcs.username"}
	tests := []struct {
		name        string
		old, new    string // replaced in reloadBase
		wantChanged []string
		wantRefused []string
	}{
		{name: "nothing changed"},
		{name: "a parameter", old: `work_mem = "4MB"`, new: `work_mem = "8MB"`,
			wantChanged: []string{"postgresql.parameters.work_mem"}},
		{name: "a parameter added", old: `max_connections = 100,`, new: `max_connections = 100, shared_buffers = "64MB",`,
			wantChanged: []string{"postgresql.parameters.shared_buffers"}},
		{name: "pg_hba", old: `127.0.0.1/32 scram-sha-256"]`, new: `127.0.0.1/32 scram-sha-256", "host all all 10.0.0.0/8 scram-sha-256"]`,
			wantChanged: []string{"postgresql.pg_hba"}},
		{name: "a tag", old: `nofailover = false`, new: `nofailover = true`, wantChanged: []string{"tags.nofailover"}},
		{name: "log level", old: `log_level = "info"`, new: `log_level = "debug"`, wantChanged: []string{"log_level"}},
		{name: "a method option", old: `checkpoint = "fast"`, new: `checkpoint = "spread"`, wantChanged: []string{"method.basebackup.options"}},
		{name: "replication password", old: `"repl-secret"`, new: `"repl-new"`, wantChanged: []string{config.SettingReplicationPassword}},
		{name: "superuser password", old: `"super-secret"`, new: `"super-new"`, wantChanged: []string{config.SettingRewindPassword, config.SettingSuperuserPassword}}, // rewind defaults to the superuser
		{name: "api credentials", old: `username = "admin"`, new: `username = "root"`, wantChanged: []string{"api.username"}},
		{name: "api password", old: `"api-secret"`, new: `"api-new"`, wantChanged: []string{config.SettingAPIPassword}},
		{name: "data_dir", old: `"/srv/pg/node1"`, new: `"/srv/pg/other"`, wantChanged: []string{"data_dir"}, wantRefused: []string{"data_dir"}},
		{name: "scope", old: `"batman"`, new: `"robin"`, wantChanged: []string{"scope"}, wantRefused: []string{"scope"}},
		{name: "name", old: `name     = "node1"`, new: `name     = "node9"`, wantChanged: []string{"name"}, wantRefused: []string{"name"}},
		{name: "dcs path", old: `path = "/srv/pg/dcs"`, new: `path = "/srv/pg/dcs2"`, wantChanged: []string{"dcs.path"}, wantRefused: []string{"dcs.path"}},
		{name: "dcs kind", old: `dcs "file" { path = "/srv/pg/dcs" }`, new: `dcs "etcd" { endpoints = ["127.0.0.1:2379"] }`,
			wantChanged: dcsKind, wantRefused: dcsKind},
		{name: "listen", old: `listen     = "127.0.0.1:5432"`, new: `listen     = "127.0.0.1:5433"`,
			wantChanged: []string{"postgresql.connect_address", "postgresql.listen"}, wantRefused: []string{"postgresql.listen"}}, // connect_address defaults to listen
		{name: "replication role renamed", old: `username = "replicator"`, new: `username = "repl2"`,
			wantChanged: []string{"postgresql.authentication.replication.username"}, wantRefused: []string{"postgresql.authentication.replication.username"}},
		{name: "a refusal among changes", old: `work_mem = "4MB" }`, new: `work_mem = "8MB" }
  bin_dir = "/opt/pg/bin"`, wantChanged: []string{"postgresql.bin_dir", "postgresql.parameters.work_mem"}, wantRefused: []string{"postgresql.bin_dir"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := parseReload(t, reloadBase)
			src := strings.Replace(reloadBase, tt.old, tt.new, 1)
			if tt.old != "" && src == reloadBase {
				t.Fatalf("%q is not in the base configuration", tt.old)
			}
			r := config.CompareLive(old, parseReload(t, src))
			if !slices.Equal(r.Changed, tt.wantChanged) {
				t.Errorf("changed %q, want %q", r.Changed, tt.wantChanged)
			}
			var refused []string
			for _, f := range r.Refused {
				refused = append(refused, f.Setting)
				if f.Reason == "" {
					t.Errorf("%s refused without a reason", f.Setting)
				}
			}
			if !slices.Equal(refused, tt.wantRefused) {
				t.Errorf("refused %q, want %q", refused, tt.wantRefused)
			}
			for _, s := range []string{"super-", "repl-", "api-"} {
				if strings.Contains(strings.Join(r.Changed, " "), s) {
					t.Errorf("a secret in the changed settings: %q", r.Changed)
				}
			}
		})
	}
}

func TestReloadRefusalsPointAtTheSetting(t *testing.T) {
	old := parseReload(t, reloadBase)
	new := parseReload(t, strings.Replace(reloadBase, `"/srv/pg/node1"`, `"/srv/pg/other"`, 1))
	diags := config.CompareLive(old, new).Diagnostics(new)
	if len(diags) != 1 || diags[0].Subject == nil {
		t.Fatalf("diagnostics %v, want one with a subject", diags)
	}
	if got := diags[0].Subject.String(); got != "node1.hcl:3,12-27" {
		t.Errorf("the refusal points at %s, want data_dir's value at node1.hcl:3,12-27", got)
	}
	if !strings.Contains(diags[0].Detail, "stop the agent") {
		t.Errorf("the refusal does not say what to do: %s", diags[0].Detail)
	}
}

func TestReloadHas(t *testing.T) {
	r := config.Reload{Changed: []string{"postgresql.parameters.work_mem", "tags.nofailover"}}
	for path, want := range map[string]bool{"postgresql.parameters": true, "postgresql": true, "tags.nofailover": true, "postgresql.pg_hba": false, "tag": false} {
		if got := r.Has(path); got != want {
			t.Errorf("Has(%q) = %v, want %v", path, got, want)
		}
	}
}
