package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/pgimaged/pgimaged/core/dcs"
	"github.com/pgimaged/pgimaged/internal/backoff"
)

// State is what the agent remembers between cycles, and between an awaited effect and its
// result. [Step] is the only function that changes it; the driver keeps the one copy and
// hands out copies.
type State struct {
	// Identity, set once by the driver.
	Name     string
	Scope    string
	DataDir  string
	LoopWait time.Duration
	// TTL is the leader key's time to live (ttl); 0: three loop waits.
	TTL time.Duration
	// NeedsReinitMark is the path of the needs-reinit mark, named in the published reason.
	NeedsReinitMark string

	// What the member key publishes.
	Status  string // the member's state
	Role    string
	LastErr string
	// Refused is the request last refused; published while LastErr is its message.
	Refused *dcs.Refusal
	SysID   string
	// History is the last maxHistory bootstrap and clone attempts.
	History []dcs.Attempt

	// Failures counts failed attempts in a row; the wait before the next is [State.Backoff].
	Failures int
	// MustRelease: initialize may still be held empty by this session after a failure; it is
	// released before anything else.
	MustRelease bool
	// Pending is a bootstrapped cluster whose record in initialize is not settled yet.
	Pending *PendingBootstrap
	// Fenced is the report of a fence, kept until the member runs again.
	Fenced string
	// RejoinFailed: every rejoin method failed for the data directory there is; cleared when
	// it is replaced or rejoins.
	RejoinFailed bool
	// LastDecision is the last decision logged (kind and reason), so that a repeated one is
	// not logged again.
	LastDecision string
	// Leaderless is when this member first saw no leader key, zero while one is held.
	Leaderless time.Time

	// await is the effect whose result the next Step call gets; act the action being carried
	// out; carry an error kept across an awaited effect.
	await  awaitPoint
	act    Action
	carry  error
	reinit *ReinitRequest
	// restart is the restart request being carried out.
	restart *RestartRequest
}

// PendingBootstrap is a bootstrapped cluster whose system identifier is being recorded.
type PendingBootstrap struct {
	SysID string
	// Err is the SetInitialize error; nil: it was written.
	Err error
	// StandbyLeader: the cluster is a standby leader cloned from the remote, not a primary.
	StandbyLeader bool
}

// Backoff is the wait after the Failures-th failure in a row.
func (s State) Backoff() time.Duration {
	return backoff.Nth(time.Second, min(64*time.Second, max(s.LoopWait, 30*time.Second)), s.Failures)
}

// awaitPoint names where Step continues once the awaited effect's result comes.
type awaitPoint int

const (
	awaitNone awaitPoint = iota
	awaitCycleRelease
	awaitCleanStop
	awaitClean
	awaitBootTry
	awaitBootTryRelease
	awaitBootstrap
	awaitBootFailRelease
	awaitBootRecord
	awaitSettleReadBack
	awaitUndoRelease
	awaitSettleLeader
	awaitClone
	awaitReclone
	awaitFenceStop
	awaitClaimTry
	awaitClaimTryRelease
	awaitClaimSet
	awaitClaimReadBack
	awaitClaimRelease
	awaitAdoptLeader
	awaitRejoin
	awaitStart
	awaitRestartStop
	awaitRestartStart
)

// uncertain reports whether a failed DCS write may still have taken effect.
func uncertain(err error) bool {
	return errors.Is(err, dcs.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded)
}

// IsFatal reports whether err (from [Fail]) ends the agent: the data directory is not this
// cluster's or cannot be touched safely.
func IsFatal(err error) bool {
	return errors.Is(err, ErrForeignCluster) || errors.Is(err, ErrRefused) || IsRefusal(err)
}

// Step is the agent's state machine: given what it remembers and what it observes (a new
// cycle's [Observation], or the same with Result set to the outcome of the effect it
// awaited), it returns what it remembers next and the effects to carry out, in order. It reads
// nothing but its arguments and has no effect; the decision itself is [Decide]'s. The last
// effect is either awaited (its result comes back in the next call) or ends the cycle ([Wait],
// [Fail]).
func Step(s State, obs Observation) (State, []Effect) {
	s.History = slices.Clip(s.History)
	if obs.Result != nil {
		res := *obs.Result
		obs.Result = nil
		at := s.await
		s.await = awaitNone
		return s.resume(at, res, obs)
	}
	switch {
	case s.Pending != nil:
		return s.settle(obs, nil)
	case s.MustRelease:
		return s.release(awaitCycleRelease)
	}
	return s.decide(obs)
}

// stepper collects the effects of one Step call.
type stepper struct {
	s    State
	effs []Effect
}

func (s State) start() *stepper { return &stepper{s: s} }

func (p *stepper) do(e ...Effect) *stepper { p.effs = append(p.effs, e...); return p }

func (p *stepper) log(level, msg string, args ...any) *stepper {
	return p.do(Log{Level: level, Msg: msg, Args: args})
}

// publish publishes the member as State holds it.
func (p *stepper) publish() *stepper { return p.do(Publish{Member: p.s.Member()}) }

func (p *stepper) await(at awaitPoint, e Effect) (State, []Effect) {
	p.s.await = at
	p.effs = append(p.effs, e)
	return p.s, p.effs
}

func (p *stepper) wait(d time.Duration) (State, []Effect) {
	p.effs = append(p.effs, Wait{D: d})
	return p.s, p.effs
}

func (p *stepper) fail(err error, d time.Duration) (State, []Effect) {
	p.effs = append(p.effs, Fail{Err: err, D: d})
	return p.s, p.effs
}

// Member is the member key as State holds it (without what the driver measures).
func (s State) Member() dcs.Member {
	role := s.Role
	if role == "" {
		role = "uninitialized"
	}
	return dcs.Member{Name: s.Name, State: s.Status, Role: role,
		PGImaged: &dcs.MemberDetail{SystemIdentifier: s.SysID, LastError: s.LastErr, Refused: s.refusal(), Attempts: slices.Clone(s.History)}}
}

// refusal is the request last refused while LastErr still says it; nil once anything else
// happened since.
func (s State) refusal() *dcs.Refusal {
	if s.Refused == nil || s.LastErr != s.Refused.Message() {
		return nil
	}
	r := *s.Refused
	return &r
}

func (s *State) setStatus(status string, err error) {
	s.Status = status
	if err != nil {
		s.LastErr = err.Error()
	}
}

func (s *State) record(atts ...dcs.Attempt) {
	s.History = append(slices.Clip(s.History), atts...)
	if len(s.History) > maxHistory {
		s.History = s.History[len(s.History)-maxHistory:]
	}
}

// release asks for initialize to be given up; at is where Step goes on.
func (s State) release(at awaitPoint) (State, []Effect) {
	s.MustRelease = true
	return s.start().await(at, ReleaseInitialize{})
}

// decide makes this cycle's decision and starts carrying it out.
func (s State) decide(obs Observation) (State, []Effect) {
	p := s.start()
	if obs.Cluster == nil {
		// Without the DCS only what is purely local is done: a half-made directory of
		// pgimaged's own (and a server left running in it) goes at once.
		if act := Decide(obs); act.Kind == ActClean {
			p.s.carry = obs.DCSError
			return p.clean(act)
		}
		return p.fail(obs.DCSError, 0)
	}
	if obs.DataDir == DirEmpty {
		// The directory that needed a reinit, or that this member led with, is gone.
		p.do(Mark{Kind: MarkNeedsReinit}, Mark{Kind: MarkLed})
		p.s.RejoinFailed = false
	}
	obs.RejoinFailed = p.s.RejoinFailed
	p.s.Leaderless, obs.LeaderGone = leaderGone(p.s, obs)
	if obs.ReinitError != nil {
		// As without the DCS: only pgimaged's own half-made directory goes at once.
		if act := Decide(obs); act.Kind == ActClean {
			p.s.carry = obs.ReinitError
			return p.clean(act)
		}
		return p.fail(obs.ReinitError, 0)
	}
	act := Decide(obs)
	p.logDecision(act)
	if act.ReinitRefused != "" {
		p.log("error", "reinit refused; the request is dropped", "reason", act.ReinitRefused)
		p.s.Refused = &dcs.Refusal{Request: dcs.RequestReinit, Reason: act.ReinitRefused}
		p.s.LastErr = p.s.Refused.Message()
		p.publish() // the outcome is published before the request goes
		p.do(DeleteReinit{})
	}
	p.s.act, p.s.carry = act, nil
	if st, effs, ok := p.restart(obs, act); ok {
		return st, effs
	}
	cl := *obs.Cluster
	switch act.Kind {
	case ActHandOver, ActTakeOver, ActAbortChange, ActRepoint, ActRejoin:
		return p.change(act, obs)
	case ActPromoteStandby:
		return p.promoteStandby(act, obs)
	case ActFollowStandby:
		return p.followStandby(act, obs) // standby_follow.go
	case ActReclone:
		req := obs.ReinitRequested
		if req == nil { // rejoin = "reimage" after the rejoin methods failed
			req = &ReinitRequest{By: "rejoin = \"reimage\"", At: obs.Now}
			p.s.RejoinFailed = false
		}
		p.log("warn", "reinit requested: re-cloning this member", "by", req.By, "methods", req.Methods)
		p.s.Role, p.s.LastErr = dcs.RoleReplica, ""
		p.s.setStatus(StateReinitializing, nil)
		p.publish()
		p.s.reinit = req
		return p.await(awaitReclone, RunChain{Plan: chainPlan(obs, req.Methods), Reinit: req})
	case ActClean:
		return p.clean(act)
	case ActRefuse:
		err := refusal(s, act, cl)
		p.s.setStatus(dcs.StateFailed, err)
		p.publish()
		return p.fail(err, 0)
	case ActWait:
		if obs.PostgreSQL == PGPrimary {
			p.s.Role = dcs.RolePrimary // what runs here, though without the leader key
		}
		p.s.setStatus(act.State, nil)
		p.publish()
		return p.wait(s.LoopWait)
	case ActBootstrap:
		return p.await(awaitBootTry, TryInitialize{})
	case ActClone:
		if _, err := strconv.ParseUint(cl.SystemIdentifier(), 10, 64); err != nil {
			return p.fail(fmt.Errorf("the DCS initialize key holds %q, not a system identifier", cl.SystemIdentifier()), s.LoopWait)
		}
		plan := chainPlan(obs, nil)
		if plan.Source.Name == "" && !obs.NoMaster {
			p.s.setStatus(StateWaitingSource, nil)
			p.publish()
			return p.wait(s.LoopWait)
		}
		p.s.setStatus(dcs.StateCreatingReplica, nil)
		p.publish()
		return p.await(awaitClone, RunChain{Plan: plan})
	case ActFence:
		p.log("error", "fencing: stopping PostgreSQL, which runs as a primary while another member leads", "reason", act.Reason)
		return p.await(awaitFenceStop, StopPG{Mode: StopFast})
	case ActReinit:
		p.s.Role, p.s.SysID = dcs.RoleReplica, act.SystemIdentifier
		msg := "needs reinit: " + act.Reason + " (marked by " + s.NeedsReinitMark + ", which an operator removes once the directory is replaced)"
		if p.s.Fenced != "" {
			msg = p.s.Fenced + "; " + msg
		}
		p.do(Mark{Kind: MarkLed})
		if !obs.NeedsReinit {
			p.do(Mark{Kind: MarkNeedsReinit, On: true, Reason: msg})
			p.log("error", "the data directory needs a reinit; it is left as it is and not started", "reason", act.Reason, "mark", s.NeedsReinitMark)
		}
		p.s.setStatus(StateNeedsReinit, errors.New(msg))
		p.publish()
		return p.wait(s.LoopWait)
	}
	p.s.SysID = act.SystemIdentifier
	if act.ClaimInitialize {
		return p.await(awaitClaimTry, TryInitialize{})
	}
	return p.adopt(obs)
}

// chainPlan is the clone obs allows: the source [ChooseSource] names and the chain for it.
func chainPlan(obs Observation, methods []string) ChainPlan {
	choice := ChooseSource(obs.Member, *obs.Cluster)
	return ChainPlan{Source: choice.Member, SourceWhy: choice.Why, Methods: methods, Steps: obs.Chain, SysID: obs.Cluster.SystemIdentifier()}
}

// logDecision logs a decision when it differs from the previous one.
func (p *stepper) logDecision(act Action) {
	key := string(act.Kind) + "|" + act.Reason
	if key == p.s.LastDecision {
		return
	}
	p.s.LastDecision = key
	switch act.Kind {
	case ActFence, ActReinit, ActRefuse:
		p.log("warn", "decision: "+string(act.Kind), "reason", act.Reason)
	default:
		p.log("debug", "decision: "+string(act.Kind), "reason", act.Reason)
	}
}

// refusal is the error that ends the agent for a data directory it must not touch.
func refusal(s State, act Action, cl dcs.Cluster) error {
	switch {
	case act.SystemIdentifier != "" && cl.SystemIdentifier() != "" && act.SystemIdentifier != cl.SystemIdentifier():
		return fmt.Errorf("%w: %s holds system identifier %s, the DCS records %s for scope %q; move the directory away to clone afresh",
			ErrForeignCluster, s.DataDir, act.SystemIdentifier, cl.SystemIdentifier(), s.Scope)
	case act.SystemIdentifier == "":
		return fmt.Errorf("%w: %s: %s", ErrDataDirNotEmpty, s.DataDir, act.Reason)
	}
	return fmt.Errorf("%w: %s: %s", ErrRefused, s.DataDir, act.Reason)
}

// clean empties pgimaged's own half-made data directory, stopping a server that runs in it.
func (p *stepper) clean(act Action) (State, []Effect) {
	if act.Stop {
		p.log("warn", "a PostgreSQL runs in the half-made data directory a previous attempt left; stopping it")
		return p.await(awaitCleanStop, StopPG{Mode: StopFast})
	}
	return p.await(awaitClean, CleanLeftover{})
}

// settle finishes a bootstrap once the outcome of writing its system identifier is known:
// written (also when only a read-back shows it) → take the leader key; not written → stop and
// remove the new cluster and release initialize. While the DCS cannot say, the new cluster is
// kept and the question asked again on the next cycle. rb is the read-back's result, nil
// before it.
func (s State) settle(obs Observation, rb *Result) (State, []Effect) {
	p := s.start()
	pb := s.Pending
	written := pb.Err == nil
	if !written {
		known := !uncertain(pb.Err)
		if !known && rb == nil {
			return p.await(awaitSettleReadBack, ReadBackInitialize{SysID: pb.SysID})
		}
		if rb != nil {
			written, known = rb.Written, rb.Known
		}
		if !known {
			p.log("warn", "could not tell whether the new cluster's system identifier reached the DCS; asking again", "error", pb.Err)
			p.s.setStatus(dcs.StateBootstrapping, fmt.Errorf("recording the system identifier %s in the DCS: %w", pb.SysID, pb.Err))
			return p.wait(min(s.LoopWait, 2*time.Second))
		}
	}
	p.s.Pending = nil
	if !written {
		// Without the record the cluster cannot be trusted: undo it so the race can run again.
		p.log("error", "could not record the new cluster in the DCS; removing it and releasing initialize", "error", pb.Err)
		p.s.carry = fmt.Errorf("recording the system identifier %s in the DCS: %w", pb.SysID, pb.Err)
		p.do(StopPG{Mode: StopImmediate}, RemoveCluster{})
		p.s.MustRelease = true
		return p.await(awaitUndoRelease, ReleaseInitialize{})
	}
	p.do(Mark{Kind: MarkComplete, On: true})
	p.s.Failures = 0
	p.s.SysID = pb.SysID
	p.s.act.StandbyLeader = pb.StandbyLeader
	if pb.StandbyLeader {
		// A standby of the remote: it leads the standby cluster but never led as a primary.
		p.log("info", "standby leader created from the remote", "system_identifier", pb.SysID)
		return p.await(awaitSettleLeader, AcquireLeader{})
	}
	p.log("info", "cluster bootstrapped", "system_identifier", pb.SysID)
	p.do(Mark{Kind: MarkLed, On: true}) // the bootstrapper is the cluster's primary
	return p.await(awaitSettleLeader, AcquireLeader{})
}

// adopt runs the cluster already in the data directory as the decision says, once initialize
// is claimed if it had to be: take the leader key before starting a primary, write standby
// settings to follow the leader when it rejoins, start it, publish the member.
func (p *stepper) adopt(obs Observation) (State, []Effect) {
	if p.s.act.Primary || p.s.act.StandbyLeader {
		return p.await(awaitAdoptLeader, AcquireLeader{})
	}
	p.do(Mark{Kind: MarkLed})
	return p.rejoin(obs)
}

func (p *stepper) rejoin(obs Observation) (State, []Effect) {
	act := p.s.act
	if act.Rejoin {
		lm, ok := obs.Cluster.LeaderMember()
		if !ok || lm.ConnURL == "" {
			return p.wait(p.s.LoopWait)
		}
		p.log("warn", "the data directory looked like a primary while another member leads; it follows the leader as a standby", "leader", obs.Cluster.Leader)
		return p.await(awaitRejoin, WriteStandby{Leader: lm})
	}
	return p.startPG()
}

func (p *stepper) startPG() (State, []Effect) {
	act := p.s.act
	if act.Start != KeepRunning {
		// Published as what it starts as: a member that led before and now starts as a
		// standby of another no longer has the leader's role.
		p.s.Role = startRole(act)
		p.s.setStatus(dcs.StateStarting, nil)
		p.publish()
		p.log("info", "starting the existing cluster", "data_dir", p.s.DataDir, "as", map[bool]string{true: "primary", false: "standby"}[act.Primary])
		return p.await(awaitStart, StartPG{Primary: act.Primary})
	}
	return p.running()
}

// startRole is the role of a member that starts or runs its cluster as act says.
func startRole(act Action) string {
	if act.Primary || act.StandbyLeader {
		return leaderRole(act)
	}
	return dcs.RoleReplica
}

// running: the adopted cluster runs in its role.
func (p *stepper) running() (State, []Effect) {
	p.s.Failures = 0
	p.s.Role = startRole(p.s.act)
	p.s.Status = dcs.StateRunning
	p.s.LastErr, p.s.Fenced = "", ""
	p.publish()
	return p.wait(p.s.LoopWait)
}

// failed publishes err as a failure and waits the backoff.
func (p *stepper) failed(err error) (State, []Effect) {
	p.s.setStatus(dcs.StateFailed, err)
	p.publish()
	return p.wait(p.s.Backoff())
}

// replicaRuns records a clone that made a replica of the cluster sysid.
func (p *stepper) replicaRuns(sysid string) *stepper {
	p.s.Failures = 0
	p.s.SysID = sysid
	p.s.Role, p.s.Status, p.s.LastErr = dcs.RoleReplica, dcs.StateRunning, ""
	return p.do(Publish{Member: p.s.Member(), EndPath: true})
}

// resume goes on from where at left off, with the awaited effect's result.
func (s State) resume(at awaitPoint, res Result, obs Observation) (State, []Effect) {
	if res.OK && s.MustRelease {
		s.MustRelease = false
	}
	p := s.start()
	switch at {
	case awaitCycleRelease:
		if !res.OK {
			return p.fail(fmt.Errorf("while releasing initialize: %w", dcs.ErrUnavailable), 0)
		}
		return p.s.decide(obs)

	case awaitCleanStop:
		if res.Err != nil {
			p.s.setStatus(dcs.StateFailed, res.Err)
			p.publish()
			return p.fail(errors.Join(p.s.carry, res.Err), s.LoopWait)
		}
		return p.await(awaitClean, CleanLeftover{})
	case awaitClean:
		if res.Err != nil {
			return p.fail(errors.Join(p.s.carry, res.Err), s.LoopWait)
		}
		p.do(Mark{Kind: MarkLed})
		if p.s.carry != nil {
			return p.fail(p.s.carry, 0)
		}
		return p.wait(0)

	case awaitBootTry:
		if res.Err != nil {
			if uncertain(res.Err) {
				// The key may have been created all the same: give it up rather than hold it
				// without bootstrapping.
				p.s.carry = res.Err
				return p.s.release(awaitBootTryRelease)
			}
			return p.fail(res.Err, s.LoopWait)
		}
		if !res.Won {
			return p.wait(0) // someone else is bootstrapping or finished; look again
		}
		p.s.setStatus(dcs.StateBootstrapping, nil)
		if s.act.StandbyLeader {
			p.log("info", "won the initialize race; cloning the standby leader from the remote")
			p.publish()
			return p.await(awaitBootstrap, CloneRemote{})
		}
		p.log("info", "won the initialize race; bootstrapping")
		p.publish()
		return p.await(awaitBootstrap, RunBootstrap{})
	case awaitBootTryRelease:
		return p.fail(p.s.carry, s.LoopWait)
	case awaitBootstrap:
		p.s.record(res.Attempts...)
		if res.Err != nil {
			p.s.Failures++
			p.s.carry = res.Err
			return p.s.release(awaitBootFailRelease)
		}
		p.s.Pending = &PendingBootstrap{SysID: res.SysID, StandbyLeader: s.act.StandbyLeader}
		return p.await(awaitBootRecord, SetInitialize{SysID: res.SysID})
	case awaitBootFailRelease:
		// A lost session ends the wait early and the driver opens a new one.
		p.log("error", "bootstrap failed; released initialize so that another member can try", "error", p.s.carry, "retry_in", s.Backoff())
		return p.failed(p.s.carry)
	case awaitBootRecord:
		p.s.Pending.Err = res.Err
		return p.s.settle(obs, nil)
	case awaitSettleReadBack:
		return s.settle(obs, &res)
	case awaitUndoRelease:
		p.s.Failures++
		return p.failed(p.s.carry)
	case awaitSettleLeader:
		if res.Err != nil {
			return p.fail(res.Err, 0)
		}
		if !res.Held {
			p.log("warn", "could not take the leader key after the bootstrap; the next cycle tries again")
		}
		p.s.Role, p.s.Status, p.s.LastErr = leaderRole(s.act), dcs.StateRunning, ""
		if !res.Held && s.act.StandbyLeader {
			// Another member copied the same remote and leads: this copy is a standby like its.
			p.s.Role = dcs.RoleReplica
		}
		p.do(Publish{Member: p.s.Member(), EndPath: true})
		return p.wait(s.LoopWait)

	case awaitClone:
		p.s.record(res.Attempts...)
		switch {
		case res.Canceled:
			return p.wait(0)
		case errors.Is(res.Err, ErrNoMethodCanRun):
			p.s.setStatus(StateWaitingSource, nil)
			p.publish()
			return p.wait(s.LoopWait)
		case errors.Is(res.Err, ErrCopyKept):
			p.s.Failures++
			p.log("error", "starting PostgreSQL failed; the complete copy is kept and its start tried again", "error", res.Err, "retry_in", p.s.Backoff())
			return p.failed(res.Err)
		case res.Err != nil:
			p.s.Failures++
			p.log("error", "creating the replica failed; the whole method list is tried again", "error", res.Err, "retry_in", p.s.Backoff())
			return p.failed(res.Err)
		}
		p.replicaRuns(res.SysID)
		return p.wait(s.LoopWait)
	case awaitReclone:
		p.s.record(res.Attempts...)
		p.s.reinit = nil
		switch {
		case res.Canceled:
			return p.wait(0)
		case res.Err != nil:
			p.s.Failures++
			p.s.setStatus(dcs.StateFailed, fmt.Errorf("reinit: %w", res.Err))
			p.publish()
			p.do(DeleteReinit{})
			p.log("error", "reinit failed", "error", res.Err, "retry_in", p.s.Backoff())
			return p.wait(p.s.Backoff())
		}
		p.log("info", "reinit done: the member runs as a replica again")
		p.replicaRuns(res.SysID)
		p.do(DeleteReinit{})
		return p.wait(s.LoopWait)

	case awaitFenceStop:
		reported := fmt.Errorf("fenced: %s", s.act.Reason)
		if res.Err != nil {
			p.s.setStatus(StateFenced, fmt.Errorf("%w; stopping it failed: %w", reported, res.Err))
			p.publish()
			return p.wait(s.Backoff())
		}
		p.do(Mark{Kind: MarkLed}, Mark{Kind: MarkNeedsReinit, On: true, Reason: reported.Error()})
		p.s.Role, p.s.Fenced = dcs.RoleReplica, reported.Error()
		p.s.setStatus(StateFenced, reported)
		p.publish()
		p.log("warn", "PostgreSQL stopped (fenced); the data directory is left as it is")
		return p.wait(0)

	case awaitClaimTry:
		if res.Err != nil {
			if uncertain(res.Err) {
				p.s.carry = res.Err
				return p.s.release(awaitClaimTryRelease)
			}
			return p.fail(res.Err, s.LoopWait)
		}
		if !res.Won {
			return p.wait(0) // another member took initialize: decide again
		}
		return p.await(awaitClaimSet, SetInitialize{SysID: s.act.SystemIdentifier})
	case awaitClaimTryRelease:
		return p.fail(p.s.carry, s.LoopWait)
	case awaitClaimSet:
		if res.Err == nil {
			p.log("info", "recorded this data directory's system identifier in the DCS", "system_identifier", s.act.SystemIdentifier)
			return p.adopt(obs)
		}
		p.s.carry = fmt.Errorf("while recording this data directory's system identifier %s in the DCS: %w", s.act.SystemIdentifier, res.Err)
		if !uncertain(res.Err) {
			return p.s.release(awaitClaimRelease)
		}
		return p.await(awaitClaimReadBack, ReadBackInitialize{SysID: s.act.SystemIdentifier})
	case awaitClaimReadBack:
		switch {
		case res.Written:
			p.log("info", "recorded this data directory's system identifier in the DCS (confirmed by reading it back)", "system_identifier", s.act.SystemIdentifier)
			return p.adopt(obs)
		case res.Known:
			return p.s.release(awaitClaimRelease)
		}
		// Not known either way: the DCS is unreachable. The empty key stays bound to this
		// session; the next cycle reads the DCS again, and the key vanishes if the session ends.
		return p.fail(p.s.carry, s.LoopWait)
	case awaitClaimRelease:
		return p.fail(p.s.carry, s.LoopWait)

	case awaitAdoptLeader:
		if res.Err != nil {
			return p.fail(res.Err, s.LoopWait)
		}
		if !res.Held {
			// Never start or keep a primary without the key: decide again with the new state.
			p.log("warn", "could not take the leader key; deciding again", "leader", obs.Cluster.Leader)
			return p.wait(min(s.LoopWait, time.Second))
		}
		if s.act.Primary {
			p.do(Mark{Kind: MarkLed, On: true})
		}
		if s.act.FollowRemote {
			return p.followRemote() // standby_leader.go
		}
		return p.rejoin(obs)
	case awaitRejoin:
		if res.Err != nil {
			return p.failed(res.Err)
		}
		return p.startPG()
	case awaitStart:
		if res.Err != nil {
			if res.Prepare {
				return p.fail(res.Err, s.LoopWait)
			}
			p.s.setStatus(dcs.StateFailed, res.Err)
			p.publish()
			p.s.Failures++
			p.log("error", "starting PostgreSQL failed; it is tried again", "error", res.Err, "retry_in", p.s.Backoff())
			return p.wait(p.s.Backoff())
		}
		return p.running()
	}
	if st, effs, ok := p.resumeRestart(at, res); ok {
		return st, effs
	}
	if st, effs, ok := p.resumeChange(at, res); ok {
		return st, effs
	}
	if at == awaitPromoteStandby {
		return p.resumePromoteStandby(res)
	}
	if at == awaitFollowStandby {
		return p.resumeFollowStandby(res) // standby_follow.go
	}
	if st, effs, ok := p.resumeStandby(at, res); ok {
		return st, effs
	}
	return p.fail(fmt.Errorf("engine: a result came with nothing awaiting it (%d)", at), s.LoopWait)
}
