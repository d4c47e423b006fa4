package patroni

import (
	"sort"
	"strings"
)

// envSettings maps the PATRONI_* variables Patroni reads for the settings pgimaged has to
// their place in the configuration.
var envSettings = map[string][]string{
	"PATRONI_SCOPE":                      {"scope"},
	"PATRONI_NAME":                       {"name"},
	"PATRONI_NAMESPACE":                  {"namespace"},
	"PATRONI_RESTAPI_LISTEN":             {"restapi", "listen"},
	"PATRONI_POSTGRESQL_LISTEN":          {"postgresql", "listen"},
	"PATRONI_POSTGRESQL_CONNECT_ADDRESS": {"postgresql", "connect_address"},
	"PATRONI_POSTGRESQL_DATA_DIR":        {"postgresql", "data_dir"},
	"PATRONI_POSTGRESQL_BIN_DIR":         {"postgresql", "bin_dir"},
	"PATRONI_SUPERUSER_USERNAME":         {"postgresql", "authentication", "superuser", "username"},
	"PATRONI_SUPERUSER_PASSWORD":         {"postgresql", "authentication", "superuser", "password"},
	"PATRONI_REPLICATION_USERNAME":       {"postgresql", "authentication", "replication", "username"},
	"PATRONI_REPLICATION_PASSWORD":       {"postgresql", "authentication", "replication", "password"},
	"PATRONI_REWIND_USERNAME":            {"postgresql", "authentication", "rewind", "username"},
	"PATRONI_REWIND_PASSWORD":            {"postgresql", "authentication", "rewind", "password"},
}

// etcdEnvKeys are the suffixes of PATRONI_ETCD_* and PATRONI_ETCD3_* that Patroni reads and
// pgimaged converts.
// The others are set too, so that the conversion notes them as settings it has no equivalent for.
var etcdEnvKeys = []string{"HOST", "HOSTS", "PROTOCOL", "USERNAME", "PASSWORD", "CACERT", "CERT", "KEY", "URL",
	"PROXY", "SRV", "SRV_SUFFIX", "USE_PROXIES", "PORT"}

// applyEnv sets the settings the PATRONI_* variables name over the file's, as Patroni does
// (its environment takes precedence), and notes the variables it does not convert.
func (c *conv) applyEnv(root map[string]any) {
	env := map[string]string{}
	for _, kv := range c.opt.Environ {
		k, v, ok := strings.Cut(kv, "=")
		if ok && strings.HasPrefix(k, "PATRONI_") {
			env[k] = v
		}
	}
	if _, ok := env["PATRONI_CONFIGURATION"]; ok {
		c.res.Notes = append(c.res.Notes, "PATRONI_CONFIGURATION is set: Patroni would read its whole configuration from it, "+
			"not from the file, and no other PATRONI_* variable; the file was converted without the environment")
		return
	}
	names := make([]string, 0, len(env))
	for k := range env {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		v := env[k]
		if path, ok := envSettings[k]; ok {
			set(root, path, v)
			c.res.Notes = append(c.res.Notes, "taken from the environment: "+k)
			continue
		}
		if dcsName, suffix, ok := etcdVar(k); ok {
			set(root, []string{dcsName, strings.ToLower(suffix)}, v)
			c.res.Notes = append(c.res.Notes, "taken from the environment: "+k)
			continue
		}
		c.res.Notes = append(c.res.Notes, k+" is set in the environment: it names no setting pgimaged has; ignored")
	}
}

func etcdVar(k string) (dcsName, suffix string, ok bool) {
	for _, d := range []string{"ETCD3", "ETCD"} {
		if s, found := strings.CutPrefix(k, "PATRONI_"+d+"_"); found {
			for _, e := range etcdEnvKeys {
				if s == e {
					return strings.ToLower(d), s, true
				}
			}
		}
	}
	return "", "", false
}

// set puts v at path in root, creating mappings on the way.
func set(root map[string]any, path []string, v any) {
	m := root
	for _, k := range path[:len(path)-1] {
		next, ok := m[k].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[k] = next
		}
		m = next
	}
	m[path[len(path)-1]] = v
}
