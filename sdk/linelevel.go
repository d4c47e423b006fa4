package sdk

import "strings"

// stderrLevel is the level a child's stderr line is logged at: lines that look like errors
// ("ERROR:", "FATAL:", "PANIC:", "error:", "pg_basebackup: error: ...") at [LevelError], lines
// that look like warnings ("WARNING:", "WARN:", "pg_basebackup: warning: ...") at [LevelWarn],
// everything else (progress, notes) at [LevelInfo]. A leading program name ("prog: ") and a
// pgBackRest process tag ("P00 ") are looked past.
func stderrLevel(line string) Level {
	s := strings.TrimSpace(line)
	if l, ok := keywordLevel(s); ok {
		return l
	}
	if tag, rest, ok := strings.Cut(s, " "); ok && len(tag) == 3 && tag[0] == 'P' && isDigits(tag[1:]) {
		if l, ok := keywordLevel(strings.TrimSpace(rest)); ok {
			return l
		}
	}
	if prog, rest, ok := strings.Cut(s, ": "); ok && prog != "" && !strings.ContainsAny(prog, " \t") {
		if l, ok := keywordLevel(strings.TrimSpace(rest)); ok {
			return l
		}
	}
	return LevelInfo
}

// keywordLevel reads a severity keyword followed by a colon at the start of s.
func keywordLevel(s string) (Level, bool) {
	word, _, ok := strings.Cut(s, ":")
	if !ok {
		return LevelInfo, false
	}
	switch word {
	case "ERROR", "FATAL", "PANIC", "error", "fatal", "Error", "Fatal":
		return LevelError, true
	case "WARNING", "WARN", "warning", "Warning":
		return LevelWarn, true
	}
	return LevelInfo, false
}

func isDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}
