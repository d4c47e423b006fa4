package api

import (
	"strconv"
	"strings"
)

// sizeUnits are the units Patroni accepts in ?lag=, PostgreSQL's memory units (1024-based,
// case-sensitive).
var sizeUnits = map[string]int64{"": 1, "B": 1, "kB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30, "TB": 1 << 40}

// ParseSize reads a lag limit as Patroni does: a number of bytes, optionally followed by B, kB,
// MB, GB or TB. false when s is empty or not a size: then, as in Patroni, there is no limit.
func ParseSize(s string) (int64, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, false
	}
	i := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' && r != '-' && r != '+' })
	num, unit := s, ""
	if i >= 0 {
		num, unit = s[:i], strings.TrimSpace(s[i:])
	}
	mult, ok := sizeUnits[unit]
	if !ok {
		return 0, false
	}
	if n, err := strconv.ParseInt(num, 10, 64); err == nil {
		return n * mult, true
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, false
	}
	return int64(f*float64(mult) + 0.5), true
}
