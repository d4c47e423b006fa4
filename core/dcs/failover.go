package dcs

import (
	"encoding/json"
	"time"
)

// FailoverKey is Patroni's failover key under the scope. pgimaged keeps its changes of primary
// under its own key; it writes this one only as the mirror of a switchover scheduled for later,
// {"leader": "<primary>", "member": "<candidate>", "scheduled_at": "<ISO 8601>"}, which
// patronictl list shows and patronictl flush <scope> switchover cancels (through DELETE
// /switchover).
const FailoverKey = "failover"

// ScheduledSwitchover is the failover key's value for a switchover from leader to candidate
// ("" for the most advanced healthy replica) at at, as Patroni writes it.
func ScheduledSwitchover(leader, candidate string, at time.Time) []byte {
	v := map[string]string{"leader": leader, "scheduled_at": at.UTC().Format("2006-01-02T15:04:05.999999-07:00")}
	if candidate != "" {
		v["member"] = candidate
	}
	b, _ := json.Marshal(v)
	return b
}
