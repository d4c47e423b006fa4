package sdk

import (
	"fmt"
	"strings"
)

// Option is one user-supplied method option, in the order the configuration gives it.
//
// Map form (`max-rate = "100M"`) and list form (`options = ["verbose", { max-rate = "100M" }]`)
// both arrive as a slice of Option. A bare list entry such as "verbose" has Flag set and no
// Value. Values are rendered as strings: numbers in their shortest decimal form, booleans as
// "true" or "false".
type Option struct {
	Name  string
	Value string
	Flag  bool
	// List and Map hold a list or map value (options of [TypeList] and [TypeMap]); nil otherwise.
	List []string
	Map  map[string]string
}

// String renders the option as a long command-line option: "--name=value" or "--name".
func (o Option) String() string {
	if o.Flag {
		return "--" + o.Name
	}
	return "--" + o.Name + "=" + o.Value
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

// Args renders every option as a long command-line option, in order.
func (os Options) Args() []string {
	out := make([]string, 0, len(os))
	for _, o := range os {
		out = append(out, o.String())
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
