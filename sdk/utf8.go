package sdk

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// validUTF8 returns s with every byte that is not part of valid UTF-8 written as \xNN, so that a
// program's output is data that always travels (protocol buffers refuse strings that are not
// UTF-8). Valid text is returned unchanged.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for len(s) > 0 {
		r, n := utf8.DecodeRuneInString(s)
		if r == utf8.RuneError && n == 1 {
			fmt.Fprintf(&b, `\x%02x`, s[0])
		} else {
			b.WriteString(s[:n])
		}
		s = s[n:]
	}
	return b.String()
}

func validMap(m map[string]string) map[string]string {
	for k, v := range m {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			out := make(map[string]string, len(m))
			for k, v := range m {
				out[validUTF8(k)] = validUTF8(v)
			}
			return out
		}
	}
	return m
}

func validList(l []string) []string {
	for i, s := range l {
		if !utf8.ValidString(s) {
			out := append([]string(nil), l...)
			for j := i; j < len(out); j++ {
				out[j] = validUTF8(out[j])
			}
			return out
		}
	}
	return l
}
