package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

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
	if n.standbyBlock() == nil {
		return
	}
	obs.StandbyCluster = true
	if obs.DataDir != DirCluster {
		return
	}
	following := ""
	if settings, err := pg.ReadRecovery(n.Config.DataDir); err == nil {
		following = namedServers(settings["primary_conninfo"])
	}
	remote := ""
	if src := RemoteSource(n); src != nil {
		remote = namedServers(src.Conn.Conninfo())
	}
	obs.FollowsRemote = following == remote
}

// hostKey and portKey are the host and port settings of a keyword/value connection string.
var (
	hostKey = regexp.MustCompile(`(?:^|\s)host\s*=\s*('(?:[^'\\]|\\.)*'|\S+)`)
	portKey = regexp.MustCompile(`(?:^|\s)port\s*=\s*('(?:[^'\\]|\\.)*'|\S+)`)
)

// namedServers is the servers a keyword/value connection string (as pgimaged writes it) names,
// its host and port settings as written — one host or several in libpq's form ("a,b" with
// "5432,5433") — so that two strings naming the same remote compare equal; "" for none.
func namedServers(conninfo string) string {
	setting := func(re *regexp.Regexp) string {
		if m := re.FindStringSubmatch(conninfo); m != nil {
			return strings.Trim(m[1], "'")
		}
		return ""
	}
	host := setting(hostKey)
	if host == "" {
		return ""
	}
	return host + " " + setting(portKey)
}

// passfileKey is a passfile setting in a keyword/value connection string.
var passfileKey = regexp.MustCompile(`(^|\s)passfile\s*=\s*('(?:[^'\\]|\\.)*'|\S+)`)

// followedHostPort is the host:port primary_conninfo (as pgimaged writes it, with a passfile,
// which pgimaged never passes on) names; "" for none. A remote of several hosts (a standby
// leader's) is its hosts and ports as written, which no member's host:port equals.
func followedHostPort(conninfo string) string {
	if strings.TrimSpace(conninfo) == "" {
		return ""
	}
	if hp := hostPort(passfileKey.ReplaceAllString(conninfo, "$1")); hp != "" {
		return hp
	}
	return namedServers(conninfo)
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
	case cl.Leader == "" && promotionElsewhere(obs):
		// That member may already run a primary that the others followed onto its timeline:
		// none of them goes back to the remote; it finishes the promotion when it is back.
		return act, false
	case cl.Leader == "" && obs.StandbyRecord != nil && obs.StandbyRecord.Phase == StandbyFollowAsked:
		// `standby follow` asked its primary to become the standby leader: the others hold
		// the cluster's own WAL, not yet the remote's.
		return act, false
	case cl.Leader == "" && pastRemoteFork(obs) != "":
		// A copy of this cluster's own WAL after its promotion, which `standby follow` left
		// behind: it cannot follow the remote, and never leads the standby cluster.
		return act, false
	case cl.Leader == "" && obs.FollowsRemote && !cl.Bootstrapping() && changeFor(obs) == "":
		act.Reason = "no member leads the standby cluster and this standby follows the remote: it takes the leader key as the standby leader (nothing is promoted)"
	case cl.Leader == "" && obs.LeaderGone && cl.Initialize != nil && !cl.Bootstrapping() && changeFor(obs) == "":
		// The standby leader's agent is gone: this standby, a copy of the remote like it,
		// follows the remote itself. Nothing is promoted, so this is no failover; the key's
		// compare-and-swap keeps it to one standby leader.
		act.Reason = "no member has led the standby cluster for a ttl: this standby takes the leader key as the standby leader and follows the remote itself (nothing is promoted)"
	default:
		return act, false
	}
	act.FollowRemote = !obs.FollowsRemote
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
	sc := n.standbyBlock()
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
	// A remote that does not answer is left to the methods, which say why as libpq does.
	if v, err := remoteVersion(cctx, src); err == nil {
		if err := RemoteVersionRefusal(v, n.ServerVersion()); err != nil { // standby_follow.go
			return Result{Err: err}
		}
	}
	if err := checkRemoteSlot(cctx, src, sc.PrimarySlotName); err != nil {
		return Result{Err: err}
	}
	n.logger().Info("creating the standby leader from the remote", "source", src.Describe(), "methods", sc.CreateReplicaMethods)
	res, err := n.Clone(cctx, CloneOptions{Source: src, StandbyLeader: true, Recovery: sc.RecoverySettings()})
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
	p.Methods = n.planChain(ctx, src, n.standbyChainInput(src != nil))
}

// leaderGone is [Observation.LeaderGone] for this cycle, and when the leader key was first seen
// free (zero while a member holds it).
func leaderGone(s State, obs Observation) (since time.Time, gone bool) {
	if obs.Cluster == nil || obs.Cluster.Leader != "" {
		return time.Time{}, false
	}
	since = s.Leaderless
	if since.IsZero() || obs.Now.Before(since) {
		since = obs.Now
	}
	grace := s.TTL
	if grace <= 0 {
		grace = 3 * s.LoopWait
	}
	return since, obs.Now.Sub(since) >= grace
}

// FollowRemote rewrites the standby settings of the member that just took the leader key of a
// standby cluster so that it follows the remote (primary_conninfo toward it with the
// replication role, and standby_cluster's recovery settings; none for an archive alone),
// replacing those that followed a member. Reload: PostgreSQL runs and is reloaded to apply
// them. Result: Err.
type FollowRemote struct{ Reload bool }

func (FollowRemote) Awaited() bool { return true }

// awaitFollowRemote is where Step goes on after [FollowRemote].
const awaitFollowRemote awaitPoint = 200

// followRemote re-points the new standby leader at the remote before it runs as the leader.
func (p *stepper) followRemote() (State, []Effect) {
	p.log("warn", "this standby leads the standby cluster now: re-pointing it at the remote")
	return p.await(awaitFollowRemote, FollowRemote{Reload: p.s.act.Start == KeepRunning})
}

// resumeStandby goes on after an effect of this file; false: at is not one of its.
func (p *stepper) resumeStandby(at awaitPoint, res Result) (State, []Effect, bool) {
	if at != awaitFollowRemote {
		return State{}, nil, false
	}
	if res.Err != nil {
		st, effs := p.failed(fmt.Errorf("re-pointing the standby leader at the remote: %w", res.Err))
		return st, effs, true
	}
	st, effs := p.startPG()
	return st, effs, true
}

// followRemote carries out [FollowRemote]: the standby settings toward the remote, with the
// block's slot, archive commands and delay in place of whatever followed a member.
func (n *Node) followRemote(ctx context.Context, srv *pg.Server, e FollowRemote) error {
	settings, err := pg.ReadRecovery(n.Config.DataDir)
	if err != nil {
		return err
	}
	for _, k := range []string{"primary_conninfo", "primary_slot_name", "restore_command", "archive_cleanup_command", "recovery_min_apply_delay"} {
		delete(settings, k)
	}
	maps.Copy(settings, n.standbyBlock().RecoverySettings())
	if err := n.writeStandby(RemoteSource(n), nil, settings, false); err != nil {
		return err
	}
	if !e.Reload {
		return nil
	}
	return srv.Reload(ctx)
}

// ErrRemoteSlot: the slot standby_cluster names does not exist on the remote.
var ErrRemoteSlot = errors.New("the replication slot does not exist on the remote")

// checkRemoteSlot makes sure, before anything is copied, that the slot the standby leader is to
// stream from exists on the remote (READ_REPLICATION_SLOT, PostgreSQL 15 and later; an older
// remote is not asked, and PostgreSQL's walreceiver names the slot in its log instead). No
// slot, or no remote host: nothing to check.
func checkRemoteSlot(ctx context.Context, src *Source, slot string) error {
	if src == nil || slot == "" {
		return nil
	}
	row, err := replicationCommand(ctx, src, "READ_REPLICATION_SLOT "+slot)
	var pe *pgconn.PgError
	switch {
	case errors.As(err, &pe) && pe.Code == "42601": // a syntax error: a server before 15
		return nil
	case err != nil:
		return fmt.Errorf("while checking the slot %q on the remote: %w", slot, err)
	case len(row) == 0 || row[0] == nil:
		return fmt.Errorf("%w: standby_cluster.primary_slot_name is %q, which the remote %s does not have: create it there (SELECT pg_create_physical_replication_slot('%s')), or remove primary_slot_name",
			ErrRemoteSlot, slot, src.Describe(), slot)
	}
	return nil
}

// promotionElsewhere reports whether an operator asked to promote another member of the
// standby cluster and the promotion is not recorded as done.
func promotionElsewhere(obs Observation) bool {
	r := obs.StandbyRecord
	return r != nil && r.Phase == StandbyPromoting && r.Leader != obs.Member
}
