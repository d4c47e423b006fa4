package patroni_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgimaged/pgimaged/core/config"
	"github.com/pgimaged/pgimaged/core/patroni"
	"github.com/pgimaged/pgimaged/core/pg"
	"github.com/pgimaged/pgimaged/internal/testenv"
)

// Each Patroni configuration under testdata is converted, the output decoded by pgimaged's
// own configuration loader, and the decoded settings compared with what Patroni would use.
func TestConvert(t *testing.T) {
	testdata, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	base := t.TempDir()
	// TLS files as libpq wants them: a key only its owner, the PostgreSQL account, reads.
	pgUser := testenv.PostgresUser(t)
	tlsBase := pgUser.TempDir(t)
	if err := os.MkdirAll(filepath.Join(tlsBase, "tls"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, mode := range map[string]os.FileMode{"ca.crt": 0o644, "client.crt": 0o644, "client.key": 0o600} {
		if err := os.WriteFile(filepath.Join(tlsBase, "tls", name), []byte("x"), mode); err != nil {
			t.Fatal(err)
		}
	}
	pgUser.Chown(t, tlsBase)
	tests := []struct {
		file    string
		opt     patroni.Options
		env     map[string]string // set for env() in the output
		check   func(t *testing.T, cfg *config.Config)
		noteFor []string // settings that must be noted, and kept as comments
		// weakerFor are the settings whose loss makes the output weaker: warned of, not noted,
		// and kept as comments.
		weakerFor []string
		secrets   []string // values never shown in the output, the notes or the warnings
	}{{
		file: "postgres0.yml",
		opt:  patroni.Options{BaseDir: base},
		check: func(t *testing.T, cfg *config.Config) {
			want(t, "scope", cfg.Scope, "batman")
			want(t, "name", cfg.Name, "postgresql0")
			want(t, "data_dir", cfg.DataDir, filepath.Join(base, "data/postgresql0"))
			want(t, "ttl", cfg.TTL.String(), "30s")
			want(t, "loop_wait", cfg.LoopWait.String(), "10s")
			want(t, "dcs", cfg.DCS.Kind, "etcd")
			want(t, "endpoints", strings.Join(cfg.DCS.Endpoints, ","), "127.0.0.1:2379")
			want(t, "namespace", cfg.DCS.Namespace, config.DefaultNamespace)
			want(t, "listen", cfg.PostgreSQL.Listen, "127.0.0.1:5432")
			want(t, "connect_address", cfg.PostgreSQL.ConnectAddress, "127.0.0.1:5432")
			want(t, "unix_socket_directories", cfg.PostgreSQL.Parameters["unix_socket_directories"], "..")
			want(t, "pg_hba", strings.Join(cfg.PostgreSQL.PGHBA, "|"), "host replication replicator 127.0.0.1/32 md5|host all all 0.0.0.0/0 md5")
			want(t, "superuser", cfg.PostgreSQL.Superuser.Username+":"+cfg.PostgreSQL.Superuser.Password, "postgres:zalando")
			want(t, "replication", cfg.PostgreSQL.Replication.Username+":"+cfg.PostgreSQL.Replication.Password, "replicator:rep-pass")
			want(t, "initdb", initdb(cfg), "encoding=UTF8 data-checksums")
			want(t, "api listen", cfg.API.Listen, "127.0.0.1:8008")
			want(t, "api connect_address", cfg.API.ConnectAddress, "127.0.0.1:8008")
			want(t, "rewind", cfg.PostgreSQL.Rewind.Username+":"+cfg.PostgreSQL.Rewind.Password, "rewind_user:rewind_password")
			want(t, "maximum_lag_on_failover", fmt.Sprint(cfg.MaximumLagOnFailover), "2097152")
			want(t, "rejoin_methods", strings.Join(cfg.PostgreSQL.RejoinMethods, ","), "rewind")
			want(t, "rejoin", cfg.PostgreSQL.Rejoin, config.RejoinReimage)
			if cfg.Tags["clonefrom"] != nil {
				t.Errorf("clonefrom: false became tag %v", cfg.Tags["clonefrom"])
			}
		},
		noteFor:   []string{"bootstrap.dcs.retry_timeout", "postgresql.pgpass", "tags.noloadbalance", "tags.nostream"},
		weakerFor: []string{"watchdog"},
	}, {
		file: "methods.yml",
		opt:  patroni.Options{BaseDir: "testdata", SecretsEnv: true}, // relative: taken against the current directory
		env: map[string]string{"PGIMAGED_SUPERUSER_PASSWORD": "s", "PGIMAGED_REPLICATION_PASSWORD": "r",
			"PGIMAGED_ETCD_PASSWORD": "e"},
		check: func(t *testing.T, cfg *config.Config) {
			want(t, "namespace", cfg.DCS.Namespace, "/pg/clusters/")
			want(t, "endpoints", strings.Join(cfg.DCS.Endpoints, ","), "https://10.0.0.1:2379,https://10.0.0.2:2379,https://10.0.0.3:2379")
			want(t, "etcd user", cfg.DCS.Username+":"+cfg.DCS.Password, "patroni:e")
			want(t, "ca_file", cfg.DCS.CAFile, filepath.Join(testdata, "tls/ca.crt"))
			want(t, "cert_file", cfg.DCS.CertFile, filepath.Join(testdata, "tls/client.crt"))
			want(t, "key_file", cfg.DCS.KeyFile, filepath.Join(testdata, "tls/client.key"))
			want(t, "ttl", cfg.TTL.String(), "20s")
			want(t, "loop_wait", cfg.LoopWait.String(), "5s")
			want(t, "log_level", cfg.LogLevel, "warn")
			want(t, "bin_dir", cfg.PostgreSQL.BinDir, "/usr/lib/postgresql/15/bin")
			want(t, "pg_ctl_timeout", cfg.PostgreSQL.PGCtlTimeout.String(), "1m30s")
			want(t, "max_connections (local wins)", cfg.PostgreSQL.Parameters["max_connections"], "200")
			want(t, "wal_level (from bootstrap.dcs)", cfg.PostgreSQL.Parameters["wal_level"], "replica")
			want(t, "pg_hba from bootstrap", strings.Join(cfg.PostgreSQL.PGHBA, "|"), "host replication replicator 10.0.0.0/8 scram-sha-256")
			want(t, "superuser", cfg.PostgreSQL.Superuser.Username+":"+cfg.PostgreSQL.Superuser.Password, "dba:s")
			want(t, "replication", cfg.PostgreSQL.Replication.Username+":"+cfg.PostgreSQL.Replication.Password, "repl:r")
			want(t, "replication sslmode", cfg.PostgreSQL.Replication.TLS.Mode, "require")
			want(t, "create_replica_methods", strings.Join(cfg.PostgreSQL.CreateReplicaMethods, ","), "wal_e,pgbackrest,basebackup")
			wale := cfg.Method("wal_e")
			want(t, "wal_e command", wale.Command, "patroni_wale_restore")
			if !wale.NoMaster {
				t.Errorf("wal_e: no_master: 1 was lost")
			}
			want(t, "wal_e options", options(wale), "envdir=/etc/wal-e.d/env retries=2 threshold_backup_size_percentage=30 threshold_megabytes=10240")
			pgbr := cfg.Method("pgbackrest")
			if !pgbr.KeepData || !pgbr.NoParams {
				t.Errorf("pgbackrest: keep_data and no_params were lost: %+v", pgbr)
			}
			want(t, "basebackup options", options(cfg.Method("basebackup")), "verbose max-rate=100M checkpoint=fast")
			want(t, "bootstrap.method", cfg.Bootstrap.Method, "from_backup")
			fb := cfg.Method("from_backup")
			want(t, "from_backup command", fb.Command, "/usr/local/bin/restore_cluster --fast")
			if !fb.NoParams || fb.KeepExistingRecoveryConf {
				t.Errorf("from_backup: no_params or keep_existing_recovery_conf wrong: %+v", fb)
			}
			want(t, "recovery_conf", fb.RecoveryConf["restore_command"]+"|"+fb.RecoveryConf["recovery_target_action"], "cp /archive/%f %p|promote")
			want(t, "initdb (mapping form)", initdb(cfg), "encoding=UTF8 locale=C")
			want(t, "post_init", cfg.Bootstrap.PostBootstrap, "/usr/local/bin/setup_cluster.sh")
			if cfg.Tags["clonefrom"] != true {
				t.Errorf("tags: clonefrom = %v, want true", cfg.Tags["clonefrom"])
			}
			r := cfg.Replication
			if !r.SynchronousMode || !r.SynchronousModeStrict || r.SynchronousNodeCount != 2 || r.UseSlots || r.MemberSlotsTTL != 10*time.Minute {
				t.Errorf("synchronous_mode, synchronous_mode_strict, synchronous_node_count, use_slots, member_slots_ttl: %+v", r)
			}
		},
		noteFor:   []string{"tags.nofailover", "watchdog"},
		weakerFor: []string{"postgresql.callbacks"},
	}, {
		file: "oldmethod.yml",
		opt:  patroni.Options{BaseDir: base},
		check: func(t *testing.T, cfg *config.Config) {
			want(t, "data_dir", cfg.DataDir, filepath.Join(base, "data/robin"))
			want(t, "endpoints", strings.Join(cfg.DCS.Endpoints, ","), "127.0.0.1:2379,127.0.0.2:2379")
			want(t, "etcd user", cfg.DCS.Username+":"+cfg.DCS.Password, "root:etcd-pw")
			want(t, "listen", cfg.PostgreSQL.Listen, "*:5434")
			want(t, "pg_hba (postgresql wins)", strings.Join(cfg.PostgreSQL.PGHBA, "|"), "local all all trust|host replication replicator 127.0.0.1/32 scram-sha-256")
			want(t, "create_replica_method", strings.Join(cfg.PostgreSQL.CreateReplicaMethods, ","), "basebackup")
			want(t, "basebackup options", options(cfg.Method("basebackup")), "checkpoint=fast max-rate=64M")
			want(t, "initdb", initdb(cfg), "data-checksums auth=scram-sha-256")
			want(t, "post_bootstrap", cfg.Bootstrap.PostBootstrap, "/usr/local/bin/post_bootstrap.sh")
		},
		noteFor: []string{"bootstrap.pg_hba", "postgresql.use_unix_socket"},
	}, {
		file: "env.yml",
		opt: patroni.Options{BaseDir: base, Environ: []string{
			"PATRONI_SCOPE=from-env", "PATRONI_NAME=member-env", "PATRONI_NAMESPACE=/envns/",
			"PATRONI_POSTGRESQL_DATA_DIR=pgdata", "PATRONI_POSTGRESQL_BIN_DIR=/opt/pg/bin",
			"PATRONI_POSTGRESQL_LISTEN=0.0.0.0:6432", "PATRONI_POSTGRESQL_CONNECT_ADDRESS=10.1.1.1:6432",
			"PATRONI_SUPERUSER_USERNAME=admin", "PATRONI_SUPERUSER_PASSWORD=envsu",
			"PATRONI_REPLICATION_PASSWORD=envrepl",
			"PATRONI_ETCD3_HOSTS=['e1:2379','e2:2379']", "PATRONI_ETCD3_PROTOCOL=http",
			"PATRONI_RESTAPI_LISTEN=0.0.0.0:8010", "PATRONI_LOG_DIR=/var/log/patroni", "HOME=/root",
		}},
		check: func(t *testing.T, cfg *config.Config) {
			want(t, "scope", cfg.Scope, "from-env")
			want(t, "name", cfg.Name, "member-env")
			want(t, "namespace", cfg.DCS.Namespace, "/envns/")
			want(t, "data_dir", cfg.DataDir, filepath.Join(base, "pgdata"))
			want(t, "bin_dir", cfg.PostgreSQL.BinDir, "/opt/pg/bin")
			want(t, "listen", cfg.PostgreSQL.Listen, "0.0.0.0:6432")
			want(t, "connect_address", cfg.PostgreSQL.ConnectAddress, "10.1.1.1:6432")
			want(t, "superuser", cfg.PostgreSQL.Superuser.Username+":"+cfg.PostgreSQL.Superuser.Password, "admin:envsu")
			want(t, "replication", cfg.PostgreSQL.Replication.Username+":"+cfg.PostgreSQL.Replication.Password, "replicator:envrepl")
			want(t, "endpoints", strings.Join(cfg.DCS.Endpoints, ","), "http://e1:2379,http://e2:2379")
		},
		noteFor: []string{"PATRONI_LOG_DIR"},
	}, {
		file: "env.yml",
		opt: patroni.Options{BaseDir: base, Environ: []string{
			"PATRONI_ETCD_URL=https://patroni:url-secret@etcd.example:2379", "PATRONI_ETCD_PROXY=http://proxy:2379",
		}},
		check: func(t *testing.T, cfg *config.Config) {
			want(t, "endpoints", strings.Join(cfg.DCS.Endpoints, ","), "https://etcd.example:2379")
			want(t, "etcd user", cfg.DCS.Username+":"+cfg.DCS.Password, "patroni:url-secret")
		},
		noteFor: []string{"etcd.proxy"},
	}, {
		file: "initdb_method.yml",
		opt:  patroni.Options{BaseDir: base},
		check: func(t *testing.T, cfg *config.Config) {
			want(t, "bootstrap.method", cfg.Bootstrap.Method, "initdb")
			want(t, "initdb", initdb(cfg), "locale=C.UTF-8 data-checksums")
			if cfg.Tags["clonefrom"] != true {
				t.Errorf("tags: clonefrom = %v, want true", cfg.Tags["clonefrom"])
			}
			want(t, "dcs", cfg.DCS.Kind, "file")
		},
	}, {
		file: "env.yml",
		opt: patroni.Options{BaseDir: base, Environ: []string{
			"PATRONI_CONFIGURATION=scope: elsewhere", "PATRONI_SCOPE=from-env",
		}},
		check: func(t *testing.T, cfg *config.Config) {
			want(t, "scope (PATRONI_CONFIGURATION set: no other variable counts)", cfg.Scope, "from-file")
			want(t, "dcs", cfg.DCS.Kind, "file")
		},
		noteFor: []string{"PATRONI_CONFIGURATION"},
	}, {
		file: "standby.yml",
		opt:  patroni.Options{BaseDir: tlsBase, SecretsEnv: true},
		env: map[string]string{"PGIMAGED_SUPERUSER_PASSWORD": "s", "PGIMAGED_REPLICATION_PASSWORD": "r",
			"PGIMAGED_REPLICATION_SSLPASSWORD": "kp", "PGIMAGED_REWIND_PASSWORD": "rw"},
		check: func(t *testing.T, cfg *config.Config) {
			sc := cfg.StandbyCluster
			if sc == nil {
				t.Fatal("no standby_cluster block")
			}
			want(t, "host", sc.Host, "10.1.0.5,10.1.0.6")
			want(t, "port", fmt.Sprint(sc.Ports), "[5432 5433]")
			want(t, "primary_slot_name", sc.PrimarySlotName, "site_b")
			want(t, "create_replica_methods", strings.Join(sc.CreateReplicaMethods, ","), "pgbackrest,basebackup")
			want(t, "restore_command", sc.RestoreCommand, `pgbackrest --stanza=main archive-get %f "%p"`)
			want(t, "archive_cleanup_command", sc.ArchiveCleanupCommand, "pg_archivecleanup /archive %r")
			want(t, "recovery_min_apply_delay", sc.RecoveryMinApplyDelay.String(), "5m0s")
			pgbr := cfg.Method("pgbackrest")
			if !pgbr.KeepData || !pgbr.NoMaster || pgbr.Command == "" {
				t.Errorf("the standby cluster's pgbackrest method lost its section: %+v", pgbr)
			}
			want(t, "replication TLS", fmt.Sprintf("%+v", cfg.PostgreSQL.Replication.TLS), fmt.Sprintf("%+v", pg.TLS{Mode: "verify-full",
				RootCert: filepath.Join(tlsBase, "tls/ca.crt"), Cert: filepath.Join(tlsBase, "tls/client.crt"), Key: filepath.Join(tlsBase, "tls/client.key"), Password: "kp"}))
			if cfg.PostgreSQL.Replication.TLS.Password != "kp" {
				t.Errorf("sslpassword is not read from PGIMAGED_REPLICATION_SSLPASSWORD")
			}
			want(t, "superuser sslmode", cfg.PostgreSQL.Superuser.TLS.Mode, "require")
			want(t, "rewind", cfg.PostgreSQL.Rewind.Username+":"+cfg.PostgreSQL.Rewind.Password+" "+cfg.PostgreSQL.Rewind.TLS.Mode+" "+cfg.PostgreSQL.Rewind.TLS.RootCert,
				"rewinder:rw verify-ca system")
		},
		noteFor: []string{"bootstrap.dcs.standby_cluster.leader_tag", "postgresql.authentication.replication.gssencmode"},
		secrets: []string{"key-passphrase-secret", "repl-secret", "su-secret"},
	}, {
		file: "standby_top.yml",
		opt:  patroni.Options{BaseDir: base},
		check: func(t *testing.T, cfg *config.Config) {
			sc := cfg.StandbyCluster
			if sc == nil {
				t.Fatal("no standby_cluster block")
			}
			want(t, "host (the top-level block wins)", sc.Host, "")
			want(t, "restore_command", sc.RestoreCommand, "cp /archive/%f %p")
			want(t, "recovery_min_apply_delay", sc.RecoveryMinApplyDelay.String(), "1.5s")
			want(t, "create_replica_methods", strings.Join(sc.CreateReplicaMethods, ","), "wal_e")
			if m := cfg.Method("wal_e"); !m.NoMaster || m.Command != "patroni_wale_restore" {
				t.Errorf("the standby cluster's wal_e method lost its section: %+v", m)
			}
		},
		noteFor: []string{"bootstrap.dcs.standby_cluster"},
	}, {
		file: "failsafe.yml",
		opt:  patroni.Options{BaseDir: base},
		check: func(t *testing.T, cfg *config.Config) {
			if !cfg.FailsafeMode {
				t.Errorf("failsafe_mode: true was lost")
			}
			want(t, "api credentials", cfg.API.Username, "ops")
		},
	}, {
		file: "hot_standby_off.yml",
		opt:  patroni.Options{BaseDir: base},
		check: func(t *testing.T, cfg *config.Config) {
			want(t, "parameters", fmt.Sprint(cfg.PostgreSQL.Parameters), "map[Work_Mem:8MB max_connections:50]")
		},
		noteFor: []string{"postgresql.parameters.Hot_Standby"},
	}}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			src, err := os.ReadFile(filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			res, err := patroni.Convert(tc.file, src, tc.opt)
			if err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(t.TempDir(), "out.hcl")
			cfg, diags := config.Parse(out, res.HCL)
			if diags.HasErrors() {
				t.Fatalf("the output does not decode: %s\n%s", diags.Error(), res.HCL)
			}
			tc.check(t, cfg)
			notes := strings.Join(res.Notes, "\n")
			for _, s := range tc.noteFor {
				if !strings.Contains(notes, s) {
					t.Errorf("no note names %s; notes:\n%s", s, notes)
				}
				if !strings.HasPrefix(s, "PATRONI_") && !strings.Contains(string(res.HCL), "#   "+s) {
					t.Errorf("the output has no comment for %s:\n%s", s, res.HCL)
				}
			}
			weaker := strings.Join(res.Weaker, "\n")
			for _, s := range tc.weakerFor {
				if !strings.Contains(weaker, s) || strings.Contains(notes, s) {
					t.Errorf("%s is not among the warnings of a weaker result (or is a note too); warnings:\n%s\nnotes:\n%s", s, weaker, notes)
				}
				if !strings.Contains(string(res.HCL), "#   "+s) {
					t.Errorf("the output has no comment for %s:\n%s", s, res.HCL)
				}
			}
			if len(tc.weakerFor) == 0 && weaker != "" {
				t.Errorf("warnings of a weaker result for a conversion that loses nothing that matters:\n%s", weaker)
			}
			for _, secret := range []string{"rewind_password", "url-secret"} {
				if strings.Contains(notes, secret) || strings.Contains(strings.Join(res.Warnings, "\n"), secret) {
					t.Errorf("a password is shown in the notes:\n%s", notes)
				}
			}
			for _, secret := range tc.secrets {
				if strings.Contains(notes+string(res.HCL)+strings.Join(res.Warnings, "\n"), secret) {
					t.Errorf("%q is shown in the output, the notes or the warnings", secret)
				}
			}
			if t.Failed() {
				t.Logf("output:\n%s", res.HCL)
			}
		})
	}
}

func want(t *testing.T, what, got, want string) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %q, want %q", what, got, want)
	}
}

func initdb(cfg *config.Config) string {
	var parts []string
	for _, o := range cfg.Bootstrap.Initdb {
		if o.Value == "" {
			parts = append(parts, o.Name)
		} else {
			parts = append(parts, o.Name+"="+o.Value)
		}
	}
	return strings.Join(parts, " ")
}

func options(m *config.Method) string {
	var parts []string
	for _, o := range m.Options {
		if o.Flag {
			parts = append(parts, o.Name)
			continue
		}
		parts = append(parts, o.Name+"="+o.Value)
	}
	return strings.Join(parts, " ")
}
