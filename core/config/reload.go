package config

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// Reload is what changes when a running agent takes a configuration in place of the one it
// runs with (see [CompareLive]): the settings that changed, by path ("tags.nofailover",
// "postgresql.parameters.work_mem"), and those of them that cannot change while the agent
// runs, with the reason. A reload with a refusal is refused whole.
type Reload struct {
	Changed []string
	Refused []Refusal
}

// Refusal is a setting that cannot change while the agent runs, and why.
type Refusal struct {
	Setting string `json:"setting"`
	Reason  string `json:"reason"`
}

// Secret settings, which [CompareLive] compares by value although [Config.Effective] masks them.
const (
	SettingSuperuserPassword   = "postgresql.authentication.superuser.password"
	SettingReplicationPassword = "postgresql.authentication.replication.password"
	SettingRewindPassword      = "postgresql.authentication.rewind.password"
	SettingAPIPassword         = "api.password"
)

// fixedSettings are the settings a running agent keeps until it restarts, with the reason: a
// changed setting at or under one of these paths refuses the reload.
var fixedSettings = []fixed{
	{"scope", "the scope names the cluster in the DCS: a member does not move to another cluster while its agent runs", false},
	{"name", "the name is this member's key in the DCS: stop the agent to rename the member", false},
	{"data_dir", "PostgreSQL runs in the data directory: stop the agent, move the directory, and start the agent with the new data_dir", false},
	{"dcs", "the agent's DCS session is opened when it starts: restart the agent to use another DCS", false},
	{"ttl", "the DCS session's lease is taken with the ttl when the agent starts: restart the agent to change it", false},
	{"plugin_dir", "the plugins are found when the agent starts: restart the agent to use another plugin directory", false},
	{"plugin", "plugin pins are checked when the agent starts: restart the agent to change them", false},
	{"postgresql.bin_dir", "the running server's binaries cannot change: restart the agent to use others", false},
	{"postgresql.listen", "the agent reaches PostgreSQL at this address and port (listen_addresses and port need a restart of PostgreSQL): restart the agent", false},
	{"postgresql.authentication.superuser.username", "pgimaged does not rename roles: create the new role, then restart the agent with its name", false},
	{"postgresql.authentication.replication.username", "pgimaged does not rename roles: create the new role, then restart the agent with its name", false},
	{"postgresql.authentication.rewind.username", "pgimaged does not rename roles: create the new role, then restart the agent with its name", false},
	{"api.listen", "the API listens on the address it was started with: restart the agent to move it", false},
	{"api.cert_file", "the API's TLS settings are loaded when it starts: restart the agent to change them", false},
	{"api.key_file", "the API's TLS settings are loaded when it starts: restart the agent to change them", false},
	{"api.ca_file", "the API's TLS settings are loaded when it starts: restart the agent to change them", false},
	{"api", "the API is started or not when the agent starts: restart the agent to add or remove the api block", true},
	{"log_format", "the log format is chosen when the agent starts: restart the agent to change it", false},
}

// CompareLive compares the configuration a running agent has (old) with the one it is asked to
// take (new): every setting that differs, and those of them a running agent cannot take. It
// compares what [Config.Effective] shows, and the passwords by value.
func CompareLive(old, new *Config) Reload {
	var changed []string
	diffTree("", old.Effective(), new.Effective(), &changed)
	secrets := []struct {
		path     string
		old, new string
	}{
		{SettingSuperuserPassword, old.PostgreSQL.Superuser.Password, new.PostgreSQL.Superuser.Password},
		{SettingReplicationPassword, old.PostgreSQL.Replication.Password, new.PostgreSQL.Replication.Password},
		{SettingRewindPassword, old.PostgreSQL.Rewind.Password, new.PostgreSQL.Rewind.Password},
		{"postgresql.authentication.superuser.sslpassword", old.PostgreSQL.Superuser.TLS.Password, new.PostgreSQL.Superuser.TLS.Password},
		{"postgresql.authentication.replication.sslpassword", old.PostgreSQL.Replication.TLS.Password, new.PostgreSQL.Replication.TLS.Password},
		{"postgresql.authentication.rewind.sslpassword", old.PostgreSQL.Rewind.TLS.Password, new.PostgreSQL.Rewind.TLS.Password},
		{"dcs.password", old.DCS.Password, new.DCS.Password},
		{SettingAPIPassword, old.API.Password, new.API.Password},
	}
	for _, s := range secrets {
		if s.old != s.new && !slices.Contains(changed, s.path) {
			changed = append(changed, s.path)
		}
	}
	// Method options read by env() or file() are masked in Effective: compare them by value.
	for _, label := range slices.Sorted(maps.Keys(new.Methods)) {
		if o, ok := old.Methods[label]; ok && !slices.Equal(o.OptionSecrets, new.Methods[label].OptionSecrets) {
			changed = append(changed, "method."+label+".options")
		}
	}
	slices.Sort(changed)
	changed = slices.Compact(changed)
	var refused []Refusal
	for _, path := range changed {
		if r, ok := fixedSetting(path); ok {
			refused = append(refused, Refusal{Setting: path, Reason: r})
		}
	}
	return Reload{Changed: changed, Refused: refused}
}

// fixed is a setting a running agent keeps, with the reason; exact: only the setting itself, not
// those under it.
type fixed struct {
	setting, reason string
	exact           bool
}

// fixedSetting is why the setting at path cannot change while the agent runs; false when it can.
func fixedSetting(path string) (string, bool) {
	for _, f := range fixedSettings {
		if path == f.setting || !f.exact && strings.HasPrefix(path, f.setting+".") {
			return f.reason, true
		}
	}
	return "", false
}

// Has reports whether the setting at path, or one under it, changed.
func (r Reload) Has(path string) bool {
	for _, c := range r.Changed {
		if c == path || strings.HasPrefix(c, path+".") {
			return true
		}
	}
	return false
}

// Diagnostics are the refusals as diagnostics pointing at each refused setting in new, the
// configuration that was asked for.
func (r Reload) Diagnostics(new *Config) hcl.Diagnostics {
	var diags hcl.Diagnostics
	for _, f := range r.Refused {
		diags = append(diags, new.DiagnosticAt(f.Setting, hcl.DiagError, "Setting cannot change while the agent runs",
			fmt.Sprintf("%s changed, and %s. The agent keeps its configuration as it was; nothing of this reload was applied.", f.Setting, f.Reason)))
	}
	return diags
}

// diffTree appends to out the paths under prefix where a and b (trees as Effective builds them)
// differ: a leaf whose value differs, or a key only one side has.
func diffTree(prefix string, a, b any, out *[]string) {
	am, aok := a.(map[string]any)
	bm, bok := b.(map[string]any)
	if aok && bok {
		keys := slices.Sorted(maps.Keys(am))
		for k := range bm {
			if _, ok := am[k]; !ok {
				keys = append(keys, k)
			}
		}
		for _, k := range keys {
			diffTree(join(prefix, k), am[k], bm[k], out)
		}
		return
	}
	if as, ok := a.(map[string]string); ok {
		if bs, ok := b.(map[string]string); ok {
			keys := slices.Sorted(maps.Keys(as))
			for k := range bs {
				if _, ok := as[k]; !ok {
					keys = append(keys, k)
				}
			}
			for _, k := range keys {
				av, aok := as[k]
				bv, bok := bs[k]
				if aok != bok || av != bv {
					*out = append(*out, join(prefix, k))
				}
			}
			return
		}
	}
	if !reflect.DeepEqual(a, b) {
		*out = append(*out, prefix)
	}
}

func join(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}
