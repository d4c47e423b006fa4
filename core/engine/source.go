package engine

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/pgimaged/pgimaged/core/dcs"
	"github.com/pgimaged/pgimaged/core/pg"
)

// SourceChoice is the member a clone copies from and why it was chosen.
type SourceChoice struct {
	// Member is the chosen member; its Name is "" when there is none.
	Member dcs.Member
	// Why says which rule picked it (or why there is none), for people.
	Why string
}

// ChooseSource is the one rule for the member self clones from, given the DCS state cl. It
// reads nothing but its arguments. A candidate is another member that publishes state
// "running" and a conn_url that can be read.
//
//  1. Candidates tagged clonefrom come first: the one with the highest published WAL
//     position (xlog_location, i.e. the least lag), ties broken by the smallest name.
//  2. Else the leader, if it is a candidate.
//  3. Else none: only no_master methods can run.
//
// `pgimaged run`, `pgimaged plan`, `pgimaged reinit` and [Observation.Source] all use it, so
// they name the same source for the same DCS state.
func ChooseSource(self string, cl dcs.Cluster) SourceChoice {
	candidate := func(m dcs.Member) bool {
		if m.Name == self || m.State != dcs.StateRunning || m.ConnURL == "" {
			return false
		}
		_, _, err := pg.ParseConnURL(m.ConnURL)
		return err == nil
	}
	var tagged []dcs.Member
	for _, m := range cl.Members {
		if candidate(m) && m.CloneFrom() {
			tagged = append(tagged, m)
		}
	}
	if len(tagged) > 0 {
		best := slices.MinFunc(tagged, func(a, b dcs.Member) int {
			if c := cmp.Compare(b.XLogLocation, a.XLogLocation); c != 0 {
				return c
			}
			return cmp.Compare(a.Name, b.Name)
		})
		why := "the running member tagged clonefrom"
		if len(tagged) > 1 {
			why = fmt.Sprintf("of the %d running members tagged clonefrom, the one with the highest WAL position (then the first by name)", len(tagged))
		}
		return SourceChoice{Member: best, Why: why}
	}
	if lm, ok := cl.LeaderMember(); ok && candidate(lm) {
		return SourceChoice{Member: lm, Why: "the leader (no running member is tagged clonefrom)"}
	}
	return SourceChoice{Why: "no running member is tagged clonefrom and the leader does not run (or is this member)"}
}

// CloneSource is the source [ChooseSource] picks, reached as the replication role; nil when
// there is none.
func CloneSource(n *Node, cl dcs.Cluster) *Source {
	c := ChooseSource(n.Config.Name, cl)
	if c.Member.Name == "" {
		return nil
	}
	return memberSource(n, c.Member)
}
