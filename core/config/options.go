package config

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/pgimaged/pgimaged/sdk"
)

func (d *decoder) method(s *methodSchema) {
	if d.badLabel("method", s.Label, s.LabelRange, s.DefRange) {
		return
	}
	key := "method." + s.Label + "."
	m := &Method{
		Label: s.Label, DefRange: s.DefRange, OptionsBody: s.Rest, KeyRanges: map[string]hcl.Range{},
		RetryWait: d.duration(s.RetryWait, key+"retry_wait"),
		Timeout:   d.duration(s.Timeout, key+"timeout"),
	}
	m.Command, m.CommandWritten = d.command(s.Command, key+"command")
	d.cfg.Methods[s.Label] = m
	for _, k := range ReservedMethodKeys {
		if r, ok := d.attrs[key+k]; ok {
			m.KeyRanges[k] = r
		}
	}
	if p := d.nonEmpty(s.Plugin, key+"plugin"); p != "" && !d.badName("plugin", p, d.at(key+"plugin")) {
		m.Plugin = p
	}
	m.NoParams, _ = d.boolean(s.NoParams, key+"no_params")
	m.KeepData, _ = d.boolean(s.KeepData, key+"keep_data")
	m.KeepExistingRecoveryConf, _ = d.boolean(s.KeepExistingRecoveryConf, key+"keep_existing_recovery_conf")
	noMaster, masterSet := d.boolean(s.NoMaster, key+"no_master")
	noLeader, leaderSet := d.boolean(s.NoLeader, key+"no_leader")
	if masterSet && leaderSet && noLeader != noMaster {
		d.fail(key+"no_leader", "Conflicting settings",
			"no_leader is an alias of no_master, and the two are set differently (no_master at %s).", m.KeyRanges["no_master"].String())
	}
	m.NoMaster = noMaster || noLeader
	switch n := s.Attempts; {
	case n == nil || !d.ok(key+"attempts"):
	case *n < 1 || *n > 1_000_000 || *n != float64(int(*n)):
		d.fail(key+"attempts", "Invalid attempts", "attempts must be a whole number of at least 1.")
	default:
		m.Attempts = int(*n)
	}
	var recovery []entry
	m.RecoveryConf, recovery = d.settings(s.RecoveryConf, key+"recovery_conf", "recovery setting")
	for _, e := range recovery { // standby_mode asks for standby.signal: it is not a setting
		if e.Name == "standby_mode" {
			b, err := sdk.ParseBool(e.Value)
			if err != nil {
				d.errorAt(e.vrng, "Invalid recovery setting value", "standby_mode must be a boolean (true, false, on, off).")
			}
			m.StandbyMode = b
			delete(m.RecoveryConf, e.Name)
		}
	}

	attrs, diags := s.Rest.JustAttributes()
	d.add(diags)
	var kvs []hcl.KeyValuePair
	for _, a := range attrs {
		kvs = append(kvs, hcl.KeyValuePair{Key: hcl.StaticExpr(cty.StringVal(a.Name), a.NameRange), Value: a.Expr})
	}
	options := d.pairs(kvs, "option", false, true)
	for _, e := range d.options(s.Options, key+"options", "list", "option", false) {
		if slices.Contains(ReservedMethodKeys, e.Name) {
			d.errorAt(e.rng, "Reserved option name", "%q is read by pgimaged itself: set it as an attribute of the method block, not in options.", e.Name)
		} else {
			options = append(options, e)
		}
	}
	slices.SortStableFunc(options, func(x, y entry) int { return x.rng.Start.Byte - y.rng.Start.Byte })
	m.Options, m.OptionRanges, m.OptionHidden, m.OptionSecrets = d.split(options)
}

// entry is a decoded name = value pair: rng is the whole pair, vrng the value; secrets are what
// env() or file() read in it.
type entry struct {
	sdk.Option
	rng, vrng hcl.Range
	secrets   []string
}

// split takes entries apart into options, ranges, whether env() or file() read each, and secrets.
func (d *decoder) split(entries []entry) (opts sdk.Options, ranges []hcl.Range, hidden []bool, secrets []string) {
	for _, e := range entries {
		opts, ranges = append(opts, e.Option), append(ranges, e.rng)
		hidden, secrets = append(hidden, d.fromFunction(e.vrng)), append(secrets, e.secrets...)
	}
	return opts, ranges, hidden, secrets
}

// settings decodes parameters or recovery_conf (see options); what names an entry.
func (d *decoder) settings(expr hcl.Expression, key, what string) (m map[string]string, entries []entry) {
	if entries = d.options(expr, key, "map", what, false); entries != nil {
		m = make(map[string]string, len(entries))
	}
	for _, e := range entries {
		m[e.Name] = e.Value
	}
	return m, entries
}

// pairs decodes name = value pairs (see pair), leaving out those with errors.
func (d *decoder) pairs(kvs []hcl.KeyValuePair, what string, boolFlags, collections bool) []entry {
	out := []entry{}
	for _, kv := range kvs {
		if e, ok := d.pair(kv, what, boolFlags, collections); ok {
			out = append(out, e)
		}
	}
	return out
}

// pair decodes name = value, the value rendered by [RenderValue]; what names the entry in
// diagnostics ("option"). With boolFlags true makes a flag and false drops the entry (initdb);
// with collections a list or map makes a list or map option. ok is false after an error.
func (d *decoder) pair(kv hcl.KeyValuePair, what string, boolFlags, collections bool) (e entry, ok bool) {
	var name string
	var v cty.Value
	if nameOK, valueOK := d.value(kv.Key, &name), d.value(kv.Value, &v); !nameOK || !valueOK {
		return e, false
	}
	e = entry{Option: sdk.Option{Name: name}, rng: hcl.RangeBetween(kv.Key.Range(), kv.Value.Range()), vrng: kv.Value.Range()}
	if problem := d.nameProblem(kv.Key.Range(), what, name); problem != "" {
		d.errorAt(e.rng, "Invalid "+what+" name", "%s", problem)
		return e, false
	}
	t, known := v.Type(), !v.IsNull() && v.IsKnown()
	isList := t.IsTupleType() || t.IsListType() || t.IsSetType()
	switch {
	case boolFlags && known && t == cty.Bool:
		e.Flag = v.True()
		return e, e.Flag
	case collections && known && (isList || t.IsObjectType() || t.IsMapType()):
		return e, d.collection(&e, kv.Value, v, isList)
	}
	s, err := RenderValue(v)
	if err != nil {
		d.errorAt(e.vrng, "Invalid "+what+" value", "%s %q: %s.", what, name, err)
		return e, false
	}
	if e.Value = s; d.fromFunction(e.vrng) {
		e.secrets = []string{s}
	}
	return e, true
}

// collection fills e's List or Map from v, written as expr, and its secrets with what env() or
// file() read. It reports whether all elements are scalars.
func (d *decoder) collection(e *entry, expr hcl.Expression, v cty.Value, isList bool) bool {
	ok := true
	if isList {
		e.List = []string{}
	} else {
		e.Map = map[string]string{}
	}
	for i, el := range d.elements(expr, v) {
		what := fmt.Sprintf("element %d of option %q", i+1, e.Name)
		if !isList && d.fromFunction(el.krng) {
			what = fmt.Sprintf("an entry of option %q", e.Name)
			e.secrets = append(e.secrets, el.key)
		} else if !isList {
			what = fmt.Sprintf("entry %q of option %q", el.key, e.Name)
		}
		s, err := RenderValue(el.value)
		switch {
		case err != nil:
			d.errorAt(el.rng, "Invalid option value", "%s: %s; a list or map option holds strings, numbers or bools.", what, err)
			ok = false
		case !isList && el.key == "":
			d.errorAt(el.krng, "Invalid option value", "A key of option %q is empty.", e.Name)
			ok = false
		case isList:
			e.List = append(e.List, s)
		default:
			e.Map[el.key] = s
		}
		if d.fromFunction(el.rng) {
			e.secrets = append(e.secrets, s)
		}
	}
	return ok
}

// element is one element of a list or map value, with where its value and key were written.
type element struct {
	key       string
	value     cty.Value
	rng, krng hcl.Range
}

// elements lists the elements of v, written as expr: in source order with their own places when
// expr is a literal, else in key order at expr's place.
func (d *decoder) elements(expr hcl.Expression, v cty.Value) []element {
	var out []element
	for it := v.ElementIterator(); it.Next(); {
		k, ev := it.Element()
		key, _ := RenderValue(k)
		out = append(out, element{key: key, value: ev, rng: expr.Range(), krng: expr.Range()})
	}
	if exprs, diags := hcl.ExprList(expr); !diags.HasErrors() && len(exprs) == len(out) {
		for i, x := range exprs {
			out[i].rng = x.Range()
		}
	} else if kvs, diags := hcl.ExprMap(expr); !diags.HasErrors() && len(kvs) == len(out) {
		out = out[:0]
		for _, kv := range kvs {
			k, _ := kv.Key.Value(d.ctx)
			ev, _ := kv.Value.Value(d.ctx)
			key, _ := RenderValue(k)
			out = append(out, element{key: key, value: ev, rng: kv.Value.Range(), krng: kv.Key.Range()})
		}
	}
	return out
}

// nameProblem says what is wrong with an option's name ([sdk.CheckName], not showing what env()
// or file() read), written at rng, or with another entry's (empty); "" when nothing.
func (d *decoder) nameProblem(rng hcl.Range, what, name string) string {
	switch err := sdk.CheckName(name); {
	case what != "option" && strings.TrimSpace(name) == "":
		return fmt.Sprintf("A %s name must not be empty.", what)
	case what == "option" && err != nil && d.fromFunction(rng):
		return "The option name read by env() or file() must be a long option name without leading dashes, '=', spaces or control characters."
	case what == "option" && err != nil:
		return err.Error() + "."
	}
	return ""
}

// options decodes the setting at key, a literal map of name = value entries or a list of flags
// and objects of name = value options, as want ("map", "list" or "list or map") allows; what
// and boolFlags are as for pair. It is nil when the setting is not written or wrong.
func (d *decoder) options(expr hcl.Expression, key, want, what string, boolFlags bool) []entry {
	if kvs, diags := hcl.ExprMap(expr); !diags.HasErrors() && strings.Contains(want, "map") {
		return d.pairs(kvs, what, boolFlags, false)
	}
	elems, diags := hcl.ExprList(expr)
	if diags.HasErrors() || !strings.Contains(want, "list") {
		if v, diags := expr.Value(nil); diags.HasErrors() || !v.IsNull() { // written, not null
			d.wrongType(key, want)
		}
		return nil
	}
	out := []entry{}
	for _, e := range elems {
		var v cty.Value
		kvs, diags := hcl.ExprMap(e)
		switch {
		case !diags.HasErrors():
			out = append(out, d.pairs(kvs, "option", boolFlags, false)...)
		case !d.value(e, &v):
		case v.IsNull() || v.Type() != cty.String:
			d.errorAt(e.Range(), "Invalid option", "An element of an option list must be a flag name (a string) or an object of name = value options.")
		default:
			name := v.AsString()
			if detail := d.nameProblem(e.Range(), "option", name); detail != "" {
				if k, val, found := strings.Cut(name, "="); found && sdk.CheckName(k) == nil && !d.fromFunction(e.Range()) {
					detail += fmt.Sprintf(" For an option with a value write an object: { %s = %q }.", k, val)
				}
				d.errorAt(e.Range(), "Invalid option name", "%s", detail)
				continue
			}
			out = append(out, entry{Option: sdk.Option{Name: name, Flag: true}, rng: e.Range()})
		}
	}
	return out
}

// toGo turns a cty value into plain Go values: string, int64 or float64, bool, []any,
// map[string]any, or nil. A number that does not fit a float64 is ErrNumberRange.
func toGo(v cty.Value) (any, error) {
	t := v.Type()
	switch {
	case v.IsNull():
		return nil, nil
	case t == cty.Bool:
		return v.True(), nil
	case t.IsObjectType() || t.IsMapType():
		m := map[string]any{}
		for k, e := range v.AsValueMap() {
			g, err := toGo(e)
			if err != nil {
				return nil, fmt.Errorf("%q: %w", k, err)
			}
			m[k] = g
		}
		return m, nil
	case t.IsTupleType() || t.IsListType() || t.IsSetType():
		s := []any{}
		for _, e := range v.AsValueSlice() {
			g, err := toGo(e)
			if err != nil {
				return nil, err
			}
			s = append(s, g)
		}
		return s, nil
	}
	s, err := RenderValue(v) // a string, or a number within RenderValue's range
	if err != nil || t == cty.String {
		return s, err
	} else if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		return i, nil
	} else if f, err := strconv.ParseFloat(s, 64); err == nil {
		return f, nil
	}
	return nil, ErrNumberRange
}
