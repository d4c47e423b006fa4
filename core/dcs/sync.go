package dcs

import (
	"encoding/json"
	"slices"
	"strings"
)

// SyncKey is Patroni's sync key under the scope: which members the primary replicates to
// synchronously, as {"leader": "<primary>", "sync_standby": "<member>[,<member>...]"} (null
// when none). The primary writes it by compare-and-swap ([Store.CompareAndSwap]) in
// synchronous mode, naming only members PostgreSQL reports as synchronous, and removes it when
// synchronous mode is off; patronictl reads it as Patroni's.
const SyncKey = "sync"

// SyncState is the sync key as read.
type SyncState struct {
	// Leader is the primary that wrote it.
	Leader string
	// Standbys are the members it names as synchronous, sorted.
	Standbys []string
}

// syncJSON is the key's shape, Patroni's.
type syncJSON struct {
	Leader      string  `json:"leader"`
	SyncStandby *string `json:"sync_standby"`
}

// Has reports whether the sync key names member as synchronous.
func (s *SyncState) Has(member string) bool {
	return s != nil && slices.Contains(s.Standbys, member)
}

// Value is the sync key's value in Patroni's shape.
func (s SyncState) Value() []byte {
	v := syncJSON{Leader: s.Leader}
	if len(s.Standbys) > 0 {
		names := slices.Clone(s.Standbys)
		slices.Sort(names)
		joined := strings.Join(names, ",")
		v.SyncStandby = &joined
	}
	b, _ := json.Marshal(v)
	return b
}

// ParseSync reads the sync key's value; nil when it cannot be read (Patroni reads such a key as
// no synchronous standby at all).
func ParseSync(b []byte) *SyncState {
	var v syncJSON
	if len(b) == 0 || json.Unmarshal(b, &v) != nil {
		return nil
	}
	s := &SyncState{Leader: v.Leader}
	if v.SyncStandby != nil {
		for _, n := range strings.Split(*v.SyncStandby, ",") {
			if n = strings.TrimSpace(n); n != "" {
				s.Standbys = append(s.Standbys, n)
			}
		}
		slices.Sort(s.Standbys)
	}
	return s
}
