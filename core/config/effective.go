package config

import (
	"slices"
	"strings"
	"time"

	"github.com/pgimaged/pgimaged/sdk"
)

// Effective is the configuration in effect (Load applies the defaults), as a JSON-ready tree keyed by
// the HCL's names (what the API's GET /config serves). Every password, and every value read by
// env() or file() in a method's options, is masked wherever it appears.
func (c *Config) Effective() map[string]any {
	secrets := c.secretValues()
	pgc := c.PostgreSQL
	out := map[string]any{
		"scope":         c.Scope,
		"name":          c.Name,
		"data_dir":      c.DataDir,
		"plugin_dir":    c.PluginDir,
		"loop_wait":     seconds(c.LoopWait),
		"ttl":           seconds(c.TTL),
		"failsafe_mode": c.FailsafeMode,
		"tags":          orEmpty(c.Tags),
		"log_level":     c.LogLevel,
		"log_format":    orString(c.LogFormat, "text"),
		"log_file":      c.LogFile,
		"dcs":           c.DCS.effective(),
		"postgresql": map[string]any{
			"bin_dir":         pgc.BinDir,
			"listen":          pgc.Listen,
			"connect_address": pgc.ConnectAddress,
			"parameters":      orEmpty(pgc.Parameters),
			"pg_hba":          orEmptyList(pgc.PGHBA),
			"pg_ctl_timeout":  seconds(pgc.PGCtlTimeout),
			"authentication": map[string]any{
				"superuser":   credentials(pgc.Superuser),
				"replication": credentials(pgc.Replication),
				"rewind":      credentials(pgc.Rewind),
			},
			"create_replica_methods": orEmptyList(pgc.CreateReplicaMethods),
		},
		"bootstrap": map[string]any{
			"method":           c.Bootstrap.Method,
			"initdb":           optionsTree(maskOptions(c.Bootstrap.Initdb, c.Bootstrap.InitdbHidden, nil)),
			"post_bootstrap":   c.Bootstrap.PostBootstrap,
			"timeout":          seconds(c.Bootstrap.Timeout),
			"recovery_timeout": seconds(c.Bootstrap.RecoveryTimeout),
		},
	}
	if sc := c.StandbyCluster; sc != nil {
		out["standby_cluster"] = map[string]any{"host": sc.Host, "port": sc.Ports, "primary_slot_name": sc.PrimarySlotName,
			"create_replica_methods": sc.CreateReplicaMethods, "restore_command": sc.RestoreCommand,
			"archive_cleanup_command": sc.ArchiveCleanupCommand, "recovery_min_apply_delay": seconds(sc.RecoveryMinApplyDelay)}
	}
	if c.API.Enabled() {
		a := c.API
		out["api"] = map[string]any{"listen": a.Listen, "connect_address": a.Address(), "ca_file": a.CAFile,
			"cert_file": a.CertFile, "key_file": a.KeyFile, "username": a.Username, "password": maskSecret(a.Password)}
	}
	methods := map[string]any{}
	for label, m := range c.Methods {
		methods[label] = map[string]any{
			"plugin": m.Plugin, "command": m.Command, "no_params": m.NoParams, "no_master": m.NoMaster,
			"keep_data": m.KeepData, "attempts": m.Attempts, "retry_wait": seconds(m.RetryWait), "timeout": seconds(m.Timeout),
			"recovery_conf": orEmpty(m.RecoveryConf), "standby_mode": m.StandbyMode,
			"keep_existing_recovery_conf": m.KeepExistingRecoveryConf,
			"options":                     optionsTree(maskOptions(m.Options, m.OptionHidden, m.OptionSecrets)),
		}
	}
	out["method"] = methods
	plugins := map[string]any{}
	for name, p := range c.Plugins {
		plugins[name] = map[string]any{"path": p.Path, "sha256": p.SHA256}
	}
	out["plugin"] = plugins
	return maskTree(out, secrets).(map[string]any)
}

func (d DCS) effective() map[string]any {
	out := map[string]any{"kind": orString(d.Kind, DCSFile), "namespace": orString(d.Namespace, DefaultNamespace)}
	// The file DCS's path, when not set, is the command's default ("" here).
	switch d.Kind {
	case DCSEtcd:
		out["endpoints"] = d.Endpoints
		out["username"] = d.Username
		out["password"] = maskSecret(d.Password)
		out["dial_timeout"] = seconds(d.DialTimeout)
		out["ca_file"], out["cert_file"], out["key_file"] = d.CAFile, d.CertFile, d.KeyFile
	default:
		out["path"] = d.Path
	}
	return out
}

// secretValues are the configuration's passwords and the values env() and file() read into
// method options.
func (c *Config) secretValues() sdk.Masker {
	var m sdk.Masker
	pgc := c.PostgreSQL
	for _, s := range slices.Concat(pgc.Superuser.Secrets(), pgc.Replication.Secrets(), pgc.Rewind.Secrets(), []string{c.DCS.Password, c.API.Password}) {
		if s != "" {
			m = append(m, s)
		}
	}
	for _, meth := range c.Methods {
		for _, s := range meth.OptionSecrets {
			if s != "" {
				m = append(m, s)
			}
		}
	}
	return m
}

func credentials(c Credentials) map[string]any {
	out := map[string]any{"username": c.Username, "password": maskSecret(c.Password)}
	t := c.TLS
	for k, v := range map[string]string{"sslmode": t.Mode, "sslrootcert": t.RootCert, "sslcert": t.Cert, "sslkey": t.Key, "sslcrl": t.CRL, "sslpassword": maskSecret(t.Password)} {
		if v != "" {
			out[k] = v
		}
	}
	return out
}

// optionsTree is a list of options as JSON: a flag as its name, a value as {name: value}.
func optionsTree(opts sdk.Options) []any {
	out := []any{}
	for _, o := range opts {
		switch {
		case o.Flag:
			out = append(out, o.Name)
		case o.List != nil:
			out = append(out, map[string]any{o.Name: o.List})
		case o.Map != nil:
			out = append(out, map[string]any{o.Name: o.Map})
		default:
			out = append(out, map[string]any{o.Name: o.Value})
		}
	}
	return out
}

// maskTree masks every secret in every string of v (maps, lists and strings as built above).
func maskTree(v any, secrets sdk.Masker) any {
	switch x := v.(type) {
	case string:
		return secrets.Mask(x)
	case []string:
		return secrets.MaskArgv(x)
	case map[string]string:
		out := map[string]string{}
		for k, s := range x {
			out[secrets.Mask(k)] = secrets.Mask(s)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = maskTree(e, secrets)
		}
		return out
	case map[string]any:
		out := map[string]any{}
		for k, e := range x {
			out[secrets.Mask(k)] = maskTree(e, secrets)
		}
		return out
	}
	return v
}

func seconds(d time.Duration) float64 { return d.Seconds() }

func orString(s, def string) string {
	if strings.TrimSpace(s) == "" {
		return def
	}
	return s
}

func orEmpty[V any](m map[string]V) map[string]V {
	if m == nil {
		return map[string]V{}
	}
	return m
}

func orEmptyList(l []string) []string {
	if l == nil {
		return []string{}
	}
	return slices.Clone(l)
}
