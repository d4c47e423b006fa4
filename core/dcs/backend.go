package dcs

// What another [Store] implementation (such as the in-memory one tests use) needs to follow the
// same rules as the file and etcd backends.

// HistoryKey is Patroni's history key under the scope.
const HistoryKey = historyKey

// ValidKey checks a permanent key as [Store.Put] takes it.
func ValidKey(key string) error { return validKey(key) }

// ValidSystemIdentifier checks a system identifier as [Store.SetInitialize] takes it.
func ValidSystemIdentifier(sysid string) error { return validSystemIdentifier(sysid) }

// ReadHistory builds the [History] read from the history key's value and [SwitchesKey]'s (each
// nil when absent).
func ReadHistory(value, extras []byte) History {
	return History{Switches: parseHistory(value, extras), value: string(value)}
}

// AppendHistory returns the history key's and [SwitchesKey]'s new values with sw appended to h,
// after checking that sw comes after h's newest switch.
func AppendHistory(h History, sw TimelineSwitch) (value, extras []byte, err error) {
	return appendHistory(h, sw)
}

// Read is the history key's value h was read from ("" when absent): what an append compares.
func (h History) Read() string { return h.value }
