package sdk

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Option is one user-supplied method option, in the order the configuration gives it.
//
// Map form (`max-rate = "100M"`) and list form (`options = ["verbose", { max-rate = "100M" }]`)
// both arrive as a slice of Option. A bare list entry such as "verbose" has Flag set and no
// Value. Values are rendered as strings: numbers in their shortest decimal form, booleans as
// "true" or "false". An option written as an HCL list (`tablespace-mapping = ["/a=/b"]`) has
// List set, one written as an HCL object (`env = { K = "v" }`) has Map set, their elements
// rendered the same way; an empty list or map arrives as an empty, not nil, List or Map.
type Option struct {
	Name  string
	Value string
	Flag  bool
	// List and Map hold a list or map value (options of [TypeList] and [TypeMap]); nil otherwise.
	List []string
	Map  map[string]string
}

// String renders the option as a long command-line option: "--name=value" or "--name"; a
// list or map option as its [Option.Args] joined by spaces.
func (o Option) String() string {
	if o.Flag {
		return "--" + o.Name
	}
	if o.List != nil || o.Map != nil {
		return strings.Join(o.Args(), " ")
	}
	return "--" + o.Name + "=" + o.Value
}

// Args renders the option as command-line arguments: a flag as "--name", a list as one
// "--name=element" per element in order, a map as one "--name=key=value" per entry in key
// order, and any other value as "--name=value".
func (o Option) Args() []string {
	switch {
	case o.Flag:
		return []string{"--" + o.Name}
	case o.List != nil:
		out := make([]string, 0, len(o.List))
		for _, e := range o.List {
			out = append(out, "--"+o.Name+"="+e)
		}
		return out
	case o.Map != nil:
		out := make([]string, 0, len(o.Map))
		for _, k := range slices.Sorted(maps.Keys(o.Map)) {
			out = append(out, "--"+o.Name+"="+k+"="+o.Map[k])
		}
		return out
	}
	return []string{"--" + o.Name + "=" + o.Value}
}

// Options is an ordered list of options with lookup helpers.
type Options []Option

// Get returns the value of the last option called name, and whether it was present.
func (os Options) Get(name string) (string, bool) {
	for i := len(os) - 1; i >= 0; i-- {
		if os[i].Name == name {
			return os[i].Value, true
		}
	}
	return "", false
}

// Has reports whether an option called name is present, as a flag or with a value.
func (os Options) Has(name string) bool {
	_, ok := os.Get(name)
	return ok
}

// Without returns the options whose names are not in names.
func (os Options) Without(names ...string) Options {
	out := make(Options, 0, len(os))
next:
	for _, o := range os {
		for _, n := range names {
			if o.Name == n {
				continue next
			}
		}
		out = append(out, o)
	}
	return out
}

// Args renders every option as long command-line options, in order (see [Option.Args]).
func (os Options) Args() []string {
	out := make([]string, 0, len(os))
	for _, o := range os {
		out = append(out, o.Args()...)
	}
	return out
}

// CheckName reports whether name can be rendered as a long option: not empty, no leading
// dash, no '=' and no white space or control characters.
func CheckName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("option name is empty")
	case strings.HasPrefix(name, "-"):
		return fmt.Errorf("option %q: give the long name without leading dashes", name)
	case strings.ContainsAny(name, "= \t\r\n\x00"):
		return fmt.Errorf("option %q: a name cannot contain '=', spaces or control characters", name)
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("option %q: a name cannot contain control characters", name)
		}
	}
	return nil
}
