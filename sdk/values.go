package sdk

import (
	"fmt"
	"reflect"
	"time"
)

// Values are a request's options decoded against the plugin's [Schema]: typed, under their own
// names (deprecated aliases resolved), with defaults for those not given. [Serve] fills the
// Values of every request from the schema Describe returns; tests build them with
// [Schema.Decode].
//
// Reading an option the schema does not name panics: it is a bug in the plugin.
type Values struct {
	schema Schema
	given  map[string]any
	extra  Options
}

// Decode checks opts against the schema ([Schema.Problems]) and returns their typed values, with
// a diagnostic for every problem: an error, or a warning for a deprecated alias. pgimaged runs the
// same checks before anything runs, with the configuration's file:line:col.
func (s Schema) Decode(opts Options) (Values, []Diagnostic) {
	v, problems := s.check(opts, nil)
	var diags []Diagnostic
	for _, p := range problems {
		d := Errorf(p.Spec.Name, p.Kind.String(), "")
		if p.Index >= 0 {
			d.Option = opts[p.Index].Name
		}
		switch p.Kind {
		case ProblemUnknown:
			d.Detail = fmt.Sprintf("%s is not an option of this plugin.%s", d.Option, didYouMean(p.Suggestion))
		case ProblemAlias:
			d.Severity, d.Detail = SeverityWarning, fmt.Sprintf("%s is a deprecated name of %s: write %s.", d.Option, p.Spec.Name, p.Spec.Name)
		case ProblemRefused:
			d.Detail = p.Spec.Refused
		case ProblemInvalid:
			d.Detail = p.Err.Error()
		case ProblemMissing:
			d.Detail = fmt.Sprintf("%s is required: %s", d.Option, p.Spec.Description)
		}
		diags = append(diags, d)
	}
	return v, diags
}

// ProblemKind is what [Schema.Problems] finds wrong with an option; its String is a summary.
type ProblemKind int

// The problems [Schema.Problems] finds.
const (
	ProblemUnknown ProblemKind = iota // not named by a closed schema
	ProblemAlias                      // given under a deprecated alias: a warning only
	ProblemRefused                    // refused by the schema (OptionSpec.Refused)
	ProblemInvalid                    // a value that does not fit the option's type
	ProblemMissing                    // a required option not given
)

var problemSummaries = [...]string{"Unknown option", "Deprecated option name", "Refused option", "Invalid option value", "Missing required option"}

func (k ProblemKind) String() string { return problemSummaries[k] }

// Problem is one thing wrong with options checked against a schema.
type Problem struct {
	Kind       ProblemKind
	Index      int        // of the option in the checked Options; -1 for ProblemMissing
	Spec       OptionSpec // the option's spec; empty for ProblemUnknown
	Err        error      // ProblemInvalid: what is wrong, never showing a sensitive value
	Suggestion string     // ProblemUnknown: the closest name the schema takes, or ""
}

// Problems checks opts against the schema: an option a closed schema does not name, one given
// under a deprecated alias, a refused one, a value of the wrong type or outside its bounds or
// enum, and a required option not given (in any form). Options marked in hidden (parallel to
// opts, possibly shorter) count as sensitive: their values are never shown.
func (s Schema) Problems(opts Options, hidden []bool) []Problem {
	_, problems := s.check(opts, hidden)
	return problems
}

func (s Schema) check(opts Options, hidden []bool) (Values, []Problem) {
	v := Values{schema: s, given: map[string]any{}}
	var problems []Problem
	named := map[string]bool{}
	for i, o := range opts {
		spec, alias, ok := s.Lookup(o.Name)
		switch {
		case !ok && s.Open:
			v.extra = append(v.extra, o)
			continue
		case !ok:
			problems = append(problems, Problem{Kind: ProblemUnknown, Index: i, Suggestion: s.suggest(o.Name)})
			continue
		case alias:
			problems = append(problems, Problem{Kind: ProblemAlias, Index: i, Spec: spec})
		}
		named[spec.Name] = true
		if spec.Refused != "" {
			problems = append(problems, Problem{Kind: ProblemRefused, Index: i, Spec: spec})
			continue
		}
		spec.Sensitive = spec.Sensitive || i < len(hidden) && hidden[i]
		if val, err := spec.parse(o); err != nil {
			problems = append(problems, Problem{Kind: ProblemInvalid, Index: i, Spec: spec, Err: err})
		} else {
			v.given[spec.Name] = val
		}
	}
	for _, spec := range s.Options {
		if spec.Required && spec.Refused == "" && !named[spec.Name] {
			problems = append(problems, Problem{Kind: ProblemMissing, Index: -1, Spec: spec})
		}
	}
	return v, problems
}

// Has reports whether the option was given in the configuration (under its name or an alias).
func (v Values) Has(name string) bool {
	v.spec(name)
	_, ok := v.given[name]
	return ok
}

// Extra returns, in order, the options of an open schema that the schema does not name.
func (v Values) Extra() Options { return v.extra }

func (v Values) spec(name string) OptionSpec {
	for _, o := range v.schema.Options {
		if o.Name == name {
			return o
		}
	}
	if len(v.schema.Options) == 0 && !v.schema.Open {
		panic(fmt.Sprintf("sdk: reading option %q from empty Values: a request that does not come through sdk.Serve needs its Values from Schema.Decode", name))
	}
	panic(fmt.Sprintf("sdk: option %q is not in the plugin's schema", name))
}

func (v Values) get(name string, t ...Type) any {
	spec := v.spec(name)
	ok := false
	for _, x := range t {
		ok = ok || spec.Type == x
	}
	if !ok {
		panic(fmt.Sprintf("sdk: option %q is a %v, not read as a %v", name, spec.Type, t[0]))
	}
	if x, ok := v.given[name]; ok {
		return x
	}
	if spec.Default != "" {
		if x, err := spec.parseDefault(); err == nil {
			return x
		}
	}
	return nil
}

// String returns a string, enum or path option, its default, or "".
func (v Values) String(name string) string {
	s, _ := v.get(name, TypeString, TypeEnum, TypePath).(string)
	return s
}

// Bool returns a bool option, its default, or false.
func (v Values) Bool(name string) bool {
	b, _ := v.get(name, TypeBool).(bool)
	return b
}

// Int returns an int option, its default, or 0.
func (v Values) Int(name string) int64 {
	n, _ := v.get(name, TypeInt).(int64)
	return n
}

// Size returns a size option in bytes, its default, or 0.
func (v Values) Size(name string) int64 {
	n, _ := v.get(name, TypeSize).(int64)
	return n
}

// Duration returns a duration option, its default, or 0.
func (v Values) Duration(name string) time.Duration {
	d, _ := v.get(name, TypeDuration).(time.Duration)
	return d
}

// List returns a list option, its default, or nil.
func (v Values) List(name string) []string {
	l, _ := v.get(name, TypeList).([]string)
	return l
}

// Map returns a map option or nil.
func (v Values) Map(name string) map[string]string {
	m, _ := v.get(name, TypeMap).(map[string]string)
	return m
}

// Into fills the fields of the struct dst points to that carry an `option:"name"` tag, from the
// option of that name (or its default):
//
//	var o struct {
//		Checkpoint string        `option:"checkpoint"` // string or enum
//		MaxRate    int64         `option:"max-rate"`   // int, or size in bytes
//		Verbose    bool          `option:"verbose"`
//		Wait       time.Duration `option:"wait"`
//		Hosts      []string      `option:"hosts"`
//		Labels     map[string]string `option:"labels"`
//	}
//	err := req.Values.Into(&o)
//
// A tag naming an option the schema lacks, or a field whose Go type does not fit the option's
// type, is an error.
func (v Values) Into(dst any) error {
	rv := reflect.ValueOf(dst)
	if rv.Kind() != reflect.Pointer || rv.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("sdk: Values.Into needs a pointer to a struct, not %T", dst)
	}
	rv = rv.Elem()
	for i := 0; i < rv.NumField(); i++ {
		f := rv.Type().Field(i)
		name, ok := f.Tag.Lookup("option")
		if !ok {
			continue
		}
		spec, _, known := v.schema.Lookup(name)
		if !known || spec.Name != name {
			return fmt.Errorf("sdk: field %s: option %q is not in the plugin's schema", f.Name, name)
		}
		fv := rv.Field(i)
		mismatch := fmt.Errorf("sdk: field %s (%s) cannot hold option %q of type %v", f.Name, f.Type, name, spec.Type)
		switch {
		case f.Type == reflect.TypeOf(time.Duration(0)):
			if spec.Type != TypeDuration {
				return mismatch
			}
			fv.SetInt(int64(v.Duration(name)))
		case fv.Kind() == reflect.String && (spec.Type == TypeString || spec.Type == TypeEnum || spec.Type == TypePath):
			fv.SetString(v.String(name))
		case fv.Kind() == reflect.Bool && spec.Type == TypeBool:
			fv.SetBool(v.Bool(name))
		case fv.CanInt() && spec.Type == TypeInt:
			fv.SetInt(v.Int(name))
		case fv.CanInt() && spec.Type == TypeSize:
			fv.SetInt(v.Size(name))
		case f.Type == reflect.TypeOf([]string(nil)) && spec.Type == TypeList:
			fv.Set(reflect.ValueOf(v.List(name)))
		case f.Type == reflect.TypeOf(map[string]string(nil)) && spec.Type == TypeMap:
			fv.Set(reflect.ValueOf(v.Map(name)))
		default:
			return mismatch
		}
	}
	return nil
}
