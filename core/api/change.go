package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/pgimaged/pgimaged/core/dcs"
	"github.com/pgimaged/pgimaged/core/engine"
)

// ChangeOptions are what POST /switchover and POST /failover need of the agent.
type ChangeOptions struct {
	// Open opens a DCS session (engine.Agent.Open); the handler closes it when it has answered.
	Open func(context.Context) (dcs.Store, error)
	// MaxLag is maximum_lag_on_failover in bytes: how far behind the leader a switchover's
	// candidate may be.
	MaxLag int64
	// SynchronousMode is synchronous_mode ([engine.InSynchronousMode]).
	SynchronousMode bool
	// Wait bounds how long an answer waits for the agents to carry the change out (default
	// 60s); a request no agent took up by then is withdrawn.
	Wait time.Duration
	// Poll is how often the DCS is read while waiting (default 500ms).
	Poll time.Duration
	// Settle bounds how long a switchover refused only for its candidates' lag waits for them
	// to publish their positions again ([engine.CheckSwitchoverSettled]); pgimaged gives
	// loop_wait and a second. 0: refused at once.
	Settle time.Duration
}

// changeBody is Patroni's body of POST /switchover and /failover.
type changeBody struct {
	Leader    string `json:"leader"`
	Candidate string `json:"candidate"`
	// Member is Patroni's older name of candidate.
	Member      string `json:"member"`
	ScheduledAt string `json:"scheduled_at"`
}

// ChangeHandler is POST /switchover (action [engine.Switchover]) or POST /failover
// ([engine.Failover]) as Patroni's: body {"leader", "candidate", "scheduled_at"}. The change is
// checked against the cluster as the DCS holds it ([engine.CheckSwitchover],
// [engine.CheckFailover]), recorded for the agents ([engine.RequestChange]) and waited for
// ([engine.AwaitChange]); the answer is Patroni's: 200 `Successfully switched over to "n2"`,
// 400 for a request Patroni refuses as malformed, 412 with the reason when the change is not
// possible, 503 when it failed or could not be recorded. As Patroni, a failover that names the
// leader, or asked while a member holds the leader key, is carried out as a switchover.
// A scheduled_at records a switchover for later ([schedule]); changes are refused while the
// cluster is paused (412). Register it with [Server.HandleAuthenticated].
func ChangeHandler(action engine.ChangeKind, o ChangeOptions) http.Handler {
	if o.Wait <= 0 {
		o.Wait = time.Minute
	}
	if o.Poll <= 0 {
		o.Poll = 500 * time.Millisecond
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body changeBody
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&body); err != nil {
			writeText(w, http.StatusBadRequest, "the body is not a JSON object: "+err.Error())
			return
		}
		code, text := change(r, action, body, o)
		writeText(w, code, text)
	})
}

// change carries out one POST /switchover or /failover and returns Patroni's answer.
func change(r *http.Request, action engine.ChangeKind, body changeBody, o ChangeOptions) (int, string) {
	candidate := body.Candidate
	if candidate == "" {
		candidate = body.Member
	}
	switch {
	case action == engine.Failover && candidate == "":
		return http.StatusBadRequest, "Failover could be performed only to a specific candidate"
	case action == engine.Switchover && body.Leader == "":
		return http.StatusBadRequest, "Switchover could be performed only from a specific leader"
	case body.ScheduledAt != "" && body.Leader == "":
		return http.StatusBadRequest, fmt.Sprintf("Scheduled %s is possible only from a specific leader", action)
	}
	if body.ScheduledAt != "" {
		return schedule(r, action, body, candidate, o)
	}
	if body.Leader != "" {
		action = engine.Switchover // as Patroni: a failover from a named leader is a switchover
	}
	if body.Leader != "" && body.Leader == candidate {
		return http.StatusBadRequest, "Switchover target and source are the same"
	}
	st, cl, code, text := openUnpaused(r, o, string(action)) // standby.go
	if st == nil {
		return code, text
	}
	defer st.Close()
	kind := action
	if kind == engine.Failover && cl.Leader != "" {
		kind = engine.Switchover // the leader runs: it hands over to the candidate, as Patroni's does
	}
	if why := changeImpossible(cl, action, body.Leader, candidate); why != "" {
		return http.StatusPreconditionFailed, why
	}
	var req engine.ChangeRequest
	var err error
	if kind == engine.Switchover {
		req, err = engine.CheckSwitchoverSettled(r.Context(), st.Cluster, cl, candidate, o.MaxLag, o.Settle, min(o.Poll, 200*time.Millisecond))
	} else {
		req, err = engine.CheckFailover(engine.InSynchronousMode(cl, o.SynchronousMode), candidate, false)
	}
	if err != nil {
		return http.StatusPreconditionFailed, fmt.Sprintf("%s is not possible: %v", action, err)
	}
	req.By = "api " + r.RemoteAddr
	req.At = time.Now().UTC()
	req.Deadline = req.At.Add(o.Wait)
	if err := engine.RequestChange(r.Context(), st, req); err != nil {
		if errors.Is(err, engine.ErrChangePending) {
			return http.StatusPreconditionFailed, fmt.Sprintf("%s is not possible: %v", action, err)
		}
		return http.StatusServiceUnavailable, "failed to write failover key into DCS: " + err.Error()
	}
	title := strings.ToUpper(string(action[:1])) + string(action[1:])
	wctx, cancel := context.WithTimeout(r.Context(), o.Wait)
	defer cancel()
	out, err := engine.AwaitChange(wctx, st, req, o.Poll)
	switch {
	case err != nil && out.Reason != "": // withdrawn: no agent took it up
		return http.StatusServiceUnavailable, title + " failed: " + out.Reason
	case err != nil:
		return http.StatusServiceUnavailable, fmt.Sprintf("%s status unknown after %d seconds; operation may still be in progress",
			title, int(o.Wait.Seconds()))
	case !out.Done:
		return http.StatusServiceUnavailable, title + " failed: " + out.Reason
	}
	return http.StatusOK, fmt.Sprintf("Successfully %sed over to %q", strings.TrimSuffix(string(action), "over"), out.Leader)
}

// schedule records a switchover for later (body.ScheduledAt), as Patroni's POST /switchover
// with scheduled_at does: 202 "Switchover scheduled". The leader's agent checks the candidate
// when the time comes (none named: the most advanced healthy replica then) and hands over, or
// aborts it with the reason. A failover from a named leader is a switchover here too.
func schedule(r *http.Request, action engine.ChangeKind, body changeBody, candidate string, o ChangeOptions) (int, string) {
	at, code, why := parseSchedule(body.ScheduledAt, string(action), time.Now())
	if why != "" {
		return code, why
	}
	st, err := o.Open(r.Context())
	if err != nil {
		return http.StatusServiceUnavailable, "cannot reach the DCS: " + err.Error()
	}
	defer st.Close()
	cl, err := st.Cluster(r.Context())
	if err != nil {
		return http.StatusServiceUnavailable, "cannot read the DCS: " + err.Error()
	}
	if p, err := engine.ReadPause(r.Context(), st); err != nil {
		return http.StatusServiceUnavailable, "cannot read the DCS: " + err.Error()
	} else if p != nil {
		return http.StatusBadRequest, fmt.Sprintf("Can't schedule %s in the paused state", action)
	}
	if body.Leader == candidate {
		return http.StatusBadRequest, "Switchover target and source are the same"
	}
	if why := changeImpossible(cl, action, body.Leader, candidate); why != "" {
		return http.StatusPreconditionFailed, why
	}
	req := engine.ChangeRequest{Kind: engine.Switchover, Leader: body.Leader, Candidate: candidate, ScheduledAt: at.UTC(),
		By: "api " + r.RemoteAddr, At: time.Now().UTC(), Deadline: at.UTC().Add(o.Wait), Phase: engine.PhaseAsked}
	if err := engine.RequestChange(r.Context(), st, req); err != nil {
		if errors.Is(err, engine.ErrChangePending) {
			return http.StatusPreconditionFailed, fmt.Sprintf("%s is not possible: %v", action, err)
		}
		return http.StatusServiceUnavailable, fmt.Sprintf("failed to write %s key into DCS: %v", action, err)
	}
	_ = engine.MirrorScheduled(r.Context(), st, &req, time.Now()) // the leader's agent writes it too
	return http.StatusAccepted, strings.ToUpper(string(action[:1])) + string(action[1:]) + " scheduled"
}

// parseSchedule reads a scheduled time as Patroni does: one without a time zone is refused
// (400), one in the past or that cannot be read too (422).
func parseSchedule(s, action string, now time.Time) (time.Time, int, string) {
	t, err := engine.ParseSchedule(s, now)
	switch {
	case errors.Is(err, engine.ErrScheduleNoZone):
		return time.Time{}, http.StatusBadRequest, fmt.Sprintf("Timezone information is mandatory for the scheduled %s", action)
	case errors.Is(err, engine.ErrSchedulePast):
		return time.Time{}, http.StatusUnprocessableEntity, fmt.Sprintf("Cannot schedule %s in the past", action)
	case err != nil:
		return time.Time{}, http.StatusUnprocessableEntity, "Unable to parse scheduled timestamp. It should be in an unambiguous format, e.g. ISO 8601"
	}
	return t, 0, ""
}

// CancelScheduledHandler is DELETE /switchover, as Patroni's: it removes a switchover scheduled
// for later (200 "scheduled switchover deleted"; 404 "no switchover is scheduled"; 409 when
// the request changed meanwhile). Register it with [Server.HandleAuthenticatedDelete].
func CancelScheduledHandler(o ChangeOptions) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st, err := o.Open(r.Context())
		if err != nil {
			writeText(w, http.StatusServiceUnavailable, "cannot reach the DCS: "+err.Error())
			return
		}
		defer st.Close()
		p, err := engine.CancelScheduled(r.Context(), st)
		switch {
		case errors.Is(err, engine.ErrChangePending):
			writeText(w, http.StatusConflict, err.Error())
		case err != nil:
			writeText(w, http.StatusServiceUnavailable, "cannot read the DCS: "+err.Error())
		case p == nil:
			writeText(w, http.StatusNotFound, "no switchover is scheduled")
		default:
			writeText(w, http.StatusOK, "scheduled switchover deleted")
		}
	})
}

// changeImpossible is Patroni's is_failover_possible on what pgimaged knows: "" when the
// engine's checks are to decide.
func changeImpossible(cl dcs.Cluster, action engine.ChangeKind, leader, candidate string) string {
	if leader != "" && cl.Leader != leader {
		return "leader name does not match"
	}
	if candidate != "" {
		if _, ok := cl.Member(candidate); !ok {
			return "candidate does not exists"
		}
		return ""
	}
	for _, m := range cl.Members {
		if m.Name != cl.Leader {
			return ""
		}
	}
	return string(action) + " is not possible: cluster does not have members except leader"
}
