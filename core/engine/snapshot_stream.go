package engine

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/pgimaged/pgimaged/core/dcs"
	"github.com/pgimaged/pgimaged/core/pg"
)

// NoWALReceiver is why a standby does not stream when the server log says nothing of its WAL
// receiver (it has not tried yet, or PostgreSQL logs elsewhere).
const NoWALReceiver = "no WAL receiver streams"

// serverLogTail is how much of the end of the server log is read for the WAL receiver's last
// failure: it retries every few seconds, so its last attempt is near the end.
const serverLogTail = 64 << 10

// receiverFailures begin the messages PostgreSQL logs when a standby's WAL receiver cannot
// stream (libpq's reason follows), and the startup process's refusal of the upstream's new
// timeline.
var receiverFailures = []string{
	"could not connect to the primary server",
	"could not receive data from WAL stream",
	"could not start WAL streaming",
	"could not send data to WAL stream",
	"could not receive timeline history file",
	"could not read from WAL stream",
	"replication terminated by primary server",
	"highest timeline",
	"terminating walreceiver",
	"new timeline",
}

// receiverStarts are the messages after which earlier failures no longer say anything: the
// server entered standby mode again, or its WAL receiver streams.
var receiverStarts = []string{"entering standby mode", "started streaming WAL from primary"}

// walReceiverFailure is the last failure of the WAL receiver the server log at logFile, in
// format (logStderr, logCSV, logJSON), tells of since the server last entered standby mode or
// started streaming: the message as PostgreSQL logged it (libpq's reason included), "" when
// there is none.
func walReceiverFailure(logFile, format string) string {
	f, err := os.Open(logFile)
	if err != nil {
		return ""
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > serverLogTail {
		if _, err := f.Seek(-serverLogTail, io.SeekEnd); err != nil {
			return ""
		}
	}
	b, err := io.ReadAll(io.LimitReader(f, serverLogTail))
	if err != nil {
		return ""
	}
	return lastReceiverFailure(logLines(b, format))
}

// lastReceiverFailure is [walReceiverFailure] on the log's lines.
func lastReceiverFailure(lines []string) string {
	last := ""
	for _, l := range lines {
		msg := logMessage(l)
		switch {
		case msg == "":
		case hasAnyPrefix(msg, receiverStarts):
			last = ""
		case hasAnyPrefix(msg, receiverFailures):
			if strings.HasPrefix(msg, "new timeline") && !strings.Contains(msg, "forked off") {
				continue
			}
			last = msg
		}
	}
	return last
}

// logMessage is the message of one line of PostgreSQL's log ("... [pid] FATAL:  message"), ""
// for a line that is not a LOG, FATAL or ERROR message.
func logMessage(line string) string {
	for _, level := range []string{"FATAL:  ", "LOG:  ", "ERROR:  "} {
		if i := strings.Index(line, level); i >= 0 {
			return strings.TrimSpace(line[i+len(level):])
		}
	}
	return ""
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// receiverDiverged is the rejoin of a running standby whose WAL receiver stopped because the
// standby went past the point where its upstream's timeline forked off (PostgreSQL said so in
// its log: obs.ReceiverFailure); false when it did not, or when no rejoin can run (the standby
// is then kept running, as one that received past the switch point is).
func receiverDiverged(obs Observation, act Action) (Action, bool) {
	if !diverged(obs.ReceiverFailure) {
		return act, false
	}
	a, ok := rejoinAction(obs, act, fmt.Sprintf("the standby's WAL receiver stopped (PostgreSQL: %q): it received WAL past the point where the leader's timeline forked off, and cannot follow it as it is", obs.ReceiverFailure))
	if ok {
		a.Stop = true
		return a, true
	}
	act.Reason += fmt.Sprintf("; its WAL receiver cannot follow the leader's timeline (PostgreSQL: %q) and no rejoin method can run: it needs a reinit", obs.ReceiverFailure)
	return act, true
}

// diverged reports whether a WAL receiver failure says the standby cannot follow its upstream's
// timeline: it received WAL past the point where the upstream's new timeline forked off.
func diverged(failure string) bool {
	return strings.Contains(failure, "is not a child of this server's history") ||
		strings.Contains(failure, "is not in this server's history") ||
		strings.Contains(failure, "forked off current database system timeline")
}

// notStreaming is why this member, a running standby with primary_conninfo set, does not
// stream from its upstream (st is what PostgreSQL answered this cycle): the WAL receiver's last
// failure in the server log, or [NoWALReceiver]; "" when it streams or is not meant to (a
// primary, a standby replaying from an archive alone, a member not running).
func (n *Node) notStreaming(st pgStatus, state, role string) string {
	if state != dcs.StateRunning || role != dcs.RoleReplica || !st.Queried || !st.InRecovery || st.Streaming {
		return ""
	}
	if settings, err := pg.ReadRecovery(n.Config.DataDir); err != nil || settings["primary_conninfo"] == "" {
		return ""
	}
	if why := walReceiverFailure(n.messageLog()); why != "" {
		return n.secrets().Mask(why)
	}
	return NoWALReceiver
}
