package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/pgimaged/pgimaged/core/dcs"
)

// severities are the markers before a server's own message (PostgreSQL's "FATAL:  ...") or a
// client tool's ("pg_basebackup: error: ..."): what follows the last one is the root cause.
var severities = []string{"FATAL:", "PANIC:", "ERROR:", "error:"}

// rootCause is the innermost cause of an error message: the text after the last severity
// marker, else the last ": "-separated part (outside quotes and parentheses). It is the whole
// first line when neither can be found.
func rootCause(msg string) string {
	msg, _, _ = strings.Cut(msg, "\n")
	msg = strings.TrimSpace(msg)
	at := -1
	for _, s := range severities {
		if i := strings.LastIndex(msg, s); i >= 0 && i+len(s) > at {
			at = i + len(s)
		}
	}
	if at >= 0 {
		return strings.TrimSpace(untilClose(msg[at:]))
	}
	parts := splitOutside(msg, ": ")
	return strings.TrimSpace(parts[len(parts)-1])
}

// outside calls visit with each index of s that is neither quoted nor inside parentheses
// opened in s (a ')' that closes none is such an index), until visit returns false.
func outside(s string, visit func(i int) bool) {
	depth, quoted := 0, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			quoted = !quoted
		case quoted:
		case c == '(':
			depth++
		case c == ')' && depth > 0:
			depth--
		case depth == 0 && !visit(i):
			return
		}
	}
}

// untilClose cuts s where a parenthesis opened before s closes, or at "; ".
func untilClose(s string) string {
	end := len(s)
	outside(s, func(i int) bool {
		if s[i] == ')' || s[i] == ';' {
			end = i
		}
		return end == len(s)
	})
	return s[:end]
}

// splitOutside splits s at sep where sep is neither quoted nor in parentheses.
func splitOutside(s, sep string) []string {
	var parts []string
	start := 0
	outside(s, func(i int) bool {
		if i >= start && strings.HasPrefix(s[i:], sep) {
			parts, start = append(parts, s[start:i]), i+len(sep)
		}
		return true
	})
	return append(parts, s[start:])
}

// explainError is an error message on one line of at most width characters: its root cause
// first, then, when the message says more, the outermost context it was reached in.
func explainError(msg string, width int) string {
	first, _, _ := strings.Cut(strings.TrimSpace(msg), "\n")
	if first == "" {
		return ""
	}
	cause := rootCause(first)
	out := cause
	if cause != first {
		ctx := strings.TrimSpace(splitOutside(first, ": ")[0])
		if ctx != cause {
			out = cause + " (in: " + ctx + ")"
		}
	}
	return shorten(out, width)
}

// shorten cuts s to width characters, ending it with "…" when cut.
func shorten(s string, width int) string {
	r := []rune(s)
	if len(r) <= width {
		return s
	}
	return string(r[:width-1]) + "…"
}

// progressText is a method's published progress: "basebackup 1.5 MiB of 40.0 MiB".
func progressText(p dcs.CloneProgress) string {
	var done, total string
	switch p.Unit {
	case "percent":
		return fmt.Sprintf("%s %d%%", p.Method, p.Done)
	case "files":
		done, total = fmt.Sprintf("%d", p.Done), fmt.Sprintf("%d files", p.Total)
		if p.Total <= 0 {
			return fmt.Sprintf("%s %d files", p.Method, p.Done)
		}
	default:
		done, total = humanBytes(p.Done), humanBytes(p.Total)
		if p.Total <= 0 {
			return p.Method + " " + done + rateText(p)
		}
	}
	return p.Method + " " + done + " of " + total + rateText(p)
}

// rateText is the rate and the time left of a published progress, as a terminal's bar shows
// them: ", 12.0 MiB/s, 3s left"; "" before the agent measured a rate.
func rateText(p dcs.CloneProgress) string {
	if p.Rate <= 0 {
		return ""
	}
	s := ""
	switch p.Unit {
	case "files":
		s = fmt.Sprintf(", %.1f files/s", p.Rate)
	case "bytes", "":
		s = ", " + humanBytes(int64(p.Rate)) + "/s"
	}
	if p.ETA > 0 {
		s += ", " + (time.Duration(p.ETA * float64(time.Second))).Round(time.Second).String() + " left"
	}
	return s
}
