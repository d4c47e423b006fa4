package engine

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/pgimaged/pgimaged/core/dcs"
	"github.com/pgimaged/pgimaged/core/pg"
)

// The standby leader of a standby cluster (the standby_cluster block): the member that leads
// the cluster while it is itself a standby of the remote primary (or of an archive). It is
// made from the remote instead of bootstrapped, holds the leader key as role standby_leader
// and is never promoted; the other members clone from it and stream from it.

// CloneRemote makes the standby leader while this session holds initialize: the
// standby_cluster block's create_replica_methods copy the remote ([RemoteSource]; none for an
// archive alone) into the empty data directory, standby settings toward the remote with the
// block's recovery settings are written and it is started in recovery. A lost session cancels
// it. Result: SysID (the remote's), Attempts, Err.
type CloneRemote struct{}

func (CloneRemote) Awaited() bool { return true }

// observeStandby adds whether the cluster is a standby cluster and whether the data
// directory's standby settings follow its remote.
func (n *Node) observeStandby(obs *Observation) {
	if n.Config.StandbyCluster == nil {
		return
	}
	obs.StandbyCluster = true
	if obs.DataDir != DirCluster {
		return
	}
	following := ""
	if settings, err := pg.ReadRecovery(n.Config.DataDir); err == nil {
		following = followedHostPort(settings["primary_conninfo"])
	}
	remote := ""
	if src := RemoteSource(n); src != nil {
		remote = hostPort(src.Conn.Conninfo())
	}
	obs.FollowsRemote = following == remote
}

// passfileKey is a passfile setting in a keyword/value connection string.
var passfileKey = regexp.MustCompile(`(^|\s)passfile\s*=\s*('(?:[^'\\]|\\.)*'|\S+)`)

// followedHostPort is the host:port primary_conninfo (as pgimaged writes it, with a passfile,
// which pgimaged never passes on) names; "" for none.
func followedHostPort(conninfo string) string {
	if strings.TrimSpace(conninfo) == "" {
		return ""
	}
	return hostPort(passfileKey.ReplaceAllString(conninfo, "$1"))
}

// standbyLeaderBootstrap is the decision of an empty member of a standby cluster without
// initialize: it races for initialize and, if it wins, clones the standby leader from the
// remote.
func standbyLeaderBootstrap() Action {
	return Action{Kind: ActBootstrap, State: dcs.StateBootstrapping, StandbyLeader: true,
		Reason: "no initialize key in a standby cluster: this node races for it and, if it wins, clones the standby leader from the remote (nothing is bootstrapped)"}
}

// standbyLeads is the decision for a standby directory (standby: it has standby settings) of
// a standby cluster that leads it: the member holds the leader key, or no member does and the
// directory follows the remote. It takes (or keeps) the key as the standby leader and runs as
// a standby of the remote: it is never promoted, and never re-pointed at a member. false: the
// usual decision stands.
func standbyLeads(obs Observation, act Action, standby bool) (Action, bool) {
	cl := obs.Cluster
	if !obs.StandbyCluster || !standby {
		return act, false
	}
	switch {
	case cl.Leader == obs.Member:
		act.Reason = "this member leads the standby cluster: it keeps the leader key as the standby leader and follows the remote"
	case cl.Leader == "" && obs.FollowsRemote && !cl.Bootstrapping() && changeFor(obs) == "":
		act.Reason = "no member leads the standby cluster and this standby follows the remote: it takes the leader key as the standby leader (nothing is promoted)"
	default:
		return act, false
	}
	act.Kind, act.StandbyLeader, act.Primary = ActAdopt, true, false
	act.ClaimInitialize = cl.Initialize == nil
	act.Start, act.State = KeepRunning, dcs.StateRunning
	if obs.PostgreSQL == PGStopped {
		act.Start, act.State = StartStandby, dcs.StateStarting
	}
	return act, true
}

// cloneRemote carries out [CloneRemote].
func (a *Agent) cloneRemote(ctx context.Context) Result {
	n := a.Node
	sc := n.Config.StandbyCluster
	if sc == nil {
		return Result{Err: errors.New("the configuration has no standby_cluster block")}
	}
	if !alive(a.store) {
		return Result{Err: fmt.Errorf("before cloning the standby leader: %w", dcs.ErrSessionLost)}
	}
	lost := a.store.Lost()
	cctx, tl := n.withTimeline(ctx, dcs.PathClone)
	tl.prepend(a.started)
	tl.since(PhaseInitialize, a.tryingAt)
	cctx, cancel := context.WithCancel(cctx)
	defer cancel()
	go func() {
		select {
		case <-lost:
			n.logger().Error("DCS session lost while cloning the standby leader; abandoning it")
			cancel()
		case <-cctx.Done():
		}
	}()
	src := RemoteSource(n)
	n.logger().Info("creating the standby leader from the remote", "source", src.Describe(), "methods", sc.CreateReplicaMethods)
	res, err := n.Clone(cctx, CloneOptions{Source: src, Methods: sc.CreateReplicaMethods, Recovery: sc.RecoverySettings()})
	a.run.tl, a.run.done = tl, time.Now()
	a.unsave(res.Chain.Attempts...)
	out := Result{Err: err, Attempts: res.Chain.Attempts}
	if err == nil {
		out.SysID = strconv.FormatUint(res.SystemIdentifier, 10)
	}
	return out
}

// leaderRole is the role of the member that holds the leader key carrying out act.
func leaderRole(act Action) string {
	if act.StandbyLeader {
		return dcs.RoleStandbyLeader
	}
	return dcs.RolePrimary
}

// planStandbyLeader fills p with the clone that makes the standby leader: from the remote,
// with standby_cluster's create_replica_methods.
func (n *Node) planStandbyLeader(ctx context.Context, p *Plan) {
	src := RemoteSource(n)
	p.Source, p.SourceWhy = src.Describe(), "the remote primary of the standby cluster (standby_cluster)"
	if src == nil {
		p.SourceWhy = "none: the standby cluster follows an archive (standby_cluster has no host)"
	}
	p.Methods = n.planClone(ctx, src, n.Config.StandbyCluster.CreateReplicaMethods)
}
