package patroni

import (
	"github.com/zclconf/go-cty/cty"
)

// replication converts Patroni's cluster settings for slots and synchronous replication
// (bootstrap.dcs: synchronous_mode, synchronous_mode_strict, synchronous_node_count,
// member_slots_ttl; bootstrap.dcs.postgresql: use_slots) into the top-level settings of the
// same names.
func (c *conv) replication(dyn, dynPG map[string]any) {
	b := c.body
	boolean := func(m map[string]any, path, key string) (on, set bool) {
		v, ok := take(m, key)
		if !ok {
			return false, false
		}
		on, isBool := yamlBool(v)
		if !isBool {
			c.note(path+key, v, "not a boolean (Patroni's quorum mode has no equivalent)")
			return false, false
		}
		return on, true
	}
	mode, modeSet := boolean(dyn, "bootstrap.dcs.", "synchronous_mode")
	if modeSet {
		b.SetAttributeValue("synchronous_mode", cty.BoolVal(mode))
	}
	if v, ok := dyn["synchronous_mode_strict"]; ok {
		if strict, set := boolean(dyn, "bootstrap.dcs.", "synchronous_mode_strict"); set && (mode || !strict) {
			b.SetAttributeValue("synchronous_mode_strict", cty.BoolVal(strict))
		} else if set {
			c.note("bootstrap.dcs.synchronous_mode_strict", v, "it has no effect without synchronous_mode")
		}
	}
	if v, ok := take(dyn, "synchronous_node_count"); ok {
		if n, isNum := v.(int); isNum && n >= 1 {
			b.SetAttributeValue("synchronous_node_count", cty.NumberIntVal(int64(n)))
		} else {
			c.note("bootstrap.dcs.synchronous_node_count", v, "not a whole number, 1 or more")
		}
	}
	if v, ok := take(dyn, "member_slots_ttl"); ok {
		if d, ok := seconds(v); ok && d != "0s" {
			b.SetAttributeValue("member_slots_ttl", cty.StringVal(d))
		} else {
			c.note("bootstrap.dcs.member_slots_ttl", v, "not a number of seconds above 0")
		}
	}
	if on, set := boolean(dynPG, "bootstrap.dcs.postgresql.", "use_slots"); set {
		b.SetAttributeValue("use_slots", cty.BoolVal(on))
	}
}
