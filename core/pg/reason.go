package pg

import (
	"regexp"
	"strings"
)

// serverMessage finds the severity and message of a line of PostgreSQL's log, whatever its
// log_line_prefix: "2024-05-01 10:00:00 UTC [42] FATAL:  could not create any TCP/IP sockets".
var serverMessage = regexp.MustCompile(`(?:^|\s)(LOG|WARNING|ERROR|FATAL|PANIC|DETAIL|HINT|CONTEXT|STATEMENT):\s+(.*)$`)

// routine are the beginnings of the log messages every start and stop writes; they are never
// part of the reason a start failed.
var routine = []string{
	"starting PostgreSQL", "listening on", "database system is shut down", "database system was shut down",
	"database system is ready", "redirecting log output", "ending log output", "background worker",
	"received fast shutdown", "received immediate shutdown", "received smart shutdown", "aborting any active",
	"shutting down", "checkpoint starting", "checkpoint complete",
}

// maxReasonMessages bounds how many messages [StartReason] joins.
const maxReasonMessages = 4

// StartReason is PostgreSQL's own account, from the lines it logged during one start, of why
// the start failed: the first FATAL or PANIC message, after the messages just before it that
// led to it (a bind error before "could not create any TCP/IP sockets", an invalid value
// before "configuration file contains errors"), joined by "; ". HINT, DETAIL and the routine
// messages of a start are left out. "" when the lines hold no FATAL or PANIC.
func StartReason(lines []string) string {
	type msg struct{ severity, text string }
	var msgs []msg
	for _, l := range lines {
		if m := serverMessage.FindStringSubmatch(l); m != nil {
			msgs = append(msgs, msg{m[1], strings.TrimSpace(m[2])})
		}
	}
	fatal := -1
	for i, m := range msgs {
		if m.severity == "FATAL" || m.severity == "PANIC" {
			fatal = i
			break
		}
	}
	if fatal < 0 {
		return ""
	}
	out := []string{msgs[fatal].text}
	for i := fatal - 1; i >= 0 && len(out) < maxReasonMessages; i-- {
		m := msgs[i]
		switch {
		case m.severity == "HINT" || m.severity == "DETAIL" || m.severity == "CONTEXT" || m.severity == "STATEMENT":
			continue
		case isRoutine(m.text):
			i = -1 // the start's own lines: what led to the failure came after them
			continue
		}
		out = append([]string{m.text}, out...)
	}
	return strings.Join(out, "; ")
}

func isRoutine(text string) bool {
	for _, r := range routine {
		if strings.HasPrefix(text, r) {
			return true
		}
	}
	return false
}

// environmentCauses are parts of the messages PostgreSQL gives when it cannot start for a cause
// outside its data directory: its port or socket taken, shared memory or semaphores refused, a
// full disk. Another copy of the same data would fail the same way.
var environmentCauses = []string{
	"could not bind", "Address already in use", "could not create any TCP/IP sockets",
	"could not create any Unix-domain sockets", "could not create listen socket",
	"could not create lock file", "could not create shared memory segment",
	"could not map anonymous shared memory", "could not create semaphores",
	"No space left on device",
}

// EnvironmentCause reports whether reason (a [StartReason]) says the server could not start for
// a cause outside its data directory, one that waiting and starting again can cure.
func EnvironmentCause(reason string) bool {
	for _, c := range environmentCauses {
		if strings.Contains(reason, c) {
			return true
		}
	}
	return false
}
