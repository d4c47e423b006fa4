package patroni

import (
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/zclconf/go-cty/cty"

	"github.com/pgimaged/pgimaged/core/config"
)

// replicaBuiltins are the replica methods pgimaged runs with no method block.
var replicaBuiltins = []string{"basebackup", "pgbackrest", "wale"}

// methodKeys maps the keys Patroni reads in a method's section to pgimaged's.
var methodKeys = map[string]string{
	"command": "command", "no_params": "no_params", "no_master": "no_master", "no_leader": "no_leader",
	"keep_data": "keep_data", "keep_existing_recovery_conf": "keep_existing_recovery_conf",
}

// otherDCS are Patroni's DCS sections that pgimaged has no backend for.
var otherDCS = []string{"consul", "zookeeper", "exhibitor", "kubernetes", "raft"}

func (c *conv) convert(root map[string]any) error {
	b := c.body
	scope := c.str(root, "scope", "")
	name := c.str(root, "name", "")
	namespace := c.str(root, "namespace", "")
	pgsec := c.section(root, "postgresql", "")
	if pgsec == nil {
		pgsec = map[string]any{}
	}
	boot := c.section(root, "bootstrap", "")
	if boot == nil {
		boot = map[string]any{}
	}
	dyn := c.section(boot, "dcs", "bootstrap")
	if dyn == nil {
		dyn = map[string]any{}
	}
	dynPG := c.section(dyn, "postgresql", "bootstrap.dcs")
	if dynPG == nil {
		dynPG = map[string]any{}
	}

	for _, kv := range [][2]string{{"scope", scope}, {"name", name}} {
		b.SetAttributeValue(kv[0], cty.StringVal(kv[1]))
		if kv[1] == "" {
			c.res.Notes = append(c.res.Notes, kv[0]+" is not set (nor PATRONI_"+strings.ToUpper(kv[0])+"): set "+kv[0]+" in the output")
		}
	}
	if dataDir := c.str(pgsec, "data_dir", "postgresql"); dataDir != "" {
		abs := c.abs(dataDir)
		b.SetAttributeValue("data_dir", cty.StringVal(abs))
		if abs != dataDir {
			c.res.Notes = append(c.res.Notes, fmt.Sprintf("postgresql.data_dir %q is relative: written as %q", dataDir, abs))
		}
	} else {
		b.SetAttributeValue("data_dir", cty.StringVal(""))
		c.res.Notes = append(c.res.Notes, "postgresql.data_dir is not set: set data_dir in the output")
	}
	for _, k := range []string{"loop_wait", "ttl"} {
		if v, ok := take(dyn, k); ok {
			if d, ok := seconds(v); ok {
				b.SetAttributeValue(k, cty.StringVal(d))
			} else {
				c.note("bootstrap.dcs."+k, v, "not a number of seconds")
			}
		}
	}
	for _, sec := range []struct {
		m    map[string]any
		path string
	}{{dyn, "bootstrap.dcs."}, {root, ""}} {
		if v, ok := take(sec.m, "maximum_lag_on_failover"); ok {
			if n, isNum := v.(int); isNum && n >= 0 {
				b.SetAttributeValue("maximum_lag_on_failover", cty.NumberIntVal(int64(n)))
			} else {
				c.note(sec.path+"maximum_lag_on_failover", v, "not a whole number of bytes")
			}
		}
	}
	c.replication(dyn, dynPG) // replication.go
	for _, sec := range []struct {
		m    map[string]any
		path string
	}{{dyn, "bootstrap.dcs."}, {root, ""}} {
		if v, ok := take(sec.m, "failsafe_mode"); ok {
			if on, isBool := v.(bool); isBool {
				b.SetAttributeValue("failsafe_mode", cty.BoolVal(on))
			} else {
				c.note(sec.path+"failsafe_mode", v, "not true or false")
			}
		}
	}
	if log := c.section(root, "log", ""); log != nil {
		if lvl := c.str(log, "level", "log"); lvl != "" {
			l := strings.ToLower(lvl)
			if l == "warning" {
				l = "warn"
			}
			if l == "critical" {
				l = "error"
			}
			b.SetAttributeValue("log_level", cty.StringVal(l))
		}
		c.leftovers("log", log)
	}
	c.tags(root)
	b.AppendNewline()
	c.dcs(root, namespace)
	c.restapi(root)
	b.AppendNewline()
	methods := c.postgresql(pgsec, dynPG, boot)
	methods = c.standbyCluster(root, dyn, pgsec, methods) // standby.go
	b.AppendNewline()
	c.bootstrap(boot, methods)
	c.leftovers("bootstrap.dcs.postgresql", dynPG)
	c.leftovers("bootstrap.dcs", dyn)
	c.leftovers("bootstrap", boot)
	c.leftovers("postgresql", pgsec)
	c.leftovers("", root)
	return nil
}

func (c *conv) tags(root map[string]any) {
	tags := c.section(root, "tags", "")
	if tags == nil {
		return
	}
	if v, ok := take(tags, "clonefrom"); ok {
		if on, isBool := yamlBool(v); isBool {
			if on {
				c.body.SetAttributeRaw("tags", hclwrite.TokensForObject([]hclwrite.ObjectAttrTokens{
					{Name: hclwrite.TokensForIdentifier("clonefrom"), Value: hclwrite.TokensForValue(cty.True)},
				}))
			}
		} else {
			c.note("tags.clonefrom", v, "not a boolean")
		}
	}
	c.leftovers("tags", tags)
}

// yamlBool reads a boolean as Patroni's YAML 1.1 reader does: true, yes, on and their opposites.
func yamlBool(v any) (bool, bool) {
	switch v := v.(type) {
	case bool:
		return v, true
	case string:
		switch strings.ToLower(v) {
		case "true", "yes", "on", "y":
			return true, true
		case "false", "no", "off", "n":
			return false, true
		}
	}
	return false, false
}

func (c *conv) dcs(root map[string]any, namespace string) {
	// Patroni reads one DCS section; pgimaged speaks etcd's v3 API, which Patroni's etcd3
	// section uses. Patroni's etcd section uses the v2 API, whose keys v3 does not see.
	var kind string
	var sec map[string]any
	for _, k := range []string{"etcd3", "etcd"} {
		s := c.section(root, k, "")
		if s == nil {
			continue
		}
		if sec != nil {
			c.note(k, s, "Patroni uses one DCS: "+kind+" was converted")
			continue
		}
		kind, sec = k, s
	}
	for _, k := range otherDCS {
		if v, ok := take(root, k); ok {
			c.note(k, v, "pgimaged's DCS is etcd or its file store")
		}
	}
	if sec == nil {
		blk := c.body.AppendNewBlock("dcs", []string{"file"}).Body()
		if namespace != "" {
			blk.SetAttributeValue("namespace", cty.StringVal(namespace))
		}
		c.res.Notes = append(c.res.Notes, "no etcd or etcd3 section: the output uses pgimaged's file DCS, for members on one host")
		return
	}
	blk := c.body.AppendNewBlock("dcs", []string{"etcd"}).Body()
	path := kind
	if kind == "etcd" {
		c.res.Notes = append(c.res.Notes, "Patroni's etcd section speaks etcd's v2 API and pgimaged the v3 API, "+
			"whose keys v2 does not see: the converted members do not share a cluster with Patroni members on the same etcd")
	}
	var endpoints []string
	if h := c.str(sec, "host", path); h != "" {
		endpoints = append(endpoints, h)
	}
	if v, ok := take(sec, "hosts"); ok {
		l, ok := stringList(v)
		if !ok {
			c.note(path+".hosts", v, "not a list of host:port")
		}
		endpoints = append(endpoints, l...)
	}
	if u := c.str(sec, "url", path); u != "" { // http(s)://(username:password@)host:port
		if len(endpoints) == 0 {
			ep, user, pw, ok := splitURL(u)
			if !ok {
				c.note(path+".url", "(not shown: it may carry a password)", "not a URL")
			} else {
				endpoints = append(endpoints, ep)
				if user != "" && sec["username"] == nil {
					sec["username"] = user
				}
				if pw != "" && sec["password"] == nil {
					sec["password"] = pw
				}
			}
		} else {
			c.note(path+".url", "(not shown: it may carry a password)", "host or hosts is set, which is converted")
		}
	}
	if proto := c.str(sec, "protocol", path); proto != "" {
		for i, ep := range endpoints {
			if !strings.Contains(ep, "://") {
				endpoints[i] = proto + "://" + ep
			}
		}
	}
	blk.SetAttributeValue("endpoints", listVal(endpoints))
	if len(endpoints) == 0 {
		c.res.Notes = append(c.res.Notes, path+" names no host: set endpoints in the output")
	}
	if namespace != "" {
		blk.SetAttributeValue("namespace", cty.StringVal(namespace))
	}
	if u := c.str(sec, "username", path); u != "" {
		blk.SetAttributeValue("username", cty.StringVal(u))
	}
	c.password(blk, "password", c.str(sec, "password", path), path+".password", "PGIMAGED_ETCD_PASSWORD")
	for _, kv := range [][2]string{{"cacert", "ca_file"}, {"cert", "cert_file"}, {"key", "key_file"}} {
		if p := c.str(sec, kv[0], path); p != "" {
			blk.SetAttributeValue(kv[1], cty.StringVal(c.abs(p)))
		}
	}
	c.leftovers(path, sec)
}

// splitURL splits an etcd URL into the endpoint and the credentials it carries.
func splitURL(s string) (endpoint, user, password string, ok bool) {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return "", "", "", false
	}
	if u.User != nil {
		user = u.User.Username()
		password, _ = u.User.Password()
	}
	return u.Scheme + "://" + u.Host, user, password, true
}

func (c *conv) restapi(root map[string]any) {
	sec := c.section(root, "restapi", "")
	if sec == nil {
		return
	}
	blk := c.body.AppendNewBlock("api", nil).Body()
	for _, k := range []string{"listen", "connect_address"} {
		if v := c.str(sec, k, "restapi"); v != "" {
			blk.SetAttributeValue(k, cty.StringVal(v))
		}
	}
	for _, kv := range [][2]string{{"cafile", "ca_file"}, {"certfile", "cert_file"}, {"keyfile", "key_file"}} {
		if p := c.str(sec, kv[0], "restapi"); p != "" {
			blk.SetAttributeValue(kv[1], cty.StringVal(c.abs(p)))
		}
	}
	if auth := c.section(sec, "authentication", "restapi"); auth != nil {
		if u := c.str(auth, "username", "restapi.authentication"); u != "" {
			blk.SetAttributeValue("username", cty.StringVal(u))
		}
		c.password(blk, "password", c.str(auth, "password", "restapi.authentication"), "restapi.authentication.password", "PGIMAGED_API_PASSWORD")
		c.leftovers("restapi.authentication", auth)
	}
	c.leftovers("restapi", sec)
}

// postgresql writes the postgresql block and the replica methods' blocks; it returns the names
// of the methods it wrote a block for.
func (c *conv) postgresql(pg, dynPG, boot map[string]any) []string {
	blk := c.body.AppendNewBlock("postgresql", nil).Body()
	if d := c.str(pg, "bin_dir", "postgresql"); d != "" {
		blk.SetAttributeValue("bin_dir", cty.StringVal(c.abs(d)))
	}
	for _, k := range []string{"listen", "connect_address"} {
		if v := c.str(pg, k, "postgresql"); v != "" {
			blk.SetAttributeValue(k, cty.StringVal(v))
		}
	}
	if v, ok := take(pg, "pg_ctl_timeout"); ok {
		if d, ok := seconds(v); ok {
			blk.SetAttributeValue("pg_ctl_timeout", cty.StringVal(d))
		} else {
			c.note("postgresql.pg_ctl_timeout", v, "not a number of seconds")
		}
	}
	c.parameters(blk, pg, dynPG)
	c.rejoin(blk, pg, dynPG)
	c.pgHBA(blk, pg, dynPG, boot)
	c.authentication(blk, pg)

	var names []string
	var namesPath string
	if v, ok := take(pg, "create_replica_methods"); ok {
		names, namesPath = c.methodNames(v, "postgresql.create_replica_methods"), "postgresql.create_replica_methods"
	}
	if v, ok := take(pg, "create_replica_method"); ok {
		if names == nil {
			names, namesPath = c.methodNames(v, "postgresql.create_replica_method"), "postgresql.create_replica_method"
		} else {
			c.note("postgresql.create_replica_method", v, "create_replica_methods is set, which Patroni reads first")
		}
	}
	if names != nil {
		blk.SetAttributeValue("create_replica_methods", listVal(names))
	}
	var written []string
	for _, n := range names {
		sec, ok := take(pg, n)
		if !ok {
			if !slices.Contains(replicaBuiltins, n) {
				c.res.Notes = append(c.res.Notes, fmt.Sprintf("%s names %q, which has no postgresql.%s section", namesPath, n, n))
			}
			continue
		}
		if c.method(n, sec, "postgresql."+n) {
			written = append(written, n)
		}
	}
	if sec, ok := take(pg, "basebackup"); ok && !slices.Contains(written, "basebackup") {
		if c.method("basebackup", sec, "postgresql.basebackup") {
			written = append(written, "basebackup")
		}
	}
	return written
}

func (c *conv) methodNames(v any, path string) []string {
	l, ok := stringList(v)
	if !ok {
		c.note(path, v, "not a list of method names")
	}
	return l
}

// method writes a method block from a Patroni method section; false when none was written.
func (c *conv) method(name string, sec any, path string) bool {
	blk := hclwrite.NewBlock("method", []string{name})
	switch s := sec.(type) {
	case nil:
		return false
	case []any: // basebackup's list form: option names and single-key mappings
		c.setAny(blk.Body(), "options", s, path)
	case map[string]any:
		for _, k := range sortedKeys(s) {
			v := s[k]
			switch {
			case k == "recovery_conf":
				c.setAny(blk.Body(), "recovery_conf", v, path+".recovery_conf")
			case methodKeys[k] != "":
				c.setAny(blk.Body(), methodKeys[k], v, path+"."+k)
			default:
				c.setAny(blk.Body(), k, v, path+"."+k)
			}
		}
	default:
		c.note(path, sec, "not a mapping")
		return false
	}
	c.body.AppendNewline()
	c.body.AppendBlock(blk)
	return true
}

func (c *conv) parameters(blk *hclwrite.Body, pg, dynPG map[string]any) {
	params := map[string]any{}
	if p := c.section(dynPG, "parameters", "bootstrap.dcs.postgresql"); p != nil {
		for k, v := range p {
			params[k] = v
		}
		if len(p) > 0 {
			c.res.Notes = append(c.res.Notes, "bootstrap.dcs.postgresql.parameters are written into postgresql.parameters (the local ones win, as in Patroni)")
		}
	}
	if p := c.section(pg, "parameters", "postgresql"); p != nil {
		for k, v := range p {
			// A name is one parameter whatever its case, in PostgreSQL and in Patroni: the
			// local one replaces a dynamic one spelled otherwise.
			for d := range params {
				if strings.EqualFold(d, k) {
					delete(params, d)
				}
			}
			params[k] = v
		}
	}
	if len(params) == 0 {
		return
	}
	var items []hclwrite.ObjectAttrTokens
	for _, k := range sortedKeys(params) {
		if strings.EqualFold(k, "hot_standby") && config.ReadsAsOff(fmt.Sprint(params[k])) {
			c.note("postgresql.parameters."+k, params[k], "standbys always run as hot standbys: Patroni overrides this setting, and pgimaged's agents read each standby's state over a connection")
			continue
		}
		val, err := value(params[k])
		if err != nil {
			c.note("postgresql.parameters."+k, params[k], err.Error())
			continue
		}
		items = append(items, hclwrite.ObjectAttrTokens{Name: keyTokens(k), Value: hclwrite.TokensForValue(val)})
	}
	blk.SetAttributeRaw("parameters", hclwrite.TokensForObject(items))
}

func (c *conv) pgHBA(blk *hclwrite.Body, pg, dynPG, boot map[string]any) {
	read := func(m map[string]any, path string) ([]string, bool) {
		v, ok := take(m, "pg_hba")
		if !ok {
			return nil, false
		}
		l, ok := stringList(v)
		if !ok {
			c.note(path, v, "not a list of lines")
		}
		return l, ok
	}
	local, hasLocal := read(pg, "postgresql.pg_hba")
	dyn, hasDyn := read(dynPG, "bootstrap.dcs.postgresql.pg_hba")
	bootHBA, hasBoot := read(boot, "bootstrap.pg_hba")
	switch {
	case hasLocal:
		blk.SetAttributeValue("pg_hba", listVal(local))
		if hasDyn {
			c.note("bootstrap.dcs.postgresql.pg_hba", dyn, "postgresql.pg_hba is set, which Patroni uses instead")
		}
		if hasBoot {
			c.note("bootstrap.pg_hba", bootHBA, "postgresql.pg_hba is set, which Patroni writes over it")
		}
	case hasDyn:
		blk.SetAttributeValue("pg_hba", listVal(dyn))
		if hasBoot {
			c.note("bootstrap.pg_hba", bootHBA, "bootstrap.dcs.postgresql.pg_hba is set, which Patroni writes over it")
		}
	case hasBoot:
		blk.SetAttributeValue("pg_hba", listVal(bootHBA))
	}
}

func (c *conv) authentication(blk *hclwrite.Body, pg map[string]any) {
	auth := c.section(pg, "authentication", "postgresql")
	if auth == nil {
		return
	}
	ab := blk.AppendNewBlock("authentication", nil).Body()
	for _, role := range []string{"superuser", "replication", "rewind"} {
		path := "postgresql.authentication." + role
		sec := c.section(auth, role, "postgresql.authentication")
		if sec == nil {
			continue
		}
		rb := ab.AppendNewBlock(role, nil).Body()
		user := c.str(sec, "username", path)
		if user == "" {
			user = "postgres"
			c.res.Notes = append(c.res.Notes, path+".username is not set: written as \"postgres\"")
		}
		rb.SetAttributeValue("username", cty.StringVal(user))
		c.password(rb, "password", c.str(sec, "password", path), path+".password",
			"PGIMAGED_"+strings.ToUpper(role)+"_PASSWORD")
		c.credentialsTLS(rb, sec, path, role)
		c.leftovers(path, sec)
	}
	c.leftovers("postgresql.authentication", auth)
}

func (c *conv) bootstrap(boot map[string]any, replicaMethods []string) {
	blk := c.body.AppendNewBlock("bootstrap", nil).Body()
	if m := c.str(boot, "method", "bootstrap"); m != "" {
		blk.SetAttributeValue("method", cty.StringVal(m))
		if sec, ok := boot[m]; ok && m != "initdb" {
			delete(boot, m)
			if slices.Contains(replicaMethods, m) {
				c.note("bootstrap."+m, sec, "a replica method of the same name has the method block")
			} else {
				c.method(m, sec, "bootstrap."+m)
			}
		}
	}
	if v, ok := take(boot, "initdb"); ok {
		switch v := v.(type) {
		case map[string]any: // the mapping form: one option per key, in pgimaged's list form
			var l []any
			for _, k := range sortedKeys(v) {
				l = append(l, map[string]any{k: v[k]})
			}
			c.setAny(blk, "initdb", l, "bootstrap.initdb")
		default:
			c.setAny(blk, "initdb", v, "bootstrap.initdb")
		}
	}
	post, postPath := c.str(boot, "post_bootstrap", "bootstrap"), "bootstrap.post_bootstrap"
	if alt := c.str(boot, "post_init", "bootstrap"); alt != "" {
		if post == "" {
			post = alt
		} else {
			c.note("bootstrap.post_init", alt, postPath+" is set, which Patroni reads first")
		}
	}
	if post != "" {
		blk.SetAttributeValue("post_bootstrap", cty.StringVal(post))
	}
}

// rejoin converts Patroni's use_pg_rewind into rejoin_methods, and its
// remove_data_directory_on_rewind_failure / _on_diverged_timelines into rejoin = "reimage"; the
// local section wins over bootstrap.dcs, as in Patroni.
func (c *conv) rejoin(blk *hclwrite.Body, pg, dynPG map[string]any) {
	flag := func(key string) (bool, string, bool) {
		var on, found bool
		var path string
		for _, sec := range []struct {
			m    map[string]any
			path string
		}{{dynPG, "bootstrap.dcs.postgresql."}, {pg, "postgresql."}} {
			v, ok := take(sec.m, key)
			if !ok {
				continue
			}
			b, isBool := yamlBool(v)
			if !isBool {
				c.note(sec.path+key, v, "not a boolean")
				continue
			}
			on, path, found = b, sec.path+key, true
		}
		return on, path, found
	}
	if on, path, ok := flag("use_pg_rewind"); ok {
		methods := []string{}
		if on {
			methods = []string{"rewind"}
		}
		blk.SetAttributeValue("rejoin_methods", listVal(methods))
		c.res.Notes = append(c.res.Notes, fmt.Sprintf("%s: %v is written as postgresql.rejoin_methods = %q", path, on, methods))
	}
	for _, key := range []string{"remove_data_directory_on_rewind_failure", "remove_data_directory_on_diverged_timelines"} {
		if on, path, ok := flag(key); ok && on {
			blk.SetAttributeValue("rejoin", cty.StringVal("reimage"))
			c.res.Notes = append(c.res.Notes, path+": true is written as postgresql.rejoin = \"reimage\"")
		}
	}
}
