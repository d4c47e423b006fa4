package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/pgimaged/pgimaged/core/config"
	"github.com/pgimaged/pgimaged/core/dcs"
	"github.com/pgimaged/pgimaged/core/engine"
)

// StandbyPromoteHandler is POST /standby/promote (`pgimaged standby promote` over HTTP): the
// standby cluster's leader ends recovery and becomes its primary ([engine.RequestStandbyPromote],
// then [engine.AwaitStandbyPromote]). 200 `Successfully promoted the standby cluster: "n1" is
// its primary on timeline 3`; 412 with the reason when there is no running standby leader,
// the cluster is paused, or a promotion or change of primary is pending; 503 when the DCS
// cannot be reached or the promotion did not happen in time. The body is ignored. Register it
// with [Server.HandleAuthenticated].
func StandbyPromoteHandler(o ChangeOptions) http.Handler {
	if o.Wait <= 0 {
		o.Wait = time.Minute
	}
	if o.Poll <= 0 {
		o.Poll = 50 * time.Millisecond
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code, text := standbyPromote(r, o)
		writeText(w, code, text)
	})
}

func standbyPromote(r *http.Request, o ChangeOptions) (int, string) {
	st, cl, code, text := openUnpaused(r, o, "promotion")
	if st == nil {
		return code, text
	}
	defer st.Close()
	req, err := engine.RequestStandbyPromote(r.Context(), st, cl, "api "+r.RemoteAddr)
	switch {
	case errors.Is(err, engine.ErrNotStandbyCluster) || errors.Is(err, engine.ErrChangePending):
		return http.StatusPreconditionFailed, "promotion is not possible: " + err.Error()
	case err != nil:
		return http.StatusServiceUnavailable, "failed to write the promotion into the DCS: " + err.Error()
	}
	wctx, cancel := context.WithTimeout(r.Context(), o.Wait)
	defer cancel()
	done, err := engine.AwaitStandbyPromote(wctx, st, o.Poll)
	if err != nil {
		return http.StatusServiceUnavailable, fmt.Sprintf("promotion of %q status unknown after %d seconds; it may still be in progress", req.Leader, int(o.Wait.Seconds()))
	}
	return http.StatusOK, fmt.Sprintf("Successfully promoted the standby cluster: %q is its primary on timeline %d", done.Leader, done.Timeline)
}

// StandbyFollowHandler is POST /standby/follow (`pgimaged standby follow` over HTTP): the
// cluster's primary becomes the standby leader of a standby cluster of the remote that block
// (the standby_cluster block of the configuration this member's agent runs with) names
// ([engine.RequestStandbyFollow], then [engine.AwaitStandbyFollow]). 200 `Successfully made the
// cluster a standby cluster of host=… : "n1" is its standby leader on timeline 2`; 412 with the
// reason when the configuration has no standby_cluster block, no primary runs, the cluster is
// paused, or a change of primary or of the standby cluster is pending; 503 when the DCS cannot
// be reached or the follow did not end in time (with the leader's reason when it failed). The
// body is ignored. Register it with [Server.HandleAuthenticated].
func StandbyFollowHandler(o ChangeOptions, block func() *config.StandbyCluster) http.Handler {
	if o.Wait <= 0 {
		o.Wait = time.Minute
	}
	if o.Poll <= 0 {
		o.Poll = 50 * time.Millisecond
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code, text := standbyFollow(r, o, block())
		writeText(w, code, text)
	})
}

func standbyFollow(r *http.Request, o ChangeOptions, sc *config.StandbyCluster) (int, string) {
	if sc == nil {
		return http.StatusPreconditionFailed, "follow is not possible: the configuration of this member has no standby_cluster block naming the cluster to follow"
	}
	st, cl, code, text := openUnpaused(r, o, "follow")
	if st == nil {
		return code, text
	}
	defer st.Close()
	req, err := engine.RequestStandbyFollow(r.Context(), st, cl, sc, "api "+r.RemoteAddr)
	switch {
	case errors.Is(err, engine.ErrCannotFollow) || errors.Is(err, engine.ErrChangePending):
		return http.StatusPreconditionFailed, "follow is not possible: " + err.Error()
	case err != nil:
		return http.StatusServiceUnavailable, "failed to write the follow request into the DCS: " + err.Error()
	}
	wctx, cancel := context.WithTimeout(r.Context(), o.Wait)
	defer cancel()
	done, err := engine.AwaitStandbyFollow(wctx, st, o.Poll)
	if err != nil {
		return http.StatusServiceUnavailable, fmt.Sprintf("follow of %s by %q not done after %d seconds: %v", req.Remote.Describe(), req.Leader, int(o.Wait.Seconds()), err)
	}
	return http.StatusOK, fmt.Sprintf("Successfully made the cluster a standby cluster of %s: %q is its standby leader on timeline %d", done.Remote.Describe(), done.Leader, done.Timeline)
}

// openUnpaused opens a DCS session for a change of what (switchover, promotion...) and reads
// the cluster; it answers 503 when the DCS cannot be reached or read and 412 when the cluster is
// paused (then the store is nil, and code and text are the answer). The caller closes the store.
func openUnpaused(r *http.Request, o ChangeOptions, what string) (dcs.Store, dcs.Cluster, int, string) {
	st, err := o.Open(r.Context())
	if err != nil {
		return nil, dcs.Cluster{}, http.StatusServiceUnavailable, "cannot reach the DCS: " + err.Error()
	}
	cl, err := st.Cluster(r.Context())
	if err != nil {
		st.Close()
		return nil, dcs.Cluster{}, http.StatusServiceUnavailable, "cannot read the DCS: " + err.Error()
	}
	if p, err := engine.ReadPause(r.Context(), st); err != nil {
		st.Close()
		return nil, dcs.Cluster{}, http.StatusServiceUnavailable, "cannot read the DCS: " + err.Error()
	} else if p != nil {
		st.Close()
		return nil, dcs.Cluster{}, http.StatusPreconditionFailed, fmt.Sprintf("%s is not possible: the cluster is paused (maintenance mode, since %s): the agents promote nothing until pgimaged resume",
			what, p.At.UTC().Format(time.RFC3339))
	}
	return st, cl, 0, ""
}
