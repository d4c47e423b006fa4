package config

import (
	"fmt"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/pgimaged/pgimaged/sdk"
)

// collection decodes the method option kv when its value is a list (an HCL tuple, list or set)
// or a map (an HCL object or map) of scalars: an entry whose Option has List or Map set, each
// element rendered by [RenderValue] and checked at its own place, and whose secrets hold every
// element (and map key) read by env() or file(). isColl is false when the value is not a
// collection, for the caller to decode it as a scalar; e is nil after an error.
func (d *decoder) collection(kv hcl.KeyValuePair) (e *entry, isColl bool) {
	v, diags := kv.Value.Value(d.ctx)
	v, _ = v.Unmark()
	if diags.HasErrors() || v.IsNull() || !v.IsKnown() {
		return nil, false
	}
	t := v.Type()
	isList := t.IsTupleType() || t.IsListType() || t.IsSetType()
	if !isList && !t.IsObjectType() && !t.IsMapType() {
		return nil, false
	}
	var name string
	if !d.value(kv.Key, &name) {
		return nil, true
	}
	out := &entry{Option: sdk.Option{Name: name}, rng: hcl.RangeBetween(kv.Key.Range(), kv.Value.Range()), vrng: kv.Value.Range()}
	if problem := d.nameProblem(kv.Key.Range(), "option", name); problem != "" {
		d.errorAt(out.rng, "Invalid option name", "%s", problem)
		return nil, true
	}
	ok := true
	if isList {
		out.List = []string{}
		for i, el := range d.elements(kv.Value, v) {
			s, good := d.element(el.value, el.rng, fmt.Sprintf("element %d of option %q", i+1, name))
			ok = ok && good
			out.List = append(out.List, s)
			if d.fromFunction(el.rng) {
				out.secrets = append(out.secrets, s)
			}
		}
	} else {
		out.Map = map[string]string{}
		for _, el := range d.entriesOf(kv.Value, v) {
			what := fmt.Sprintf("entry %q of option %q", el.key, name)
			if d.fromFunction(el.krng) {
				what = fmt.Sprintf("an entry of option %q", name)
			}
			s, good := d.element(el.value, el.rng, what)
			switch _, dup := out.Map[el.key]; {
			case el.key == "":
				d.errorAt(el.krng, "Invalid option value", "A key of option %q is empty.", name)
				good = false
			case dup:
				d.errorAt(el.krng, "Invalid option value", "%s is given twice.", what)
				good = false
			}
			ok = ok && good
			out.Map[el.key] = s
			if d.fromFunction(el.krng) {
				out.secrets = append(out.secrets, el.key)
			}
			if d.fromFunction(el.rng) {
				out.secrets = append(out.secrets, s)
			}
		}
	}
	if !ok {
		return nil, true
	}
	return out, true
}

// element renders one element of a list or map option written at rng; what names it in
// diagnostics, which never show its value.
func (d *decoder) element(v cty.Value, rng hcl.Range, what string) (string, bool) {
	s, err := RenderValue(v)
	if err != nil {
		d.errorAt(rng, "Invalid option value", "%s: %s; a list or map option holds strings, numbers or bools.", what, err)
		return "", false
	}
	return s, true
}

type element struct {
	value cty.Value
	key   string
	rng   hcl.Range // the element's value
	krng  hcl.Range // a map entry's key
}

// elements lists the elements of the list value v written as expr, each with its own place when
// expr is a literal list, else with expr's place.
func (d *decoder) elements(expr hcl.Expression, v cty.Value) []element {
	var out []element
	if exprs, diags := hcl.ExprList(expr); !diags.HasErrors() && len(exprs) == v.LengthInt() {
		for _, x := range exprs {
			ev, _ := x.Value(d.ctx)
			out = append(out, element{value: ev, rng: x.Range()})
		}
		return out
	}
	for _, ev := range v.AsValueSlice() {
		out = append(out, element{value: ev, rng: expr.Range()})
	}
	return out
}

// entriesOf lists the entries of the map value v written as expr, in source order with their own
// places when expr is a literal object, else in key order with expr's place.
func (d *decoder) entriesOf(expr hcl.Expression, v cty.Value) []element {
	var out []element
	if kvs, diags := hcl.ExprMap(expr); !diags.HasErrors() && len(kvs) == v.LengthInt() {
		for _, kv := range kvs {
			k, _ := kv.Key.Value(d.ctx)
			k, _ = k.Unmark()
			key, err := RenderValue(k)
			if err != nil {
				continue // the whole object did evaluate, so every key is a string
			}
			ev, _ := kv.Value.Value(d.ctx)
			out = append(out, element{value: ev, key: key, rng: kv.Value.Range(), krng: kv.Key.Range()})
		}
		return out
	}
	for k, ev := range v.AsValueMap() {
		out = append(out, element{value: ev, key: k, rng: expr.Range(), krng: expr.Range()})
	}
	return out
}

// String describes the method with the values read by env() or file() masked, in lists and maps
// element by element.
func (m Method) String() string {
	type plain Method
	p := plain(m)
	p.Options = maskOptions(m.Options, m.OptionHidden, m.OptionSecrets)
	p.OptionSecrets = maskAll(m.OptionSecrets)
	return fmt.Sprintf("%+v", p)
}

// GoString is like String for the %#v verb.
func (m Method) GoString() string { return "config.Method" + m.String() }

// String describes the bootstrap settings with initdb's values read by env() or file() masked.
func (b Bootstrap) String() string {
	type plain Bootstrap
	p := plain(b)
	var secrets []string
	for i, o := range b.Initdb {
		if i < len(b.InitdbHidden) && b.InitdbHidden[i] {
			secrets = append(secrets, o.Value)
		}
	}
	p.Initdb = maskOptions(b.Initdb, b.InitdbHidden, secrets)
	return fmt.Sprintf("%+v", p)
}

// GoString is like String for the %#v verb.
func (b Bootstrap) GoString() string { return "config.Bootstrap" + b.String() }

// maskOptions returns a copy of opts in which every secret is masked in the hidden options'
// values, list elements, map keys and map values.
func maskOptions(opts sdk.Options, hidden []bool, secrets []string) sdk.Options {
	mask := sdk.Masker(secrets)
	out := make(sdk.Options, len(opts))
	for i, o := range opts {
		if i < len(hidden) && hidden[i] {
			o.Value = mask.Mask(o.Value)
			if o.List != nil {
				o.List = mask.MaskArgv(o.List)
			}
			if o.Map != nil {
				m := make(map[string]string, len(o.Map))
				for k, v := range o.Map {
					m[mask.Mask(k)] = mask.Mask(v)
				}
				o.Map = m
			}
		}
		out[i] = o
	}
	return out
}

func maskAll(ss []string) []string {
	if ss == nil {
		return nil
	}
	out := make([]string, len(ss))
	for i := range ss {
		out[i] = masked
	}
	return out
}
