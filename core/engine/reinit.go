package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/pgimaged/pgimaged/core/config"
	"github.com/pgimaged/pgimaged/core/dcs"
	"github.com/pgimaged/pgimaged/core/pg"
)

// ErrReinitRefused means a reinit may not replace this member's data directory: the member
// leads or runs a primary, the directory is another cluster's or not a cluster pgimaged may
// empty, or the DCS records no cluster to clone.
var ErrReinitRefused = errors.New("reinit refused")

// ReinitOptions adjusts a reinit.
type ReinitOptions struct {
	// Methods are the replica methods to clone with instead of the configured chain.
	Methods []string
}

// ReinitRefusal says why obs forbids replacing the data directory by a reinit, "" when it may
// be replaced. It reads nothing but obs. A reinit is the one operator action that deletes a
// cluster pgimaged did not create in this attempt, so it is refused on the leader, on a
// member running a primary, on a directory of another cluster or with an unreadable
// pg_control, and on files that are not a cluster.
func ReinitRefusal(obs Observation) string {
	cl := obs.Cluster
	switch {
	case cl == nil:
		return fmt.Sprintf("the DCS cannot be read (%v): whether this member leads cannot be told", obs.DCSError)
	case cl.Leader == obs.Member:
		return fmt.Sprintf("member %s holds the leader key: the leader is never re-cloned", obs.Member)
	case cl.SystemIdentifier() == "":
		return "the DCS records no cluster (initialize holds no system identifier): there is nothing to clone"
	case obs.PostgreSQL == PGPrimary:
		return "PostgreSQL runs as a primary in the data directory: a primary is never re-cloned"
	}
	if m, ok := cl.Member(obs.Member); ok && m.IsRunning() && m.IsPrimary() {
		return fmt.Sprintf("member %s publishes a running primary: a primary is never re-cloned", obs.Member)
	}
	switch obs.DataDir {
	case DirForeign:
		return obs.DirProblem
	case DirCluster:
		if obs.ControlError != nil {
			return fmt.Sprintf("the data directory's pg_control cannot be read (%v): whose cluster it holds cannot be told", obs.ControlError)
		}
		if own := strconv.FormatUint(obs.Control.SystemIdentifier, 10); own != cl.SystemIdentifier() {
			return fmt.Sprintf("the data directory holds system identifier %s but the DCS records %s: another cluster's directory is never deleted", own, cl.SystemIdentifier())
		}
	}
	return ""
}

// CheckReinit reports (ErrReinitRefused) whether a reinit of this member would be refused now,
// given the DCS state cl and the methods asked for.
func (n *Node) CheckReinit(ctx context.Context, cl dcs.Cluster, opts ReinitOptions) error {
	if why := ReinitRefusal(n.Observe(ctx, &cl, nil)); why != "" {
		return fmt.Errorf("%w: %s", ErrReinitRefused, why)
	}
	for _, label := range opts.Methods {
		if config.PluginNameFor(n.Config.Method(label), n.plugins().Has) == "" {
			return fmt.Errorf("%w: method %q is neither configured nor an installed plugin", ErrReinitRefused, label)
		}
	}
	return nil
}

// Reinit replaces this member's data directory with a new clone, as `patronictl reinit` does:
// after [Node.CheckReinit] passes it stops PostgreSQL, empties the data directory, removes the
// needs-reinit mark and clones from the source cl offers with opts.Methods or the configured
// chain. The caller holds the data directory's lock (no agent runs for the member).
func (n *Node) Reinit(ctx context.Context, cl dcs.Cluster, opts ReinitOptions) (CloneResult, error) {
	if err := n.CheckReinit(ctx, cl, opts); err != nil {
		return CloneResult{}, err
	}
	log := n.logger()
	want, err := strconv.ParseUint(cl.SystemIdentifier(), 10, 64)
	if err != nil {
		return CloneResult{}, fmt.Errorf("%w: the DCS initialize key holds %q, not a system identifier", ErrReinitRefused, cl.SystemIdentifier())
	}
	src := CloneSource(n, cl)
	if src == nil && !Runnable(PlanChain(n.chainInput(opts.Methods, false))) {
		return CloneResult{}, fmt.Errorf("while looking for a source to re-clone from: no member runs and no replica method sets no_master; the data directory is left as it is")
	}
	srv, err := n.server()
	if err != nil {
		return CloneResult{}, fmt.Errorf("postgresql.listen: %w", err)
	}
	if err := n.emptyOwnDir(ctx, srv, "reinit"); err != nil {
		return CloneResult{}, err
	}
	methods := opts.Methods
	if len(methods) == 0 {
		methods = n.ReplicaMethods()
	}
	log.Info("reinit: creating the replica", "source", src.Describe(), "methods", methods)
	return n.Clone(ctx, CloneOptions{Source: src, ExpectSystemID: want, Methods: opts.Methods})
}

// emptyOwnDir stops PostgreSQL and empties the member's own data directory (and its WAL
// directory) for what (a reinit, or a re-image), and removes the marks kept beside it.
func (n *Node) emptyOwnDir(ctx context.Context, srv *pg.Server, what string) error {
	log := n.logger()
	if _, running := srv.Running(); running {
		log.Info(what + ": stopping PostgreSQL (fast)")
		if err := srv.Stop(ctx, "fast"); err != nil && !errors.Is(err, pg.ErrNotRunning) {
			return fmt.Errorf("while stopping PostgreSQL before the %s: %w", what, err)
		}
	}
	if err := n.emptyLinkedWalDir(); err != nil {
		return fmt.Errorf("while emptying the WAL directory of %q for the %s: %w", n.Config.DataDir, what, err)
	}
	log.Warn(what+": emptying the data directory", "data_dir", n.Config.DataDir)
	if err := pg.EmptyDir(n.Config.DataDir); err != nil {
		return fmt.Errorf("while emptying data directory %q for the %s: %w", n.Config.DataDir, what, err)
	}
	n.ClearIncomplete()
	n.clearNeedsReinit()
	n.markLed(false)
	return nil
}

// ReinitRequest is an operator's request to re-clone a member, kept in the DCS under
// [dcs.ReinitKeyDir]<member> until the member's agent has carried it out.
type ReinitRequest struct {
	// Methods are the replica methods to clone with; empty: the configured chain.
	Methods []string `json:"methods,omitempty"`
	// By says who asked (user and host, or the API client).
	By string    `json:"by,omitempty"`
	At time.Time `json:"at"`
}

// ReinitKey is the DCS key of member's reinit request.
func ReinitKey(member string) string { return dcs.ReinitKeyDir + member }

// RequestReinit asks member's agent, through the DCS st, to re-clone it. The agent refuses
// (and drops the request, reporting why in its last error) on the leader, on a primary and on
// another cluster's directory. `pgimaged reinit` and the API's POST /reinit call it.
func RequestReinit(ctx context.Context, st dcs.Store, member string, req ReinitRequest) error {
	if req.At.IsZero() {
		req.At = time.Now().UTC()
	}
	b, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("while requesting a reinit of %s: %w", member, err)
	}
	if err := st.Put(ctx, ReinitKey(member), b); err != nil {
		return fmt.Errorf("while requesting a reinit of %s: %w", member, err)
	}
	return nil
}

// PendingReinit reads member's pending reinit request from st; nil when there is none.
func PendingReinit(ctx context.Context, st dcs.Store, member string) (*ReinitRequest, error) {
	b, ok, err := st.Get(ctx, ReinitKey(member))
	if err != nil || !ok {
		return nil, err
	}
	var req ReinitRequest
	if err := json.Unmarshal(b, &req); err != nil {
		return &ReinitRequest{By: "(unreadable request: " + err.Error() + ")"}, nil
	}
	return &req, nil
}

// RequestReinit asks this agent to re-clone its member, as [RequestReinit] does through the
// DCS; the agent's next cycle carries it out. For the API's POST /reinit.
func (a *Agent) RequestReinit(ctx context.Context, req ReinitRequest) error {
	st, err := a.Open(ctx)
	if err != nil {
		return fmt.Errorf("while requesting a reinit: %w", err)
	}
	defer st.Close()
	return RequestReinit(ctx, st, a.ConfigInUse().Name, req)
}

// endReinit removes this member's reinit request once its outcome is published.
func (a *Agent) endReinit(ctx context.Context) {
	if err := a.store.Delete(ctx, ReinitKey(a.Node.Config.Name)); err != nil {
		a.Node.logger().Warn("could not remove the reinit request", "error", err)
	}
}
