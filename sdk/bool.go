package sdk

import (
	"fmt"
	"strings"
)

// ParseBool reads a boolean as PostgreSQL does (boolin, parse_bool): true, yes, on and 1, or
// false, no, off and 0, in any case, and any unique prefix of them ("t", "y", "of"; "o" alone
// is ambiguous). Leading and trailing white space is ignored. Use it wherever a setting that
// PostgreSQL or Patroni users write as a boolean is read, so that every part of pgimaged and
// every plugin agrees on one rule.
func ParseBool(s string) (bool, error) {
	v := strings.ToLower(strings.TrimSpace(s))
	if v != "" {
		switch {
		case v == "1":
			return true, nil
		case v == "0":
			return false, nil
		case len(v) >= 2 && strings.HasPrefix("on", v), strings.HasPrefix("true", v), strings.HasPrefix("yes", v):
			return true, nil
		case len(v) >= 2 && strings.HasPrefix("off", v), strings.HasPrefix("false", v), strings.HasPrefix("no", v):
			return false, nil
		}
	}
	return false, fmt.Errorf("%q is not a boolean: write true or false (on/off, yes/no, 1/0)", s)
}
