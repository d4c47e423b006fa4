package main_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// criticalPath is a member's pgimaged.critical_path in `pgimaged status -json`.
type criticalPath struct {
	Kind   string `json:"kind"`
	Phases []struct {
		Name    string    `json:"name"`
		Method  string    `json:"method"`
		Start   time.Time `json:"start"`
		End     time.Time `json:"end"`
		Seconds *float64  `json:"seconds"`
	} `json:"phases"`
}

func (p *criticalPath) names() []string {
	if p == nil {
		return nil
	}
	var out []string
	for _, ph := range p.Phases {
		out = append(out, ph.Name)
	}
	return out
}

// published reports whether the path is complete: its last phase published the member.
func (p *criticalPath) published() bool {
	names := p.names()
	return len(names) > 0 && names[len(names)-1] == "published"
}

// clockTick is the resolution of the process start time the kernel gives (USER_HZ): the
// agent_start phase may begin up to one tick before the process really started.
const clockTick = 10 * time.Millisecond

// checkCriticalPath checks a published path: of kind, holding the phases want in that order
// (each phase of want present; phases not in want allowed only where allowed says), each
// phase starting no earlier than the one before, ending no earlier than it started, and all
// of it between started (before the agent was launched) and now (the agent still running).
func checkCriticalPath(t *testing.T, member string, p *criticalPath, kind string, want []string, allowed map[string]bool, started time.Time) {
	t.Helper()
	if p == nil {
		t.Errorf("%s publishes no critical_path", member)
		return
	}
	if p.Kind != kind {
		t.Errorf("%s: critical_path kind %q, want %q", member, p.Kind, kind)
	}
	got := p.names()
	i := 0
	for _, n := range got {
		switch {
		case i < len(want) && n == want[i]:
			i++
		case allowed[n]:
		default:
			t.Errorf("%s: critical_path phases %q, want %q in that order", member, got, want)
			return
		}
	}
	if i != len(want) {
		t.Errorf("%s: critical_path phases %q, want %q in that order", member, got, want)
	}
	now := time.Now()
	for k, ph := range p.Phases {
		switch {
		case ph.End.Before(ph.Start):
			t.Errorf("%s: phase %s ends (%s) before it starts (%s)", member, ph.Name, ph.End, ph.Start)
		case k > 0 && ph.Start.Before(p.Phases[k-1].Start):
			t.Errorf("%s: phase %s starts (%s) before the phase before it, %s (%s)", member, ph.Name, ph.Start, p.Phases[k-1].Name, p.Phases[k-1].Start)
		case ph.Start.Before(started.Add(-clockTick)) || ph.End.After(now):
			t.Errorf("%s: phase %s (%s to %s) lies outside the agent's life (%s to %s)", member, ph.Name, ph.Start, ph.End, started, now)
		case ph.Seconds == nil || *ph.Seconds != ph.End.Sub(ph.Start).Seconds():
			t.Errorf("%s: phase %s: seconds %v, want its end minus its start", member, ph.Name, ph.Seconds)
		}
	}
}

// loggedPhases are the "phase" lines of an agent logging JSON at DEBUG: name → methods (""
// for a phase without one).
func loggedPhases(out string) map[string][]string {
	phases := map[string][]string{}
	for _, l := range strings.Split(out, "\n") {
		var line struct {
			Level   string   `json:"@level"`
			Message string   `json:"@message"`
			Name    string   `json:"name"`
			Method  string   `json:"method"`
			Seconds *float64 `json:"seconds"`
		}
		if json.Unmarshal([]byte(l), &line) != nil || line.Message != "phase" || line.Level != "debug" || line.Seconds == nil {
			continue
		}
		phases[line.Name] = append(phases[line.Name], line.Method)
	}
	return phases
}

// checkLoggedPath checks what a one-shot bootstrap or clone logged at DEBUG: a "phase" line as
// each phase ended, and at the end one "critical path" line naming the phases (name[method])
// in order.
func checkLoggedPath(t *testing.T, stderr, kind string, phases ...string) {
	t.Helper()
	var summary string
	for _, l := range strings.Split(stderr, "\n") {
		if strings.Contains(l, "[DEBUG]") && strings.Contains(l, " critical path: ") {
			summary = l
		}
	}
	if summary == "" {
		t.Errorf("no DEBUG line sums up the critical path:\n%s", stderr)
		return
	}
	rest := summary[strings.Index(summary, `phases="`+kind+" "):]
	for _, p := range phases {
		i := strings.Index(rest, " "+p+"=")
		if i < 0 {
			t.Errorf("the critical path line does not name %s after the phases before it: %s", p, summary)
			return
		}
		rest = rest[i+1:]
		name, _, _ := strings.Cut(p, "[")
		if !strings.Contains(stderr, "phase: name="+name+" seconds=") {
			t.Errorf("no DEBUG \"phase\" line for %s:\n%s", name, stderr)
		}
	}
}
