package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// statusJSON is what `pgimaged status -json` prints for a cluster of a bootstrap member and
// replicas whose phases start at the given offsets (seconds from t0) and last took seconds.
func statusJSON(t0 time.Time, members ...[]phaseAt) string {
	var out []string
	for i, phases := range members {
		kind := "clone"
		if i == 0 {
			kind = "bootstrap"
		}
		var ps []string
		for _, p := range phases {
			start := t0.Add(time.Duration(p.start * float64(time.Second)))
			end := start.Add(time.Duration(p.took * float64(time.Second)))
			ps = append(ps, fmt.Sprintf(`{"name":%q,"start":%q,"end":%q}`, p.name, start.Format(time.RFC3339Nano), end.Format(time.RFC3339Nano)))
		}
		out = append(out, fmt.Sprintf(`{"name":"node%d","role":"replica","state":"running","pgimaged":{"critical_path":{"kind":%q,"phases":[%s]}}}`,
			i+1, kind, strings.Join(ps, ",")))
	}
	// status -json lists members by name: a replica may come before the bootstrap member.
	slices.Reverse(out)
	return `{"scope":"s","members":[` + strings.Join(out, ",") + `]}`
}

type phaseAt struct {
	name        string
	start, took float64
}

func TestPhaseStatsMediansOverReplicasThenRuns(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ps := newPhaseStats()
	// Three runs; in each, the bootstrap member's initialize takes 1, 2, 3 s and the replicas'
	// clone_method takes (1, 3), (2, 4), (3, 5) s: the median over replicas is 2, 3, 4 s.
	for run := 1; run <= 3; run++ {
		r := float64(run)
		doc := statusJSON(t0,
			[]phaseAt{{"agent_start", 0.1, 0.1}, {"initialize", 0.2, r}},
			[]phaseAt{{"leader_seen", 1, 0.5}, {"clone_method", 2, r}},
			[]phaseAt{{"leader_seen", 1, 0.5}, {"clone_method", 4, r + 2}},
		)
		var st struct {
			Members []pgimagedMember `json:"members"`
		}
		if err := json.Unmarshal([]byte(doc), &st); err != nil {
			t.Fatal(err)
		}
		ps.add(t0, st.Members)
	}
	var b strings.Builder
	ps.print(&b)
	got := b.String()
	for _, want := range []string{
		"median over 3 runs",
		"bootstrap member  agent_start   0.100s  0.100s  3",
		"                  initialize    0.200s  2.000s  3",
		"replicas          leader_seen   1.000s  0.500s  3",
		"                  clone_method  3.000s  3.000s  3",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the phase table has no line %q:\n%s", want, got)
		}
	}
	if strings.Index(got, "agent_start") > strings.Index(got, "initialize") {
		t.Errorf("phases are not in the order the member published them:\n%s", got)
	}
	if strings.Index(got, "\nbootstrap member ") > strings.Index(got, "\nreplicas ") {
		t.Errorf("the bootstrap member's phases do not come first:\n%s", got)
	}
}

func TestPhaseStatsWithoutCriticalPath(t *testing.T) {
	ps := newPhaseStats()
	var st struct {
		Members []pgimagedMember `json:"members"`
	}
	if err := json.Unmarshal([]byte(`{"members":[{"name":"node1","role":"primary","state":"running","pgimaged":{"upstream":""}},{"name":"node2","role":"replica","state":"running"}]}`), &st); err != nil {
		t.Fatal(err)
	}
	ps.add(time.Now(), st.Members)
	var b strings.Builder
	ps.print(&b)
	if !strings.Contains(b.String(), "no member published a critical_path") {
		t.Errorf("without critical paths the table says so; got:\n%s", b.String())
	}
}
