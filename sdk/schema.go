package sdk

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/agext/levenshtein"
)

// Type is the type of a plugin option (see [OptionSpec]).
type Type int

const (
	// TypeString: any text.
	TypeString Type = iota
	// TypeBool: a boolean read by [ParseBool] (PostgreSQL's spellings); a bare list entry is true.
	TypeBool
	// TypeInt: a whole number, optionally within Min..Max.
	TypeInt
	// TypeSize: a whole number with an optional unit B, kB, MB, GB, TB (also k, M, G, T, with or
	// without B, in any case; powers of 1024). A bare number counts SizeUnit bytes. Min and Max
	// are in bytes.
	TypeSize
	// TypeDuration: a whole number with a unit ms, s, min, h, d, or Go's form ("1m30s"). A bare
	// number counts DurationUnit. Min and Max are in milliseconds.
	TypeDuration
	// TypeList: a list of strings, written as an HCL list (name = ["a", "b"]); a single string
	// is refused. A Default is written comma-separated ("a,b").
	TypeList
	// TypeMap: a map of strings to strings, written as an HCL object (name = { k = "v" }); a
	// single string is refused. It has no Default.
	TypeMap
	// TypeEnum: one of EnumValues, compared exactly.
	TypeEnum
	// TypePath: a file system path. pgimaged makes a relative one absolute against the
	// configuration file's directory before the plugin sees it, as it does every relative path
	// in the configuration: the plugin always gets an absolute path.
	TypePath
)

var typeNames = [...]string{"string", "bool", "int", "size", "duration", "list", "map", "enum", "path"}

func (t Type) String() string {
	if t >= 0 && int(t) < len(typeNames) {
		return typeNames[t]
	}
	return "type(" + strconv.Itoa(int(t)) + ")"
}

// OptionSpec describes one option a plugin takes.
type OptionSpec struct {
	Name        string
	Type        Type
	EnumValues  []string // TypeEnum: the accepted values
	Required    bool
	Default     string // written as in the configuration; "" when there is none
	Sensitive   bool   // a secret: never shown
	Description string
	Aliases     []string // deprecated names, accepted with a warning
	// Refused, when not empty, says why the option is never accepted ("pgimaged sets it").
	Refused string
	// Min and Max bound TypeInt, TypeSize (bytes) and TypeDuration (milliseconds); nil: unbounded.
	Min, Max *int64
	// SizeUnit is what a bare number counts for TypeSize, in bytes; 0 means 1.
	SizeUnit int64
	// DurationUnit is what a bare number counts for TypeDuration; 0 means a second.
	DurationUnit time.Duration
	// Flag: the option may be a bare list entry ("name"). Always true for TypeBool.
	Flag bool
}

// Schema is the set of options a plugin takes, returned in [DescribeResponse]. pgimaged checks
// every method block against it before anything runs. An Open schema accepts options it does
// not name, as strings or flags, while still checking those it names.
type Schema struct {
	Options []OptionSpec
	Open    bool
}

// Check lists what is wrong with the schema itself: options without a name or
// named twice (or as another's alias), an enum without values, a default that its own type
// refuses, bounds on a type that has none, a required option that is refused or has a default.
func (s Schema) Check() []error {
	var errs []error
	seen := map[string]bool{}
	for _, o := range s.Options {
		for _, n := range append([]string{o.Name}, o.Aliases...) {
			if err := CheckName(n); err != nil {
				errs = append(errs, err)
			}
			if seen[n] {
				errs = append(errs, fmt.Errorf("%q is named twice", n))
			}
			seen[n] = true
		}
		if o.Type == TypeEnum && len(o.EnumValues) == 0 {
			errs = append(errs, fmt.Errorf("%s: an enum without values", o.Name))
		}
		if o.Default != "" && o.Refused == "" {
			if _, err := o.parseDefault(); err != nil {
				errs = append(errs, fmt.Errorf("%s: its default does not pass its own type: %v", o.Name, err))
			}
		}
		if (o.Min != nil || o.Max != nil) && o.Type != TypeInt && o.Type != TypeSize && o.Type != TypeDuration {
			errs = append(errs, fmt.Errorf("%s: bounds on a %v", o.Name, o.Type))
		}
		if o.Required && (o.Refused != "" || o.Default != "") {
			errs = append(errs, fmt.Errorf("%s: required, yet refused or with a default", o.Name))
		}
	}
	return errs
}

// Bound returns a pointer to n, for [OptionSpec.Min] and [OptionSpec.Max].
func Bound(n int64) *int64 { return &n }

// Lookup finds the option called name, directly or by a deprecated alias; alias reports the
// latter.
func (s Schema) Lookup(name string) (spec OptionSpec, alias, ok bool) {
	for _, o := range s.Options {
		if o.Name == name {
			return o, false, true
		}
	}
	for _, o := range s.Options {
		for _, a := range o.Aliases {
			if a == name {
				return o, true, true
			}
		}
	}
	return OptionSpec{}, false, false
}

// names lists every name the schema accepts (options and aliases), refused ones excluded, for
// suggestions.
func (s Schema) names() []string {
	var out []string
	for _, o := range s.Options {
		if o.Refused == "" {
			out = append(out, o.Name)
		}
	}
	return out
}

// suggest proposes the schema's option closest to a misspelt name: the same name with '_' and
// '-' swapped first, then one within two edits (closest).
func (s Schema) suggest(name string) string {
	norm := func(n string) string { return strings.ToLower(strings.ReplaceAll(n, "_", "-")) }
	for _, n := range s.names() {
		if norm(n) == norm(name) {
			return n
		}
	}
	return closest(name, s.names())
}

// closest returns the candidate nearest to a misspelt name, within two edits; "" when none is.
func closest(name string, candidates []string) string {
	best, bestDist := "", 3
	for _, c := range candidates {
		if dist := levenshtein.Distance(name, c, nil); dist < bestDist {
			best, bestDist = c, dist
		}
	}
	return best
}

// didYouMean is " Did you mean "name"?", or "" when name is "": a suggestion to end a message.
func didYouMean(name string) string {
	if name == "" {
		return ""
	}
	return fmt.Sprintf(" Did you mean %q?", name)
}

// Check checks one option as given in a configuration against the spec: a value of the right
// type, within bounds, one of the enum's values, given as a flag only where allowed, not refused.
// The error says what is wrong and what is expected.
func (o OptionSpec) Check(opt Option) error {
	if o.Refused != "" {
		return fmt.Errorf("%s is refused: %s", o.Name, o.Refused)
	}
	if opt.Flag {
		if o.Type == TypeBool || o.Flag {
			return nil
		}
		return fmt.Errorf("%s needs a value (%s)", o.Name, o.expect())
	}
	_, err := o.parse(opt)
	return err
}

func (o OptionSpec) expect() string {
	switch o.Type {
	case TypeEnum:
		return "one of " + strings.Join(quoteAll(o.EnumValues), ", ")
	case TypeBool:
		return "true or false (on/off, yes/no, 1/0)"
	case TypeSize:
		return "a size such as 512kB or 100MB" + o.boundsText()
	case TypeDuration:
		return "a duration such as 30s or 5min" + o.boundsText()
	case TypeInt:
		return "a whole number" + o.boundsText()
	case TypeList:
		return "a list of strings"
	case TypeMap:
		return "a map of strings"
	case TypePath:
		return "a path (a relative one starts at the configuration file's directory)"
	}
	return "a string"
}

func (o OptionSpec) boundsText() string {
	show := o.FormatBound
	switch {
	case o.Min != nil && o.Max != nil:
		return fmt.Sprintf(" from %s to %s", show(*o.Min), show(*o.Max))
	case o.Min != nil:
		return " of at least " + show(*o.Min)
	case o.Max != nil:
		return " of at most " + show(*o.Max)
	}
	return ""
}

// FormatBound writes n, a bound of the option (Min, Max: bytes for a size, milliseconds for a
// duration), as a configuration writes a value of its type: "32kB", "1m30s", "5".
func (o OptionSpec) FormatBound(n int64) string {
	switch o.Type {
	case TypeSize:
		return formatSize(n)
	case TypeDuration:
		return (time.Duration(n) * time.Millisecond).String()
	}
	return strconv.FormatInt(n, 10)
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strconv.Quote(s)
	}
	return out
}

// Canonical returns opts with every deprecated alias renamed to its option's name.
func (s Schema) Canonical(opts Options) Options {
	out := make(Options, len(opts))
	for i, o := range opts {
		if spec, alias, ok := s.Lookup(o.Name); ok && alias {
			o.Name = spec.Name
		}
		out[i] = o
	}
	return out
}

// parse turns opt into the Go value for o's type: string, bool, int64, int64 bytes,
// time.Duration, []string, map[string]string.
func (o OptionSpec) parse(opt Option) (any, error) {
	if opt.Flag {
		if o.Type == TypeBool || o.Flag {
			return true, nil
		}
		return nil, fmt.Errorf("%s needs a value (%s)", o.Name, o.expect())
	}
	bad := func(err error) error {
		if o.Sensitive {
			return fmt.Errorf("%s: the value is not %s", o.Name, o.expect())
		}
		if err != nil {
			return fmt.Errorf("%s: %w; expected %s", o.Name, err, o.expect())
		}
		return fmt.Errorf("%s: %q is not %s", o.Name, opt.Value, o.expect())
	}
	if o.Type != TypeList && o.Type != TypeMap && (opt.List != nil || opt.Map != nil) {
		given := "a list"
		if opt.Map != nil {
			given = "a map"
		}
		return nil, fmt.Errorf("%s: %s was given where a single value, %s, is expected", o.Name, given, o.expect())
	}
	var n int64
	switch o.Type {
	case TypeString, TypePath:
		return opt.Value, nil
	case TypeBool:
		b, err := ParseBool(opt.Value)
		if err != nil {
			return nil, bad(nil)
		}
		return b, nil
	case TypeEnum:
		for _, v := range o.EnumValues {
			if v == opt.Value {
				return v, nil
			}
		}
		return nil, bad(nil)
	case TypeList:
		switch {
		case opt.Map != nil:
			return nil, fmt.Errorf("%s: a map was given where %s is expected; write %s = [\"a\", \"b\"]", o.Name, o.expect(), o.Name)
		case opt.List == nil:
			return nil, fmt.Errorf("%s: a single value was given where %s is expected; write %s = [\"a\", \"b\"]", o.Name, o.expect(), o.Name)
		}
		return opt.List, nil
	case TypeMap:
		switch {
		case opt.List != nil:
			return nil, fmt.Errorf("%s: a list was given where %s is expected; write %s = { key = \"value\" }", o.Name, o.expect(), o.Name)
		case opt.Map == nil:
			return nil, fmt.Errorf("%s: a single value was given where %s is expected; write %s = { key = \"value\" }", o.Name, o.expect(), o.Name)
		}
		return opt.Map, nil
	case TypeInt:
		v, err := strconv.ParseInt(strings.TrimSpace(opt.Value), 10, 64)
		if err != nil {
			return nil, bad(nil)
		}
		n = v
	case TypeSize:
		unit := o.SizeUnit
		if unit == 0 {
			unit = 1
		}
		v, err := parseSize(opt.Value, unit)
		if err != nil {
			return nil, bad(err)
		}
		n = v
	case TypeDuration:
		unit := o.DurationUnit
		if unit == 0 {
			unit = time.Second
		}
		d, err := parseDuration(opt.Value, unit)
		if err != nil {
			return nil, bad(err)
		}
		if (o.Min != nil && d < time.Duration(*o.Min)*time.Millisecond) || (o.Max != nil && d > time.Duration(*o.Max)*time.Millisecond) {
			return nil, bad(errors.New("out of range"))
		}
		return d, nil
	default:
		return nil, fmt.Errorf("%s: unknown option type %v", o.Name, o.Type)
	}
	if (o.Min != nil && n < *o.Min) || (o.Max != nil && n > *o.Max) {
		return nil, bad(errors.New("out of range"))
	}
	return n, nil
}

// parseDefault is the typed value of o's Default; a list's Default is written comma-separated.
func (o OptionSpec) parseDefault() (any, error) {
	switch o.Type {
	case TypeList:
		var out []string
		for _, s := range strings.Split(o.Default, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
		return out, nil
	case TypeMap:
		return nil, fmt.Errorf("%s: a map option has no default", o.Name)
	}
	return o.parse(Option{Name: o.Name, Value: o.Default})
}

var sizeUnits = map[string]int64{
	"b": 1, "k": 1 << 10, "kb": 1 << 10, "m": 1 << 20, "mb": 1 << 20,
	"g": 1 << 30, "gb": 1 << 30, "t": 1 << 40, "tb": 1 << 40,
}

// parseSize reads a size: a whole number with an optional unit B, kB, MB, GB or TB (k, M, G,
// T, with or without B, any case; powers of 1024, as PostgreSQL counts). A bare number counts
// unit bytes. It returns bytes.
func parseSize(s string, unit int64) (int64, error) {
	t := strings.TrimSpace(s)
	i := strings.IndexFunc(t, func(r rune) bool { return !unicode.IsDigit(r) })
	num, suffix := t, ""
	if i >= 0 {
		num, suffix = t[:i], strings.TrimSpace(t[i:])
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || (i == 0) {
		return 0, fmt.Errorf("%q is not a size", s)
	}
	mult := unit
	if suffix != "" {
		m, ok := sizeUnits[strings.ToLower(suffix)]
		if !ok {
			return 0, fmt.Errorf("%q: unknown size unit %q (B, kB, MB, GB, TB)", s, suffix)
		}
		mult = m
	}
	if n > math.MaxInt64/mult {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return n * mult, nil
}

// formatSize writes n bytes in the largest unit that divides it: "32kB", "1GB", "100B".
func formatSize(n int64) string {
	for _, u := range []struct {
		name string
		size int64
	}{{"TB", 1 << 40}, {"GB", 1 << 30}, {"MB", 1 << 20}, {"kB", 1 << 10}} {
		if n != 0 && n%u.size == 0 {
			return strconv.FormatInt(n/u.size, 10) + u.name
		}
	}
	return strconv.FormatInt(n, 10) + "B"
}

var durationUnits = map[string]time.Duration{
	"ms": time.Millisecond, "s": time.Second, "min": time.Minute, "h": time.Hour, "d": 24 * time.Hour,
}

// parseDuration reads a duration: a whole number with a unit ms, s, min, h or d (as PostgreSQL
// writes them), or Go's form ("1m30s"). A bare number counts unit.
func parseDuration(s string, unit time.Duration) (time.Duration, error) {
	t := strings.TrimSpace(s)
	i := strings.IndexFunc(t, func(r rune) bool { return !unicode.IsDigit(r) })
	if i < 0 {
		n, err := strconv.ParseInt(t, 10, 64)
		if err != nil || (unit != 0 && n > math.MaxInt64/int64(unit)) {
			return 0, fmt.Errorf("%q is not a duration", s)
		}
		return time.Duration(n) * unit, nil
	}
	if i > 0 {
		if u, ok := durationUnits[strings.TrimSpace(t[i:])]; ok {
			n, err := strconv.ParseInt(t[:i], 10, 64)
			if err != nil || n > math.MaxInt64/int64(u) {
				return 0, fmt.Errorf("%q is not a duration", s)
			}
			return time.Duration(n) * u, nil
		}
	}
	d, err := time.ParseDuration(t)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q is not a duration (for example 30s, 5min, 1h)", s)
	}
	return d, nil
}
