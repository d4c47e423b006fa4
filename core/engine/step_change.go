package engine

import (
	"fmt"

	"github.com/pgimaged/pgimaged/core/dcs"
)

// Step's part in a change of primary, re-pointing and rejoin (decide_change.go).

const (
	awaitHandOver awaitPoint = 100 + iota
	awaitTakeOver
	awaitAbortChange
	awaitRepoint
	awaitRejoinChain
)

// HandOver shuts the primary down cleanly for the switchover Change, records its shutdown
// checkpoint in the request (phase demoted) and gives up the leader key; the mark that this
// member led stays, so that it can resume if the switchover is aborted. Result: Err.
type HandOver struct{ Change *PendingChange }

// TakeOver carries the change out on its candidate: wait until the old primary's shutdown
// checkpoint is replayed (a switchover), take the leader key, promote (unless promoted
// already), record the timeline switch in the cluster history and remove the request. Result:
// Err.
type TakeOver struct{ Change *PendingChange }

// AbortChange marks the change aborted, with Reason. Result: Err.
type AbortChange struct {
	Change *PendingChange
	Reason string
}

// RunRejoin brings the data directory back in line with Leader by the rejoin Methods (pg_rewind)
// — stopping PostgreSQL first when Stop — then starts it as Leader's standby. The needs-reinit
// mark stays until it streams, so that a rejoin cut short is never started. Result: Err,
// Attempts.
type RunRejoin struct {
	Leader  dcs.Member
	Methods []string
	Stop    bool
}

func (HandOver) Awaited() bool    { return true }
func (TakeOver) Awaited() bool    { return true }
func (AbortChange) Awaited() bool { return true }
func (RunRejoin) Awaited() bool   { return true }

// change starts carrying out a decision of decide_change.go.
func (p *stepper) change(act Action, obs Observation) (State, []Effect) {
	switch act.Kind {
	case ActHandOver:
		p.log("warn", "switchover: shutting PostgreSQL down cleanly and handing over", "candidate", act.Change.Candidate)
		p.s.setStatus(StateSwitchingOver, nil)
		p.publish()
		return p.await(awaitHandOver, HandOver{Change: act.Change})
	case ActTakeOver:
		p.log("warn", "taking over as the primary", "change", act.Change.Describe())
		p.s.setStatus(StatePromoting, nil)
		p.publish()
		return p.await(awaitTakeOver, TakeOver{Change: act.Change})
	case ActAbortChange:
		p.log("error", "aborting the change of primary", "reason", act.Reason)
		return p.await(awaitAbortChange, AbortChange{Change: act.Change, Reason: act.Reason})
	case ActRepoint:
		p.log("info", "re-pointing the standby at its upstream", "upstream", act.Leader.Name, "reason", act.Reason)
		return p.await(awaitRepoint, WriteStandby{Leader: *act.Leader, Reload: true})
	case ActRejoin:
		p.log("warn", "rejoining the leader", "leader", act.Leader.Name, "reason", act.Reason)
		p.s.Role = dcs.RoleReplica
		p.s.setStatus(StateRejoining, nil)
		p.publish()
		return p.await(awaitRejoinChain, RunRejoin{Leader: *act.Leader, Methods: obs.RejoinMethods, Stop: act.Stop})
	}
	return p.fail(fmt.Errorf("engine: no change step for %q", act.Kind), p.s.LoopWait)
}

// resumeChange goes on after an effect of [stepper.change]; false: at is not one of its.
func (p *stepper) resumeChange(at awaitPoint, res Result) (State, []Effect, bool) {
	s := p.s
	switch at {
	case awaitHandOver:
		if res.Err != nil {
			p.log("error", "the switchover's hand-over failed; this member stays the primary", "error", res.Err)
			st, effs := p.failed(fmt.Errorf("switchover: %w", res.Err))
			return st, effs, true
		}
		p.s.Role = dcs.RoleReplica
		p.s.setStatus(StateSwitchingOver, nil)
		p.publish()
		st, effs := p.wait(0)
		return st, effs, true
	case awaitTakeOver:
		if res.Err != nil {
			p.log("error", "taking over failed", "error", res.Err)
			st, effs := p.failed(fmt.Errorf("taking over: %w", res.Err))
			return st, effs, true
		}
		p.do(Mark{Kind: MarkLed, On: true}, Mark{Kind: MarkNeedsReinit})
		p.s.Role, p.s.Status, p.s.LastErr, p.s.Fenced, p.s.Failures = dcs.RolePrimary, dcs.StateRunning, "", "", 0
		p.log("info", "this member is the primary and holds the leader key")
		p.publish()
		st, effs := p.wait(s.LoopWait)
		return st, effs, true
	case awaitAbortChange:
		if res.Err != nil {
			st, effs := p.fail(res.Err, s.LoopWait)
			return st, effs, true
		}
		st, effs := p.wait(0)
		return st, effs, true
	case awaitRepoint:
		if res.Err != nil {
			st, effs := p.failed(fmt.Errorf("re-pointing the standby: %w", res.Err))
			return st, effs, true
		}
		st, effs := p.running()
		return st, effs, true
	case awaitRejoinChain:
		p.s.record(res.Attempts...)
		if res.Err != nil {
			p.s.RejoinFailed = true
			p.log("error", "every rejoin method failed; the data directory stays as it is", "error", res.Err)
			p.s.setStatus(StateNeedsReinit, fmt.Errorf("rejoin failed: %w", res.Err))
			p.publish()
			st, effs := p.wait(0)
			return st, effs, true
		}
		p.s.RejoinFailed = false
		p.log("info", "rejoined: the member streams from the leader")
		p.do(Mark{Kind: MarkNeedsReinit}, Mark{Kind: MarkLed})
		p.s.Fenced = ""
		p.replicaRuns(p.s.SysID)
		st, effs := p.wait(s.LoopWait)
		return st, effs, true
	}
	return State{}, nil, false
}
