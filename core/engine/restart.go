package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/pgimaged/pgimaged/core/dcs"
)

// A restart of PostgreSQL (`pgimaged restart`, the API's POST /restart, `patronictl restart`)
// is carried out by the member's agent: the request waits in the DCS under
// [dcs.RestartKeyDir]<member>; the agent's next cycle stops PostgreSQL (fast) and starts it
// again in the same role, publishing the state `restarting` meanwhile, and writes the outcome
// into the request, where the one who asked reads it. The leader keeps its key throughout: a
// restart is not a change of primary.

// StateRestarting is what a member publishes while its PostgreSQL restarts, as Patroni does.
const StateRestarting = "restarting"

// Patroni's answers to a restart, also the outcome's messages.
const (
	RestartDone          = "restarted successfully"
	RestartFailed        = "restart failed"
	RestartNotSatisfied  = "restart conditions are not satisfied"
	restartRefusedPrefix = "restart refused: "
)

// ErrRestartRefused means a restart may not run on the member now (it is cloning, a change of
// primary is under way, PostgreSQL does not run, ...); nothing was stopped.
var ErrRestartRefused = errors.New("restart refused")

// RestartRequest is an operator's request to restart a member's PostgreSQL, and once Done its
// outcome, written by the agent.
type RestartRequest struct {
	// Pending: restart only if PostgreSQL reports a setting pending a restart (Patroni's
	// restart_pending).
	Pending bool `json:"restart_pending,omitempty"`
	// Role: restart only if the member runs in this role ("primary", "replica",
	// "standby_leader"); "" for any.
	Role string `json:"role,omitempty"`
	// By says who asked.
	By string    `json:"by,omitempty"`
	At time.Time `json:"at"`

	// Done: the agent carried the request out (or refused it); OK and Message say how.
	Done    bool   `json:"done,omitempty"`
	OK      bool   `json:"ok,omitempty"`
	Message string `json:"message,omitempty"`
}

// RestartKey is the DCS key of member's restart request.
func RestartKey(member string) string { return dcs.RestartKeyDir + member }

// RequestRestart asks member's agent, through the DCS st, to restart its PostgreSQL; a former
// outcome is replaced.
func RequestRestart(ctx context.Context, st dcs.Store, member string, req RestartRequest) error {
	if req.At.IsZero() {
		req.At = time.Now().UTC()
	}
	req.Done, req.OK, req.Message = false, false, ""
	b, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("while requesting a restart of %s: %w", member, err)
	}
	if err := st.Put(ctx, RestartKey(member), b); err != nil {
		return fmt.Errorf("while requesting a restart of %s: %w", member, err)
	}
	return nil
}

// ReadRestart reads member's restart request (pending or done); nil when there is none.
func ReadRestart(ctx context.Context, st dcs.Store, member string) (*RestartRequest, error) {
	b, ok, err := st.Get(ctx, RestartKey(member))
	if err != nil || !ok {
		return nil, err
	}
	var req RestartRequest
	if err := json.Unmarshal(b, &req); err != nil {
		return nil, fmt.Errorf("the restart request of %s (%s) cannot be read: %w", member, RestartKey(member), err)
	}
	return &req, nil
}

// WaitRestart waits until member's agent has carried out the restart request asked at at, and
// returns its outcome (the request is removed). It gives up when ctx ends, and when the member's
// key vanishes (its agent stopped) before the outcome, removing the request: a restart is not
// left for an agent that starts later.
func WaitRestart(ctx context.Context, st dcs.Store, member string, at time.Time, poll time.Duration) (*RestartRequest, error) {
	for {
		req, err := ReadRestart(ctx, st, member)
		switch {
		case err != nil:
		case req == nil:
			return nil, fmt.Errorf("the restart request of %s vanished before its outcome", member)
		case req.Done && req.At.Equal(at):
			_ = st.Delete(context.WithoutCancel(ctx), RestartKey(member))
			return req, nil
		default:
			if cl, err := st.Cluster(ctx); err == nil {
				if _, ok := cl.Member(member); !ok {
					_ = st.Delete(context.WithoutCancel(ctx), RestartKey(member))
					return nil, fmt.Errorf("%w: the agent of member %s stopped before it restarted PostgreSQL", ErrRestartRefused, member)
				}
			}
		}
		select {
		case <-ctx.Done():
			_ = st.Delete(context.WithoutCancel(ctx), RestartKey(member))
			return nil, fmt.Errorf("stopped waiting for member %s to restart: %w", member, ctx.Err())
		case <-time.After(poll):
		}
	}
}

// RestartRefusal says why the restart req may not run now, given this cycle's observation and
// decision act, "" when it may. A restart runs only where PostgreSQL runs and the decision is to
// keep it running as it is (or in maintenance mode, where Patroni also restarts on request); it
// is refused mid-clone, mid-reinit, during a change of primary, and on a primary that does not
// hold the leader key.
func RestartRefusal(obs Observation, act Action, req RestartRequest) string {
	cl := obs.Cluster
	role := restartRole(obs)
	switch {
	case cl == nil:
		return "the DCS cannot be read: whether this member leads cannot be told"
	case obs.PostgreSQL == PGStopped:
		return "PostgreSQL does not run on this member: there is nothing to restart"
	case obs.Change != nil && obs.Change.underWay(obs.Now):
		return "a change of primary (switchover or failover) is under way: restart once it is over"
	case obs.PostgreSQL == PGPrimary && cl.Leader != obs.Member:
		return "PostgreSQL runs as a primary without the leader key: it is not restarted as one"
	case !obs.Paused && (act.Kind != ActAdopt || act.Start != KeepRunning):
		return fmt.Sprintf("the member is busy (%s: %s)", act.Kind, act.Reason)
	case req.Role != "" && req.Role != role && !(req.Role == "master" && role == dcs.RolePrimary):
		return RestartNotSatisfied
	case req.Pending && !obs.PendingRestart:
		return RestartNotSatisfied
	}
	return ""
}

// restartRole is the role a restart keeps: primary, standby_leader or replica.
func restartRole(obs Observation) string {
	switch {
	case obs.PostgreSQL == PGPrimary:
		return dcs.RolePrimary
	case obs.Cluster != nil && obs.Cluster.Leader == obs.Member:
		return dcs.RoleStandbyLeader
	}
	return dcs.RoleReplica
}

// EndRestart writes the restart request's outcome into the DCS for the one who asked.
type EndRestart struct {
	Request RestartRequest
	OK      bool
	Message string
}

// Awaited: the outcome is written on the way.
func (EndRestart) Awaited() bool { return false }

// restart starts carrying out the restart request of obs, or refuses it (writing the refusal)
// and goes on with the cycle's decision; ok false: nothing to restart.
func (p *stepper) restart(obs Observation, act Action) (State, []Effect, bool) {
	req := obs.RestartRequested
	if req == nil || req.Done {
		return State{}, nil, false
	}
	if why := RestartRefusal(obs, act, *req); why != "" {
		msg := why
		if why != RestartNotSatisfied {
			msg = restartRefusedPrefix + why
		}
		p.log("warn", "restart refused", "reason", why)
		p.do(EndRestart{Request: *req, Message: msg})
		return State{}, nil, false
	}
	role := restartRole(obs)
	p.s.act = Action{Kind: ActAdopt, Start: KeepRunning, SystemIdentifier: act.SystemIdentifier,
		Primary: role == dcs.RolePrimary, StandbyLeader: role == dcs.RoleStandbyLeader}
	p.s.restart = req
	p.s.setStatus(StateRestarting, nil)
	p.publish()
	p.log("info", "restarting PostgreSQL as asked", "by", req.By, "role", role)
	st, effs := p.await(awaitRestartStop, StopPG{Mode: StopFast})
	return st, effs, true
}

// resumeRestart goes on with a restart once PostgreSQL stopped, then once it started again.
func (p *stepper) resumeRestart(at awaitPoint, res Result) (State, []Effect, bool) {
	req := p.s.restart
	switch at {
	case awaitRestartStop:
		if res.Err != nil {
			p.s.restart = nil
			p.do(EndRestart{Request: *req, Message: RestartFailed + ": " + res.Err.Error()})
			st, effs := p.failed(fmt.Errorf("restart: %w", res.Err))
			return st, effs, true
		}
		p.s.setStatus(dcs.StateStarting, nil)
		p.publish()
		st, effs := p.await(awaitRestartStart, StartPG{Primary: p.s.act.Primary})
		return st, effs, true
	case awaitRestartStart:
		p.s.restart = nil
		if res.Err != nil {
			p.log("error", "restart: PostgreSQL did not start again", "error", res.Err)
			p.do(EndRestart{Request: *req, Message: RestartFailed + ": " + res.Err.Error()})
			p.s.Failures++
			st, effs := p.failed(fmt.Errorf("restart: %w", res.Err))
			return st, effs, true
		}
		p.log("info", "PostgreSQL restarted")
		st, effs := p.running()
		// The outcome comes once the member is published running again.
		effs = append(effs[:len(effs)-1], EndRestart{Request: *req, OK: true, Message: RestartDone}, effs[len(effs)-1])
		return st, effs, true
	}
	return State{}, nil, false
}

// endRestart writes a restart request's outcome, unless a newer request replaced it meanwhile.
func (a *Agent) endRestart(ctx context.Context, e EndRestart) {
	log := a.Node.logger()
	cur, err := ReadRestart(ctx, a.store, a.Node.Config.Name)
	if err == nil && (cur == nil || !cur.At.Equal(e.Request.At)) {
		return // withdrawn or replaced: the asker gave up
	}
	out := e.Request
	out.Done, out.OK, out.Message = true, e.OK, a.Node.secrets().Mask(e.Message)
	b, err := json.Marshal(out)
	if err == nil {
		err = a.store.Put(ctx, RestartKey(a.Node.Config.Name), b)
	}
	if err != nil {
		log.Warn("could not write the restart's outcome", "error", err)
	}
}

// RequestRestart asks this agent to restart PostgreSQL and waits for the outcome (bounded by
// ctx). For the API's POST /restart.
func (a *Agent) RequestRestart(ctx context.Context, req RestartRequest) (*RestartRequest, error) {
	st, err := a.Open(ctx)
	if err != nil {
		return nil, fmt.Errorf("while requesting a restart: %w", err)
	}
	defer st.Close()
	req.At = time.Now().UTC()
	if err := RequestRestart(ctx, st, a.Node.Config.Name, req); err != nil {
		return nil, err
	}
	return WaitRestart(ctx, st, a.Node.Config.Name, req.At, 200*time.Millisecond)
}

// observeRestart adds this member's pending restart request to obs, and whether PostgreSQL
// reports a setting pending a restart. A request that cannot be read is dropped with its
// reason as the outcome, never carried out.
func (a *Agent) observeRestart(ctx context.Context, obs *Observation) {
	req, err := ReadRestart(ctx, a.store, a.Node.Config.Name)
	if err != nil {
		if !errors.Is(err, dcs.ErrUnavailable) {
			a.Node.logger().Warn("the restart request cannot be read; it is dropped", "error", err)
			_ = a.store.Delete(ctx, RestartKey(a.Node.Config.Name))
		}
		return
	}
	obs.RestartRequested = req
	obs.PendingRestart = a.pgStatus(ctx).PendingRestart
}
