package config

import (
	"fmt"
	"math"
	"math/big"
	"slices"
	"strings"

	"github.com/agext/levenshtein"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"

	"github.com/pgimaged/pgimaged/sdk"
)

func (d *decoder) method(s *methodSchema) {
	first, dup := d.cfg.Methods[s.Label]
	if d.badName("method", s.Label, s.LabelRange, nil) || dup && d.duplicate("method", s.Label, s.DefRange, first.DefRange) {
		return
	}
	m := &Method{Label: s.Label, DefRange: s.DefRange, OptionsBody: s.Rest, KeyRanges: map[string]hcl.Range{}}
	d.cfg.Methods[s.Label] = m
	if body, ok := s.Rest.(*hclsyntax.Body); ok { // the remain body hides pgimaged's keys but holds them
		for _, k := range ReservedMethodKeys {
			if a := body.Attributes[k]; a != nil {
				m.KeyRanges[k] = a.SrcRange
			}
		}
	}
	m.Command, _ = d.nonEmpty(s.Command, "command")
	if p, ok := d.nonEmpty(s.Plugin, "plugin"); ok && !d.badName("plugin", p, s.Plugin.Range(), s.Plugin) {
		m.Plugin = p
	}
	m.NoParams, _ = d.boolean(s.NoParams, "no_params")
	m.KeepData, _ = d.boolean(s.KeepData, "keep_data")
	m.KeepExistingRecoveryConf, _ = d.boolean(s.KeepExistingRecoveryConf, "keep_existing_recovery_conf")
	noMaster, nmOK := d.boolean(s.NoMaster, "no_master")
	if noLeader, ok := d.boolean(s.NoLeader, "no_leader"); ok {
		if nmOK && noLeader != noMaster {
			d.errorAt(s.NoLeader.Range(), "Conflicting settings",
				"no_leader is an alias of no_master, and the two are set differently (no_master at %s).", m.KeyRanges["no_master"].String())
		}
		noMaster = noMaster || noLeader
	}
	m.NoMaster = noMaster
	if noMaster && PluginNameFor(m, func(name string) bool { return name == "basebackup" }) == "basebackup" {
		expr, name := s.NoMaster, "no_master"
		if !written(expr) {
			expr, name = s.NoLeader, "no_leader"
		}
		d.errorAt(expr.Range(), "No source for basebackup",
			"basebackup copies from a running member with pg_basebackup, so it cannot be tried without one: remove %s.", name)
	}
	m.Attempts, _ = d.attempts(s.Attempts)
	m.RetryWait, _ = d.duration(s.RetryWait, "retry_wait")
	m.Timeout, _ = d.duration(s.Timeout, "timeout")
	d.recoveryConf(m, s.RecoveryConf)

	rest, diags := s.Rest.JustAttributes()
	d.add(diags)
	var attrs []item
	for _, attr := range rest {
		v, diags := attr.Expr.Value(d.ctx)
		d.add(diags)
		if !diags.HasErrors() {
			attrs = append(attrs, item{name: attr.Name, value: v, rng: attr.Range, vrng: attr.Expr.Range()})
		}
	}
	items := d.optionItems(attrs, false)
	for _, it := range d.listOptions(s.Options, "options", false) {
		if slices.Contains(ReservedMethodKeys, it.opt.Name) {
			d.errorAt(it.rng, "Reserved option name",
				"%q is read by pgimaged itself: set it as an attribute of the method block, not in options.", it.opt.Name)
			continue
		}
		items = append(items, it)
	}
	slices.SortStableFunc(items, func(x, y optItem) int { return x.rng.Start.Byte - y.rng.Start.Byte })
	for _, it := range items {
		m.Options = append(m.Options, it.opt)
		m.OptionRanges = append(m.OptionRanges, it.rng)
	}
}

func (d *decoder) attempts(expr hcl.Expression) (int, bool) {
	v, ok := d.value(expr)
	if !ok {
		return 0, false
	}
	n, err := convert.Convert(v, cty.Number)
	if err != nil {
		d.wrongType(expr.Range(), "attempts", "number")
		return 0, false
	}
	i, acc := n.AsBigFloat().Int64()
	if acc != big.Exact || i < 1 || i > 1_000_000 {
		d.errorAt(expr.Range(), "Invalid attempts", "attempts must be a whole number of at least 1.")
		return 0, false
	}
	return int(i), true
}

// recoveryConf decodes recovery_conf; standby_mode moves out of the settings into
// m.StandbyMode.
func (d *decoder) recoveryConf(m *Method, expr hcl.Expression) {
	items, settings := d.scalarMap(expr, "recovery_conf", "recovery setting")
	for _, it := range items {
		if it.name != "standby_mode" {
			continue
		}
		b, err := sdk.ParseBool(settings[it.name])
		if err != nil {
			d.errorAt(it.vrng, "Invalid recovery setting value", "standby_mode must be a boolean (true, false, on, off).")
		}
		m.StandbyMode = b
		delete(settings, it.name)
	}
	m.RecoveryConf = settings
}

// optItem is a decoded option with where it was written.
type optItem struct {
	opt sdk.Option
	rng hcl.Range
}

// listOptions decodes the list form: a string element is a flag, an object element gives
// name = value options in source order. With boolFlags a true value makes a flag and a false
// one drops the option (initdb); otherwise booleans render as "true" and "false".
func (d *decoder) listOptions(expr hcl.Expression, name string, boolFlags bool) []optItem {
	elems, diags := hcl.ExprList(expr)
	if diags.HasErrors() {
		if written(expr) {
			d.wrongType(expr.Range(), name, "list")
		}
		return nil
	}
	var out []optItem
	for _, e := range elems {
		v, diags := e.Value(d.ctx)
		d.add(diags)
		if !diags.HasErrors() {
			out = append(out, d.listElement(v, e, boolFlags)...)
		}
	}
	return out
}

// listElement decodes one element, written as expr, of a list-form option list.
func (d *decoder) listElement(v cty.Value, expr hcl.Expression, boolFlags bool) []optItem {
	v, _ = v.Unmark()
	switch {
	case !v.IsNull() && v.Type() == cty.String:
		s := v.AsString()
		if err := sdk.CheckName(s); err != nil {
			detail := err.Error() + "."
			if callsFunction(expr) {
				detail = "The option name read by env() or file() must be a long option name without leading dashes, '=', spaces or control characters."
			} else if k, val, found := strings.Cut(s, "="); found && sdk.CheckName(k) == nil {
				detail += fmt.Sprintf(" For an option with a value write an object: { %s = %q }.", k, val)
			}
			d.errorAt(expr.Range(), "Invalid option name", "%s", detail)
			return nil
		}
		return []optItem{{opt: sdk.Option{Name: s, Flag: true}, rng: expr.Range()}}
	case !v.IsNull() && (v.Type().IsObjectType() || v.Type().IsMapType()):
		items, _ := d.pairs(expr, "options")
		return d.optionItems(items, boolFlags)
	}
	d.errorAt(expr.Range(), "Invalid option",
		"An element of an option list must be a flag name (a string) or an object of name = value options.")
	return nil
}

func (d *decoder) optionItems(items []item, boolFlags bool) []optItem {
	var out []optItem
	for _, it := range items {
		if err := sdk.CheckName(it.name); err != nil {
			d.errorAt(it.rng, "Invalid option name", "%s.", err)
			continue
		}
		if v, _ := it.value.Unmark(); boolFlags && !v.IsNull() && v.IsKnown() && v.Type() == cty.Bool {
			if v.True() {
				out = append(out, optItem{opt: sdk.Option{Name: it.name, Flag: true}, rng: it.rng})
			}
			continue
		}
		s, err := RenderValue(it.value)
		if err != nil {
			d.errorAt(it.vrng, "Invalid option value", "option %q: %s.", it.name, err)
			continue
		}
		out = append(out, optItem{opt: sdk.Option{Name: it.name, Value: s}, rng: it.rng})
	}
	return out
}

// initdbOptions decodes bootstrap.initdb in map or list form.
func (d *decoder) initdbOptions(expr hcl.Expression) []optItem {
	if _, diags := hcl.ExprMap(expr); !diags.HasErrors() {
		items, _ := d.pairs(expr, "initdb")
		return d.optionItems(items, true)
	}
	if _, diags := hcl.ExprList(expr); !diags.HasErrors() || !written(expr) {
		return d.listOptions(expr, "initdb", true)
	}
	d.wrongType(expr.Range(), "initdb", "list or map")
	return nil
}

// suggest proposes the candidate closest to a misspelt name, within two edits.
func suggest(name string, candidates []string) string {
	best, bestDist := "", 3
	for _, c := range candidates {
		if dist := levenshtein.Distance(name, c, nil); dist < bestDist {
			best, bestDist = c, dist
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" Did you mean %q?", best)
}

// toGo turns a cty value into plain Go values: string, int64 or float64, bool, []any,
// map[string]any, or nil. A number that does not fit a float64 is ErrNumberRange.
func toGo(v cty.Value) (any, error) {
	v, _ = v.Unmark()
	if v.IsNull() || !v.IsKnown() {
		return nil, nil
	}
	t := v.Type()
	switch {
	case t == cty.String:
		return v.AsString(), nil
	case t == cty.Bool:
		return v.True(), nil
	case t == cty.Number:
		f := v.AsBigFloat()
		if i, acc := f.Int64(); acc == big.Exact {
			return i, nil
		}
		x, _ := f.Float64()
		if math.IsInf(x, 0) || (x == 0 && f.Sign() != 0) {
			return nil, ErrNumberRange
		}
		return x, nil
	case t.IsObjectType() || t.IsMapType():
		m := make(map[string]any, v.LengthInt())
		for it := v.ElementIterator(); it.Next(); {
			k, e := it.Element()
			g, err := toGo(e)
			if err != nil {
				return nil, fmt.Errorf("%q: %w", k.AsString(), err)
			}
			m[k.AsString()] = g
		}
		return m, nil
	case t.IsTupleType() || t.IsListType() || t.IsSetType():
		s := make([]any, 0, v.LengthInt())
		for it := v.ElementIterator(); it.Next(); {
			_, e := it.Element()
			g, err := toGo(e)
			if err != nil {
				return nil, err
			}
			s = append(s, g)
		}
		return s, nil
	}
	return nil, nil
}
