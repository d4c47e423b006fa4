package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgimaged/pgimaged/core/config"
	"github.com/pgimaged/pgimaged/core/dcs"
	"github.com/pgimaged/pgimaged/core/pg"
)

// Turning a cluster into a standby cluster of another (`pgimaged standby follow`, the API's
// POST /standby/follow): the reverse of a promotion. The operator's request, with the
// standby_cluster block naming the cluster to follow, is recorded under [StandbyKey] by
// compare-and-swap; the leader's agent stops its primary, rewinds it toward the remote with the
// rejoin methods (pg_rewind) — or, where rejoin = "reimage" allows it and the rewind failed,
// re-clones it with the block's create_replica_methods — starts it as a standby of the remote,
// keeps the leader key as the standby leader, records the remote's timeline switch in the
// cluster history and marks the record following. The other members follow it as before; one
// whose WAL went past the point where the remote's timeline began rejoins it with the rejoin
// methods.
//
// From then on the DCS, not the configuration, says that the cluster is a standby cluster and
// of which remote, as Patroni's dynamic configuration does: the record's block is the one every
// member uses, also a member whose configuration has none (it says so at start and in status).
// A standby leader made from its configuration's block records it too, for the members without
// one; there a member's own block still wins.

// The phases of a standby cluster as the DCS records it beside [StandbyPromoting] and
// [StandbyPromoted].
const (
	// StandbyFollowAsked: an operator asked the cluster's primary to follow the record's remote.
	StandbyFollowAsked StandbyPhase = "follow"
	// StandbyFollowing: the cluster is a standby cluster of the record's remote.
	StandbyFollowing StandbyPhase = "following"
)

// RemoteBlock is a standby_cluster block as the DCS keeps it (Patroni's keys).
type RemoteBlock struct {
	Host                  string   `json:"host,omitempty"`
	Ports                 []int    `json:"port,omitempty"`
	PrimarySlotName       string   `json:"primary_slot_name,omitempty"`
	CreateReplicaMethods  []string `json:"create_replica_methods,omitempty"`
	RestoreCommand        string   `json:"restore_command,omitempty"`
	ArchiveCleanupCommand string   `json:"archive_cleanup_command,omitempty"`
	// RecoveryMinApplyDelay is in milliseconds.
	RecoveryMinApplyDelay int64 `json:"recovery_min_apply_delay,omitempty"`
}

// BlockOf is sc as the DCS keeps it; nil for nil.
func BlockOf(sc *config.StandbyCluster) *RemoteBlock {
	if sc == nil {
		return nil
	}
	return &RemoteBlock{Host: sc.Host, Ports: slices.Clone(sc.Ports), PrimarySlotName: sc.PrimarySlotName,
		CreateReplicaMethods: slices.Clone(sc.CreateReplicaMethods), RestoreCommand: sc.RestoreCommand,
		ArchiveCleanupCommand: sc.ArchiveCleanupCommand, RecoveryMinApplyDelay: sc.RecoveryMinApplyDelay.Milliseconds()}
}

// Block is the standby_cluster block b keeps; nil for nil.
func (b *RemoteBlock) Block() *config.StandbyCluster {
	if b == nil {
		return nil
	}
	methods := slices.Clone(b.CreateReplicaMethods)
	if len(methods) == 0 {
		methods = []string{config.DefaultReplicaMethod}
	}
	return &config.StandbyCluster{Host: b.Host, Ports: slices.Clone(b.Ports), PrimarySlotName: b.PrimarySlotName,
		CreateReplicaMethods: methods, RestoreCommand: b.RestoreCommand, ArchiveCleanupCommand: b.ArchiveCleanupCommand,
		RecoveryMinApplyDelay: time.Duration(b.RecoveryMinApplyDelay) * time.Millisecond}
}

// Describe names the remote: its connection without credentials, or the archive.
func (b *RemoteBlock) Describe() string {
	if r := b.Block().Remote(); r != nil {
		return r.DSN()
	}
	return "an archive (restore_command)"
}

// sameBlock reports whether two blocks say the same (their places in a file aside).
func sameBlock(a, b *config.StandbyCluster) bool {
	ja, _ := json.Marshal(BlockOf(a))
	jb, _ := json.Marshal(BlockOf(b))
	return string(ja) == string(jb)
}

// standbyView is the standby_cluster block in force for a node: the DCS's record decides once
// read ([Node.UseStandbyRecord]); before, the configuration's.
type standbyView struct {
	mu    sync.Mutex
	set   bool
	block *config.StandbyCluster
}

// standbyBlock is the standby_cluster block in force: the DCS record's, else the
// configuration's; nil when the cluster is not (or no longer) a standby cluster.
func (n *Node) standbyBlock() *config.StandbyCluster {
	n.standby.mu.Lock()
	defer n.standby.mu.Unlock()
	if n.standby.set {
		return n.standby.block
	}
	return n.Config.StandbyCluster
}

// UseStandbyRecord makes the DCS's record r decide whether the cluster is a standby cluster,
// and of which remote: promoted, it is not, whatever the configuration says; a record that
// carries a block, that block — but for one recorded from the standby leader's file
// ([StandbyRecord.FromFile]), which a member's own block wins over; none (nil, or a record
// without a block), the configuration's.
func (n *Node) UseStandbyRecord(r *StandbyRecord) {
	n.standby.mu.Lock()
	defer n.standby.mu.Unlock()
	switch {
	case r != nil && r.Phase == StandbyPromoted:
		n.standby.set, n.standby.block = true, nil
	case r != nil && r.Remote != nil && (!r.FromFile || n.Config.StandbyCluster == nil):
		n.standby.set, n.standby.block = true, r.Remote.Block()
	default:
		n.standby.set, n.standby.block = false, nil
	}
}

// StandbyNote says how the DCS's record r stands to this configuration's standby_cluster block,
// "" when they agree (or neither says anything): for the log at start, status and plan.
func StandbyNote(cfg *config.StandbyCluster, r *StandbyRecord) string {
	switch {
	case r == nil:
		return ""
	case r.Phase == StandbyPromoted && cfg != nil:
		return "the standby_cluster block of this configuration is ignored: the DCS records that the cluster was promoted (" + r.Describe() + ")"
	case r.Remote == nil || r.Phase == StandbyPromoted:
		return ""
	case cfg == nil:
		return "this configuration has no standby_cluster block, but the DCS records that the cluster is a standby cluster of " + r.Remote.Describe() + ": that block is used"
	case !r.FromFile && !sameBlock(cfg, r.Remote.Block()):
		return "the standby_cluster block of this configuration differs from the DCS's, which is used: " + r.Remote.Describe() + " (" + r.Remote.Block().Describe() + ")"
	}
	return ""
}

// ErrCannotFollow: the cluster cannot be turned into a standby cluster now.
var ErrCannotFollow = errors.New("the cluster cannot follow a remote")

// RequestStandbyFollow records that the cluster's primary, which cl must show running as the
// leader, is to follow the remote sc names as the standby leader of a standby cluster. Refused
// ([ErrCannotFollow]) without a block or a running primary; ([ErrChangePending]) while a change
// of primary is pending or the DCS records the cluster as a standby cluster (or being made, or
// promoted, one); a record of an earlier promotion gives way.
func RequestStandbyFollow(ctx context.Context, st dcs.Store, cl dcs.Cluster, sc *config.StandbyCluster, by string) (StandbyRecord, error) {
	if sc == nil {
		return StandbyRecord{}, fmt.Errorf("%w: the configuration has no standby_cluster block naming the cluster to follow", ErrCannotFollow)
	}
	lm, ok := cl.LeaderMember()
	switch {
	case !ok:
		return StandbyRecord{}, fmt.Errorf("%w: no member holds the leader key", ErrCannotFollow)
	case lm.Role == dcs.RoleStandbyLeader:
		return StandbyRecord{}, fmt.Errorf("%w: the cluster is a standby cluster already (its standby leader is %s)", ErrCannotFollow, lm.Name)
	case !lm.IsPrimary() || !lm.IsRunning():
		return StandbyRecord{}, fmt.Errorf("%w: the leader %s is %s as %s, not a running primary", ErrCannotFollow, lm.Name, lm.State, lm.Role)
	}
	cur, err := standbyRecordUnlessChange(ctx, st)
	if err != nil {
		return StandbyRecord{}, err
	}
	var old []byte
	if cur != nil {
		if cur.Phase != StandbyPromoted {
			return StandbyRecord{}, fmt.Errorf("%w: %s", ErrChangePending, cur.Describe())
		}
		old = cur.raw
	}
	return writeStandbyRecord(ctx, st, old, StandbyRecord{Phase: StandbyFollowAsked, Leader: lm.Name, By: by, At: time.Now().UTC(), Remote: BlockOf(sc)})
}

// AwaitStandbyFollow waits until the record says following and its standby leader publishes
// itself running as standby_leader. An attempt that failed on the leader (published failed
// with its reason, after the request) ends the wait with that reason; the agent tries again.
func AwaitStandbyFollow(ctx context.Context, st dcs.Store, poll time.Duration) (*StandbyRecord, error) {
	for {
		r, err := ReadStandby(ctx, st)
		if err == nil && r != nil {
			cl, cerr := st.Cluster(ctx)
			lm, ok := cl.LeaderMember()
			switch {
			case cerr != nil || !ok || lm.Name != r.Leader:
			case r.Phase == StandbyFollowing && lm.Role == dcs.RoleStandbyLeader && lm.IsRunning():
				return r, nil
			case r.Phase == StandbyFollowAsked && lm.State == dcs.StateFailed && lm.PGImaged != nil && strings.Contains(lm.PGImaged.LastError, "following the remote"):
				return r, fmt.Errorf("%s: %s (its agent tries again)", lm.Name, lm.PGImaged.LastError)
			}
		}
		select {
		case <-ctx.Done():
			return r, fmt.Errorf("waiting for the leader to follow the remote: %w", ctx.Err())
		case <-time.After(poll):
		}
	}
}

// ActFollowStandby: the primary of a cluster asked to follow a remote becomes its standby
// leader.
const ActFollowStandby ActionKind = "follow remote"

// FollowStandby carries `standby follow` out on the cluster's leader: with the leader key held,
// it checks the remote (its system identifier is the cluster's, its major version the local
// binaries', the slot exists), stops PostgreSQL, rewinds the data directory toward the remote
// with the rejoin Methods — else, when Reimage, re-clones it with the record's
// create_replica_methods — starts it as a standby of the remote, records the remote's timeline
// switch in the cluster history and marks the record following. Result: Err, Attempts.
type FollowStandby struct {
	Record  *StandbyRecord
	Methods []string
	Reimage bool
}

func (FollowStandby) Awaited() bool { return true }

const awaitFollowStandby awaitPoint = 202

// decideStandbyFollow is the decision of the member asked to follow the remote; false: the
// usual decision stands.
func decideStandbyFollow(obs Observation) (Action, bool) {
	r, cl := obs.StandbyRecord, obs.Cluster
	if r == nil || r.Phase != StandbyFollowAsked || cl == nil || r.Leader != obs.Member ||
		cl.Leader != obs.Member && cl.Leader != "" || obs.DataDir != DirCluster || obs.ControlError != nil {
		return Action{}, false
	}
	own := strconv.FormatUint(obs.Control.SystemIdentifier, 10)
	if id := cl.SystemIdentifier(); id != "" && id != own {
		return Action{}, false // refused by the usual decision
	}
	how := "rewound toward it with " + strings.Join(obs.RejoinMethods, ", ")
	switch {
	case len(obs.RejoinMethods) == 0 && obs.Reimage:
		how = "re-cloned from it with standby_cluster's create_replica_methods (no rejoin method; rejoin = \"reimage\")"
	case len(obs.RejoinMethods) == 0:
		how = "rewound toward it, but no rejoin method can run and rejoin is not \"reimage\": the follow fails until one can"
	case obs.Reimage:
		how += ", else re-cloned from it (rejoin = \"reimage\")"
	}
	return Action{Kind: ActFollowStandby, State: StateRejoining, SystemIdentifier: own, StandbyLeader: true,
		Reason: fmt.Sprintf("an operator asked this cluster to follow %s as a standby cluster: this member's primary is stopped, %s, and leads as the standby leader", r.Remote.Describe(), how)}, true
}

// standbyFollowDiverged is the decision of a standby of a cluster that followed a remote whose
// WAL went past the point where the remote's timeline began (what its old primary wrote after
// the remote forked): it cannot follow the standby leader onto that timeline and rejoins it.
// Only a standby whose WAL receiver does not stream is read this way (one that streams is on
// the timeline it receives). false: the usual decision stands.
func standbyFollowDiverged(obs Observation) (Action, bool) {
	r, cl, w := obs.StandbyRecord, obs.Cluster, obs.WAL
	if r == nil || r.Phase != StandbyFollowing || r.Timeline <= 0 || cl == nil || cl.Leader == obs.Member ||
		obs.PostgreSQL != PGStandby || obs.DataDir != DirCluster || w == nil || w.Receiving {
		return Action{}, false
	}
	lm, ok := cl.LeaderMember()
	why, other := "", otherTimelineOfTheNumber(r, w.Timeline, obs.TimelineBegan, w.Newest())
	switch {
	case ok && lm.IsRunning() && lm.Timeline > 0 && w.Timeline > lm.Timeline:
		// Its own timeline, which the remote never had (the cluster followed a remote on an
		// older one): the standby leader cannot serve it.
		why = fmt.Sprintf("the standby is on timeline %d, which its standby leader %s (on timeline %d, following %s) does not have", w.Timeline, lm.Name, lm.Timeline, r.Remote.Describe())
	case w.Timeline < r.Timeline && uint64(w.Newest()) > r.SwitchLSN:
		why = fmt.Sprintf("the standby's WAL of timeline %d reaches %s, past the point %s where the cluster's WAL and the remote's (timeline %d) went apart (the cluster follows %s)",
			w.Timeline, w.Newest(), pg.LSN(r.SwitchLSN), r.Timeline, r.Remote.Describe())
	case other != "":
		why = other + " (the cluster follows " + r.Remote.Describe() + ")"
	default:
		return Action{}, false
	}
	act := Action{Kind: ActAdopt, SystemIdentifier: strconv.FormatUint(obs.Control.SystemIdentifier, 10), Start: KeepRunning, State: dcs.StateRunning}
	a, ok := rejoinAction(obs, act, why)
	a.Stop = true
	return a, ok
}

// pastRemoteFork says why the directory cannot follow the remote that `standby follow` made the
// cluster follow — its WAL went past the point where the remote's timeline began, or it is on
// a newer timeline than the remote was then — "" when nothing says so (or the cluster was not
// made to follow by `standby follow`).
func pastRemoteFork(obs Observation) string {
	r := obs.StandbyRecord
	if r == nil || r.Phase != StandbyFollowing || r.Timeline <= 0 || obs.DataDir != DirCluster {
		return ""
	}
	tl, end := ownTimeline(obs), max(obs.Control.Checkpoint, obs.Control.MinRecoveryPoint)
	if obs.WAL != nil {
		end = obs.WAL.Newest()
	}
	switch {
	case tl > r.Timeline:
		return fmt.Sprintf("the data directory is on timeline %d, newer than the remote's %d when the cluster began to follow it", tl, r.Timeline)
	case tl < r.Timeline && uint64(end) > r.SwitchLSN:
		return fmt.Sprintf("the data directory's WAL of timeline %d reaches %s, past the point %s where the cluster's WAL and the remote's (timeline %d) went apart", tl, end, pg.LSN(r.SwitchLSN), r.Timeline)
	}
	return otherTimelineOfTheNumber(r, tl, obs.TimelineBegan, end)
}

// otherTimelineOfTheNumber says why a directory on timeline tl, which began at began and whose
// WAL reaches end, holds WAL the remote never had although the number is the remote's that the
// record r followed: the cluster, promoted before, took that number too (a promotion takes the
// next number it knows of) and began it elsewhere, and the WAL goes past the fork. "" when
// nothing says so.
func otherTimelineOfTheNumber(r *StandbyRecord, tl int, began, end pg.LSN) string {
	if tl != r.Timeline || r.TimelineBegan == 0 || began == 0 || uint64(began) == r.TimelineBegan || uint64(end) <= r.SwitchLSN {
		return ""
	}
	return fmt.Sprintf("the data directory's timeline %d began at %s, not where the remote's timeline %d began (%s): the cluster's own promotion began one of the same number, and its WAL reaches %s, past the point %s where the cluster's WAL and the remote's went apart",
		tl, began, r.Timeline, pg.LSN(r.TimelineBegan), end, pg.LSN(r.SwitchLSN))
}

// followStandby starts [FollowStandby].
func (p *stepper) followStandby(act Action, obs Observation) (State, []Effect) {
	r := obs.StandbyRecord
	p.log("warn", "following the remote as a standby cluster: this primary stops and becomes the standby leader", "remote", r.Remote.Describe(), "by", r.By)
	p.s.Role = dcs.RoleStandbyLeader
	p.s.setStatus(StateRejoining, nil)
	p.publish()
	return p.await(awaitFollowStandby, FollowStandby{Record: r, Methods: obs.RejoinMethods, Reimage: obs.Reimage})
}

// resumeFollowStandby goes on after [FollowStandby].
func (p *stepper) resumeFollowStandby(res Result) (State, []Effect) {
	p.s.record(res.Attempts...)
	if res.Err != nil {
		p.log("error", "following the remote failed; it is tried again", "error", res.Err)
		return p.failed(fmt.Errorf("following the remote: %w", res.Err))
	}
	p.do(Mark{Kind: MarkLed}, Mark{Kind: MarkNeedsReinit})
	p.s.act = Action{Kind: ActAdopt, StandbyLeader: true, Start: KeepRunning}
	p.s.Role, p.s.Status, p.s.LastErr, p.s.Fenced, p.s.Failures = dcs.RoleStandbyLeader, dcs.StateRunning, "", "", 0
	p.log("info", "the cluster is a standby cluster now: this member is its standby leader and follows the remote")
	p.publish()
	return p.wait(p.s.LoopWait)
}

// followStandby carries out [FollowStandby].
func (a *Agent) followStandby(ctx context.Context, e FollowStandby) Result {
	n := a.Node
	log := n.logger()
	sc := e.Record.Remote.Block()
	remote := sc.Remote()
	if remote == nil {
		return Result{Err: errors.New("standby_cluster names no host: a cluster follows an archive alone only by a new clone (pgimaged reinit of each member, after promoting none)")}
	}
	src := replicationSource(n, "", *remote)
	held, err := a.store.AcquireLeader(ctx, n.Config.Name)
	if err != nil {
		return Result{Err: err}
	}
	if !held {
		return Result{Err: errors.New("the leader key is held by another member")}
	}
	want := a.cl.SystemIdentifier()
	if err := checkRemote(ctx, src, want, n.ServerVersion()); err != nil {
		return Result{Err: err}
	}
	if err := checkRemoteSlot(ctx, src, sc.PrimarySlotName); err != nil {
		return Result{Err: err}
	}
	sw, starts, err := remoteSwitch(ctx, src)
	if err != nil {
		return Result{Err: err}
	}
	own, err := a.store.History(ctx)
	if err != nil {
		return Result{Err: err}
	}
	fork := ForkPoint(own, sw, starts)
	var atts []dcs.Attempt
	if !a.followsRemoteNow(ctx, sc) {
		if _, running := a.srv.Running(); running {
			// At once: what it wrote after the remote forked is rewound away, and its standbys
			// get no shutdown checkpoint past that point.
			log.Warn("standby follow: stopping the primary", "mode", "immediate")
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			err := a.srv.Stop(sctx, "immediate")
			cancel()
			if err != nil && !errors.Is(err, pg.ErrNotRunning) {
				return Result{Err: fmt.Errorf("while stopping PostgreSQL before following the remote: %w", err)}
			}
		}
		a.setPG(nil)
		settings := sc.RecoverySettings()
		if len(e.Methods) > 0 {
			atts, err = n.rejoinToward(ctx, a.srv, "the remote "+src.Describe(), src, rewindAt(n, "", *remote), e.Methods, settings)
		} else {
			err = errors.New("no rejoin method can run (rejoin_methods)")
		}
		if err != nil && e.Reimage && ctx.Err() == nil {
			log.Warn("standby follow: the rewind failed; rejoin = \"reimage\": re-cloning from the remote", "error", err)
			var clone []dcs.Attempt
			clone, err = a.recloneFromRemote(ctx, src, sc, want)
			atts = append(atts, clone...)
		}
		if err != nil {
			return Result{Err: err, Attempts: atts}
		}
	}
	n.markLed(false)
	if switched(sw) {
		sw.Reason, sw.OldLeader = "the cluster follows "+src.Describe()+" as a standby cluster", n.Config.Name
		if err := recordSwitch(ctx, a.store, sw); err != nil {
			log.Warn("the remote's timeline switch is not recorded in the cluster history", "timeline", sw.Timeline, "error", err)
		}
	}
	next := *e.Record
	next.Phase, next.Timeline, next.SwitchLSN, next.FollowedAt = StandbyFollowing, sw.Timeline, fork, time.Now().UTC()
	next.TimelineBegan = sw.LSN
	b, err := json.Marshal(next)
	if err != nil {
		return Result{Err: err, Attempts: atts}
	}
	ok, err := a.store.CompareAndSwap(ctx, StandbyKey, e.Record.raw, b)
	if err == nil && !ok {
		err = errors.New("the standby cluster's record changed while the cluster was made to follow the remote")
	}
	if err != nil {
		return Result{Err: fmt.Errorf("while recording that the cluster follows the remote: %w", err), Attempts: atts}
	}
	log.Info("standby follow: this member is the standby leader of a standby cluster of the remote", "remote", src.Describe(), "timeline", sw.Timeline)
	return Result{Attempts: atts}
}

// followsRemoteNow reports whether PostgreSQL already runs as a standby of the remote sc names
// (a follow whose record was not marked before the agent stopped).
func (a *Agent) followsRemoteNow(ctx context.Context, sc *config.StandbyCluster) bool {
	st := a.pgStatus(ctx)
	if !st.Queried || !st.InRecovery {
		return false
	}
	settings, err := pg.ReadRecovery(a.Node.Config.DataDir)
	return err == nil && namedServers(settings["primary_conninfo"]) == namedServers(replicationSource(a.Node, "", *sc.Remote()).Conn.Conninfo())
}

// recloneFromRemote replaces the member's own data directory (this cluster's, the rejoin chain's
// exception to invariant 3) with a clone from the remote by the block's methods.
func (a *Agent) recloneFromRemote(ctx context.Context, src *Source, sc *config.StandbyCluster, sysid string) ([]dcs.Attempt, error) {
	n := a.Node
	want, err := strconv.ParseUint(sysid, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("the DCS initialize key holds %q, not a system identifier", sysid)
	}
	if err := n.emptyOwnDir(ctx, a.srv, "standby follow"); err != nil {
		return nil, err
	}
	res, err := n.Clone(ctx, CloneOptions{Source: src, Methods: sc.CreateReplicaMethods, Recovery: sc.RecoverySettings(), ExpectSystemID: want})
	return res.Chain.Attempts, err
}

// ErrRemoteVersion: the remote runs another major version than the local binaries.
var ErrRemoteVersion = errors.New("the remote runs another major version of PostgreSQL")

// RemoteVersionRefusal is the refusal to copy or follow a remote whose server_version_num is
// remote with binaries whose server_version_num is local; nil when their major versions agree
// (or either is unknown, 0).
func RemoteVersionRefusal(remote, local int) error {
	if remote <= 0 || local <= 0 || majorOf(remote) == majorOf(local) {
		return nil
	}
	return fmt.Errorf("%w: a standby needs the same major version: the remote is PostgreSQL %s (server_version_num %d), the local binaries are PostgreSQL %s (%d)",
		ErrRemoteVersion, majorOf(remote), remote, majorOf(local), local)
}

// majorOf is the major version a server_version_num names: "15" for 150004, "9.6" for 90624.
func majorOf(v int) string {
	if v >= 100000 {
		return strconv.Itoa(v / 10000)
	}
	return fmt.Sprintf("%d.%d", v/10000, v/100%100)
}

// checkRemote asks the remote, over a replication connection, for its system identifier and
// major version: a standby of it must hold the cluster's system identifier (sysid, "" for
// none yet) and run the same major version as the local binaries (local, server_version_num).
func checkRemote(ctx context.Context, src *Source, sysid string, local int) error {
	remote, err := remoteVersion(ctx, src)
	if err != nil {
		return err
	}
	if err := RemoteVersionRefusal(remote, local); err != nil {
		return err
	}
	if sysid == "" {
		return nil
	}
	got, err := SourceSystemID(ctx, src)
	if err != nil {
		return err
	}
	if strconv.FormatUint(got, 10) != sysid {
		return fmt.Errorf("%w: the remote %s has system identifier %d, the cluster %s: only a copy of the same cluster can follow it", ErrForeignCluster, src.Describe(), got, sysid)
	}
	return nil
}

// remoteVersion is the remote's server_version_num (SHOW over a replication connection); 0 with
// no remote host.
func remoteVersion(ctx context.Context, src *Source) (int, error) {
	if src == nil {
		return 0, nil
	}
	row, err := replicationCommand(ctx, src, "SHOW server_version_num")
	if err != nil {
		return 0, fmt.Errorf("while asking the remote for its version: %w", err)
	}
	v, err := strconv.Atoi(strings.TrimSpace(string(row[0])))
	if err != nil {
		return 0, fmt.Errorf("the remote %s answers server_version_num %q", src.Describe(), row[0])
	}
	return v, nil
}

// remoteSwitch is where the remote's current timeline began, from its timeline history
// (TIMELINE_HISTORY): Timeline 1 and no LSN on the first timeline; starts is where each of its
// timelines began.
func remoteSwitch(ctx context.Context, src *Source) (sw dcs.TimelineSwitch, starts map[int]uint64, err error) {
	row, err := identifySystem(ctx, src)
	if err != nil {
		return dcs.TimelineSwitch{}, nil, err
	}
	tli, err := strconv.Atoi(strings.TrimSpace(string(row[1])))
	if err != nil || tli <= 1 {
		return dcs.TimelineSwitch{Timeline: max(tli, 1)}, nil, nil
	}
	hist, err := replicationCommand(ctx, src, "TIMELINE_HISTORY "+strconv.Itoa(tli))
	if err != nil {
		return dcs.TimelineSwitch{}, nil, err
	}
	if len(hist) < 2 {
		return dcs.TimelineSwitch{}, nil, fmt.Errorf("the remote %s gave no history of timeline %d", src.Describe(), tli)
	}
	starts = timelineStarts(string(hist[1]))
	lsn, ok := starts[tli]
	if !ok {
		return dcs.TimelineSwitch{}, nil, fmt.Errorf("the remote %s's history of timeline %d cannot be read", src.Describe(), tli)
	}
	return dcs.TimelineSwitch{Timeline: tli, LSN: lsn}, starts, nil
}

// timelineStarts reads a timeline history file (lines of parent timeline, LSN, reason,
// tab-separated: the parent ended, and the next timeline began, at LSN): where each timeline
// after the first began.
func timelineStarts(history string) map[int]uint64 {
	out := map[int]uint64{}
	for line := range strings.SplitSeq(history, "\n") {
		fields := strings.Fields(line)
		if len(fields) < 2 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		parent, err := strconv.Atoi(fields[0])
		lsn, lerr := pg.ParseLSN(fields[1])
		if err == nil && lerr == nil {
			out[parent+1] = uint64(lsn)
		}
	}
	return out
}

// ForkPoint is where this cluster's WAL and the remote's went apart, as far as their histories
// tell: the first switch of the cluster's own history that the remote's does not hold (starts:
// where each remote timeline began), else where the remote's current timeline began (remote);
// the earlier of the two. 0: nothing tells (both on the first timeline).
func ForkPoint(own dcs.History, remote dcs.TimelineSwitch, starts map[int]uint64) uint64 {
	fork := uint64(0)
	if switched(remote) {
		fork = remote.LSN
	}
	for _, sw := range own.Switches {
		if lsn, ok := starts[sw.Timeline]; ok && lsn == sw.LSN {
			continue
		}
		if fork == 0 || sw.LSN < fork {
			fork = sw.LSN
		}
		break
	}
	return fork
}

// readStandbyRecord reads the standby cluster's record before the cycle observes the node, so
// that the block in force is the DCS's ([Node.UseStandbyRecord]); a standby leader made from
// this configuration's block, with no record yet, records it. An unreadable record leaves the
// block as it was.
func (a *Agent) readStandbyRecord(ctx context.Context) (*StandbyRecord, error) {
	n := a.Node
	r, err := ReadStandby(ctx, a.store)
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	role := a.role
	a.mu.Unlock()
	if r == nil && n.Config.StandbyCluster != nil && a.cl.Leader == n.Config.Name && role == dcs.RoleStandbyLeader {
		rec := StandbyRecord{Phase: StandbyFollowing, Leader: n.Config.Name, By: "the standby_cluster block of " + n.Config.Name, At: time.Now().UTC(),
			Remote: BlockOf(n.Config.StandbyCluster), FromFile: true}
		if b, err := json.Marshal(rec); err == nil {
			if ok, err := a.store.CompareAndSwap(ctx, StandbyKey, nil, b); err != nil || !ok {
				n.logger().Warn("could not record the standby cluster in the DCS", "error", err)
			} else if r, err = ReadStandby(ctx, a.store); err != nil {
				return nil, err
			}
		}
	}
	n.UseStandbyRecord(r)
	if note := StandbyNote(n.Config.StandbyCluster, r); note != "" && note != a.toldStandby {
		a.toldStandby = note
		n.logger().Warn(note)
	}
	return r, nil
}

// cloningMember names a member of cl that publishes itself creating a replica, "" when none
// does: a promotion waits until it streams, rather than switching the timeline under a copy
// that is being made from the standby leader.
func cloningMember(cl dcs.Cluster) string {
	for _, m := range cl.Members {
		if m.State == dcs.StateCreatingReplica {
			return fmt.Sprintf("member %s is creating a replica: promote once it streams (status shows it running)", m.Name)
		}
	}
	return ""
}

// checkpointStandbySource has the server src names, when it runs in recovery (the standby
// leader of a standby cluster), make a restartpoint: pg_rewind reads the source's timeline from
// its pg_control, which names the timeline replayed only after one, and would find a target of
// the timeline before "on the same timeline" with nothing to rewind. A primary is left alone.
func checkpointStandbySource(ctx context.Context, src *Source) error {
	cfg, err := src.Conn.Config()
	if err != nil {
		return err
	}
	if src.Password != "" {
		cfg.Password = src.Password
	}
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	conn, err := pgconn.ConnectConfig(cctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	res, err := conn.Exec(cctx, "SELECT pg_is_in_recovery()").ReadAll()
	if err != nil {
		return err
	}
	if len(res) == 0 || len(res[0].Rows) == 0 || string(res[0].Rows[0][0]) != "t" {
		return nil
	}
	_, err = conn.Exec(cctx, "CHECKPOINT").ReadAll()
	return err
}
