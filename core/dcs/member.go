package dcs

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/pgimaged/pgimaged/sdk"
)

// Roles a member may publish. Patroni has spelled the primary "master" and "primary"; both are read
// as a primary, and a role is written exactly as the caller gives it.
const (
	RolePrimary       = "primary"
	RoleMaster        = "master"
	RoleReplica       = "replica"
	RoleStandbyLeader = "standby_leader"
)

// States a member may publish, as Patroni spells them.
const (
	StateRunning         = "running"
	StateStarting        = "starting"
	StateStopped         = "stopped"
	StateCreatingReplica = "creating replica"
	StateBootstrapping   = "bootstrapping"
	StateFailed          = "failed"
)

// Member is one node as published under members/<name>. The JSON fields are Patroni's, plus
// pgimaged's own under "pgimaged"; fields Patroni writes that are not listed here are ignored.
type Member struct {
	Name         string         `json:"-"`
	ConnURL      string         `json:"conn_url"`
	APIURL       string         `json:"api_url,omitempty"`
	State        string         `json:"state"`
	Role         string         `json:"role"`
	Tags         map[string]any `json:"tags,omitempty"`
	Version      string         `json:"version,omitempty"`
	XLogLocation int64          `json:"xlog_location,omitempty"`
	Timeline     int            `json:"timeline,omitempty"`
	// PendingRestart: a setting changed needs a restart of PostgreSQL to apply
	// (pg_settings.pending_restart), as Patroni publishes it.
	PendingRestart bool          `json:"pending_restart,omitempty"`
	PGImaged       *MemberDetail `json:"pgimaged,omitempty"`
}

// MemberDetail is what pgimaged publishes beyond Patroni's fields.
type MemberDetail struct {
	SystemIdentifier string `json:"system_identifier,omitempty"`
	LastError        string `json:"last_error,omitempty"`
	// Refused is the request the agent last refused, while LastError still says so.
	Refused *Refusal `json:"refused,omitempty"`
	// Upstream is the member a replica streams WAL from (pg_stat_wal_receiver's sender matched
	// against the members' conn_url); its sender as host:port when no member matches.
	Upstream string `json:"upstream,omitempty"`
	// NotStreaming is why a running replica that should stream WAL from its upstream does not:
	// its WAL receiver's last failure as PostgreSQL logged it (libpq's reason); "" while it
	// streams.
	NotStreaming string `json:"not_streaming,omitempty"`
	// Clone is the progress of a bootstrap or clone in flight.
	Clone    *CloneProgress `json:"clone,omitempty"`
	Attempts []Attempt      `json:"attempts,omitempty"`
	// CriticalPath is the timeline of this member's last successful bootstrap or clone.
	CriticalPath *CriticalPath `json:"critical_path,omitempty"`
	// Reload is how the agent's last reload of its configuration ended; nil before the first.
	Reload *ReloadOutcome `json:"reload,omitempty"`
	// Remote (the standby leader of a standby cluster): how far it stands behind its remote.
	Remote *RemoteFollow `json:"remote,omitempty"`
}

// ReloadOutcome is how an agent's reload of its configuration file ended: applied (Errors
// empty), refused whole (Refused), or applied with parts PostgreSQL rejected (Errors).
type ReloadOutcome struct {
	At      time.Time `json:"at"`
	Changed []string  `json:"changed,omitempty"`
	// Refused are the settings that cannot change while the agent runs, each with the reason;
	// the agent kept its configuration.
	Refused []string `json:"refused,omitempty"`
	// Invalid: the configuration file does not validate; Errors are its diagnostics.
	Invalid bool `json:"invalid,omitempty"`
	// Errors are what went wrong: a configuration that does not validate, pg_hba.conf lines or
	// settings PostgreSQL rejected (it keeps what it had for those), a step that failed.
	Errors []string `json:"errors,omitempty"`
	// PendingRestart are the parameters that take effect only after a restart of PostgreSQL.
	PendingRestart []string `json:"pending_restart,omitempty"`
	// Rotated are the roles whose password this member, as the primary, set.
	Rotated []string `json:"rotated,omitempty"`
}

// OK reports whether the reload was applied whole.
func (r ReloadOutcome) OK() bool { return len(r.Refused) == 0 && len(r.Errors) == 0 }

// Requests a [Refusal] names.
const (
	RequestReinit = "reinit"
)

// Refusal is an operator's request an agent refused, and why.
type Refusal struct {
	Request string `json:"request"` // RequestReinit
	Reason  string `json:"reason"`
}

// Message is the refusal in words, as last_error says it: "reinit refused: <reason>".
func (r Refusal) Message() string { return r.Request + " refused: " + r.Reason }

// Kinds of a [CriticalPath].
const (
	PathBootstrap = "bootstrap"
	PathClone     = "clone"
)

// CriticalPath is the timeline of one bootstrap or clone: its phases in the order they began.
// A phase that did not happen is absent; the gaps between phases are the agent's own work.
type CriticalPath struct {
	Kind   string  `json:"kind"` // PathBootstrap or PathClone
	Phases []Phase `json:"phases"`
}

// Phase is one interval of a [CriticalPath]. In JSON, seconds is End-Start (written, not read).
type Phase struct {
	Name   string    `json:"name"`
	Method string    `json:"method,omitempty"` // the method a plugin_launch, method or clone_method ran
	Start  time.Time `json:"start"`
	End    time.Time `json:"end"`
}

// Seconds is the phase's length in seconds.
func (p Phase) Seconds() float64 { return p.End.Sub(p.Start).Seconds() }

// MarshalJSON writes the phase with its length in seconds, its times in UTC.
func (p Phase) MarshalJSON() ([]byte, error) {
	type plain Phase
	return json.Marshal(struct {
		plain
		Seconds float64 `json:"seconds"`
	}{plain{Name: p.Name, Method: p.Method, Start: p.Start.UTC(), End: p.End.UTC()}, p.Seconds()})
}

// String sums the path up on one line: each phase as name=seconds (name[method] for a
// method's phases), then the total from the first start to the last end.
func (c CriticalPath) String() string {
	var b strings.Builder
	b.WriteString(c.Kind)
	for _, p := range c.Phases {
		b.WriteByte(' ')
		b.WriteString(p.Name)
		if p.Method != "" {
			b.WriteString("[" + p.Method + "]")
		}
		b.WriteString("=" + strconv.FormatFloat(p.Seconds(), 'f', 3, 64))
	}
	b.WriteString(" total=" + strconv.FormatFloat(c.Total().Seconds(), 'f', 3, 64))
	return b.String()
}

// Total is the time from the first phase's start to the last phase's end.
func (c CriticalPath) Total() time.Duration {
	if len(c.Phases) == 0 {
		return 0
	}
	first, last := c.Phases[0].Start, c.Phases[0].End
	for _, p := range c.Phases[1:] {
		if p.Start.Before(first) {
			first = p.Start
		}
		if p.End.After(last) {
			last = p.End
		}
	}
	return last.Sub(first)
}

// Attempt records one run of a bootstrap or replica method. In JSON, duration is in seconds.
type Attempt struct {
	Method   string
	OK       bool
	Exit     int
	Started  time.Time
	Duration time.Duration
	Error    string
	Tail     []string // the last lines the method wrote
	// Summary is the line the method's plugin reported with its result (sdk.Result.Summary),
	// "" for a failed attempt or a plugin that reports none.
	Summary string
}

type attemptJSON struct {
	Method   string          `json:"method"`
	OK       bool            `json:"ok"`
	Exit     int             `json:"exit"`
	Started  time.Time       `json:"started"`
	Duration json.RawMessage `json:"duration"`
	Error    string          `json:"error,omitempty"`
	Tail     []string        `json:"tail,omitempty"`
	Summary  string          `json:"summary,omitempty"`
}

// MarshalJSON writes the duration as seconds.
func (a Attempt) MarshalJSON() ([]byte, error) {
	d := strconv.FormatFloat(a.Duration.Seconds(), 'f', -1, 64)
	return json.Marshal(attemptJSON{
		Method: a.Method, OK: a.OK, Exit: a.Exit, Started: a.Started,
		Duration: json.RawMessage(d), Error: a.Error, Tail: a.Tail, Summary: a.Summary,
	})
}

// UnmarshalJSON reads the duration as seconds (a number or a numeric string) or as a Go duration
// string such as "1m30s".
func (a *Attempt) UnmarshalJSON(b []byte) error {
	var j attemptJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	d, err := parseDuration(j.Duration)
	if err != nil {
		return fmt.Errorf("attempt of method %q: %w", j.Method, err)
	}
	*a = Attempt{Method: j.Method, OK: j.OK, Exit: j.Exit, Started: j.Started, Duration: d, Error: j.Error, Tail: j.Tail, Summary: j.Summary}
	return nil
}

func parseDuration(raw json.RawMessage) (time.Duration, error) {
	s := strings.TrimSpace(string(raw))
	if s == "" || s == "null" {
		return 0, nil
	}
	if strings.HasPrefix(s, `"`) {
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, err
		}
		if d, err := time.ParseDuration(s); err == nil {
			return d, nil
		}
	}
	sec, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(sec) || math.IsInf(sec, 0) {
		return 0, fmt.Errorf("duration %s is neither seconds nor a duration string", raw)
	}
	return time.Duration(sec * float64(time.Second)), nil
}

// IsPrimary reports whether the member runs a primary in any of Patroni's spellings (a standby
// cluster's leader included).
func (m Member) IsPrimary() bool {
	switch m.Role {
	case RolePrimary, RoleMaster, "leader", RoleStandbyLeader:
		return true
	}
	return false
}

// IsRunning reports whether the member says its PostgreSQL is running.
func (m Member) IsRunning() bool { return m.State == StateRunning }

// CloneFrom reports whether the member carries a truthy clonefrom tag (true, "true", 1, ...), which
// makes it a preferred source for new replicas.
func (m Member) CloneFrom() bool { return truthy(m.Tags["clonefrom"]) }

// NoFailover reports Patroni's nofailover tag: the member never becomes the primary.
func (m Member) NoFailover() bool { return truthy(m.Tags["nofailover"]) }

// NoSync reports Patroni's nosync tag: the member is never a synchronous standby.
func (m Member) NoSync() bool { return truthy(m.Tags["nosync"]) }

func truthy(v any) bool {
	switch v := v.(type) {
	case bool:
		return v
	case float64:
		return v != 0
	case int:
		return v != 0
	case int64:
		return v != 0
	case json.Number:
		f, err := v.Float64()
		return err == nil && f != 0
	case string:
		b, err := sdk.ParseBool(v)
		return err == nil && b
	}
	return false
}

// parseMember reads a member value the way Patroni does: JSON, or the bare connection URL of old
// Patroni versions. Fields of the wrong type are left empty, the others still read; a value that
// cannot be read at all yields a member with only its name and the returned error.
func parseMember(name string, raw []byte) (Member, error) {
	m := Member{Name: name}
	s := strings.TrimSpace(string(raw))
	if strings.HasPrefix(s, "postgres") {
		m.ConnURL = s
		return m, nil
	}
	err := json.Unmarshal(raw, &m)
	m.Name = name
	if err == nil {
		return m, nil
	}
	var typeErr *json.UnmarshalTypeError
	if !errors.As(err, &typeErr) {
		m = Member{Name: name}
	}
	return m, fmt.Errorf("while reading member %q: %w", name, err)
}

// CloneProgress is how far a running method has come: Done of Total in Unit ("bytes", "files"
// or "percent"); Total is 0 when unknown.
type CloneProgress struct {
	Method string `json:"method"`
	Phase  string `json:"phase,omitempty"`
	Done   int64  `json:"done"`
	Total  int64  `json:"total,omitempty"`
	Unit   string `json:"unit"`
	// Rate is how much of Unit is done per second since the method's phase began; ETA the
	// seconds left at that rate. Both 0 until they can be told (and ETA without a Total).
	Rate float64 `json:"rate,omitempty"`
	ETA  float64 `json:"eta_seconds,omitempty"`
}

// RemoteFollow is how far a standby cluster's leader stands behind the remote it follows.
type RemoteFollow struct {
	// LagBytes is the remote's WAL flush position minus the WAL this member replayed; nil when
	// the remote could not be asked (Error says why).
	LagBytes *int64 `json:"lag_bytes,omitempty"`
	// ReceivedLagBytes is the WAL this member received but has not replayed yet.
	ReceivedLagBytes int64 `json:"received_lag_bytes"`
	// ReplayDelay is how long ago the last transaction it replayed committed, in seconds, while
	// received WAL waits to be replayed; 0 when all it received is replayed.
	ReplayDelay float64 `json:"replay_delay_seconds"`
	Error       string  `json:"error,omitempty"`
}
