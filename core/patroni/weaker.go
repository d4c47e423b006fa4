package patroni

import (
	"fmt"
	"slices"
	"strings"
)

// weakerRule is a Patroni setting that, left out of the output, leaves the converted member
// weaker than Patroni's: less durable, less fenced, less guarded or doing less for its
// operator. A key matches a path's last element ("use_slots" matches
// "bootstrap.dcs.postgresql.use_slots"), or any element of it for a whole section.
type weakerRule struct {
	key      string
	anywhere bool // key matches any element of the path: a section and what is in it
	// harmless tells a value whose loss weakens nothing (synchronous_mode: false).
	harmless func(v any) bool
	why      string
}

// weakerRules classify what the conversion drops. Anything else it drops is a note.
var weakerRules = []weakerRule{
	{key: "synchronous_mode", harmless: isOff, why: "commits no longer wait for a synchronous standby: a failover can lose acknowledged transactions"},
	{key: "synchronous_mode_strict", harmless: isOff, why: "the primary no longer stops accepting writes when no synchronous standby is left"},
	{key: "synchronous_node_count", why: "no synchronous standbys are kept"},
	{key: "use_slots", harmless: isOff, why: "replicas keep no replication slots: the primary may remove WAL a lagging replica still needs, which then needs a reinit"},
	{key: "slots", why: "the permanent replication slots are not created"},
	{key: "permanent_slots", why: "the permanent replication slots are not created"},
	{key: "failsafe_mode", harmless: isOff, why: "during a DCS outage the primary is no longer kept while every member answers it"},
	{key: "callbacks", anywhere: true, why: "the scripts Patroni runs on start, stop and role change no longer run"},
	{key: "restore_command", why: "the server no longer fetches WAL from the archive"},
	{key: "sslmode", harmless: isPlainSSLMode, why: "the connection no longer requires or verifies TLS"},
	{key: "sslrootcert", why: "the server's certificate is no longer verified against this CA"},
	{key: "sslcrl", why: "revoked certificates are no longer refused"},
	{key: "sslcert", why: "the client certificate is no longer presented"},
	{key: "sslkey", why: "the client certificate is no longer presented"},
	{key: "gssencmode", harmless: isPlainGSSMode, why: "the connection no longer requires GSSAPI encryption"},
	{key: "channel_binding", harmless: isPlainChannelBinding, why: "the connection no longer requires channel binding"},
	{key: "watchdog", anywhere: true, harmless: watchdogOff, why: "no watchdog resets the host when the agent hangs while its primary runs"},
}

// weakens tells whether dropping the Patroni setting path, whose value is v, leaves the result
// weaker than the input, and how.
func weakens(path string, v any) (string, bool) {
	parts := strings.Split(path, ".")
	for _, r := range weakerRules {
		if r.key != parts[len(parts)-1] && !(r.anywhere && slices.Contains(parts, r.key)) {
			continue
		}
		if r.harmless != nil && r.harmless(v) {
			return "", false
		}
		return r.why, true
	}
	return "", false
}

// weaker records a dropped setting that makes the result weaker: a comment in the output, as
// for every dropped setting, and a warning instead of a note.
func (c *conv) weaker(path, shown, why string) {
	c.unknown = append(c.unknown, fmt.Sprintf("%s: %s (not converted: %s)", path, shown, why))
	c.res.Weaker = append(c.res.Weaker, fmt.Sprintf("%s is not converted: %s", path, why))
}

func scalar(v any) string { return strings.ToLower(strings.TrimSpace(fmt.Sprint(v))) }

// isOff is a boolean setting left at false, or no value.
func isOff(v any) bool {
	switch scalar(v) {
	case "false", "off", "no", "0", "<nil>", "":
		return true
	}
	return false
}

func isPlainSSLMode(v any) bool {
	switch scalar(v) {
	case "disable", "allow", "prefer", "<nil>", "":
		return true
	}
	return false
}

// isPlainGSSMode and isPlainChannelBinding: a mode that requires nothing.
func isPlainGSSMode(v any) bool        { return scalar(v) != "require" }
func isPlainChannelBinding(v any) bool { return scalar(v) != "require" }

// watchdogOff: Patroni's watchdog section with mode off (or disabled), which guards nothing.
func watchdogOff(v any) bool {
	m, ok := v.(map[string]any)
	if !ok {
		return isOff(v)
	}
	mode, set := m["mode"]
	if !set {
		return false // Patroni's default mode is automatic
	}
	return isOff(mode) || scalar(mode) == "disabled"
}
