package sdk

import (
	"fmt"
	"strings"
)

// SplitCommand splits a command line the way a POSIX shell splits words, without running a
// shell: white space separates words, single quotes keep everything literally, double quotes keep
// white space and allow \" \\ \$ \` escapes, and a backslash outside quotes escapes the next
// character. No expansion of any kind happens.
func SplitCommand(s string) ([]string, error) {
	var (
		words   []string
		cur     strings.Builder
		inWord  bool
		quote   rune
		escaped bool
	)
	for _, r := range s {
		switch {
		case escaped:
			if quote == '"' && !strings.ContainsRune("\"\\$`\n", r) {
				cur.WriteRune('\\')
			}
			if r != '\n' || quote != 0 {
				cur.WriteRune(r)
			}
			escaped, inWord = false, true
		case quote == '\'':
			if r == '\'' {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case quote == '"':
			switch r {
			case '"':
				quote = 0
			case '\\':
				escaped = true
			default:
				cur.WriteRune(r)
			}
		case r == '\\':
			escaped, inWord = true, true
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == ' ' || r == '\t' || r == '\n' || r == '\r':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("command %q: unterminated %c quote", s, quote)
	}
	if escaped {
		return nil, fmt.Errorf("command %q: ends with a lone backslash", s)
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// DefaultCloneParams are the parameters Patroni's convention gives every replica method, in order.
func DefaultCloneParams(req CloneRequest) Options {
	return Options{
		{Name: "scope", Value: req.Cluster.Scope},
		{Name: "role", Value: "replica"},
		{Name: "datadir", Value: req.Cluster.DataDir},
		{Name: "connstring", Value: req.ConnString},
	}
}

// DefaultBootstrapParams are the parameters Patroni's convention gives a custom bootstrap method.
func DefaultBootstrapParams(req BootstrapRequest) Options {
	return Options{
		{Name: "scope", Value: req.Cluster.Scope},
		{Name: "datadir", Value: req.Cluster.DataDir},
	}
}
