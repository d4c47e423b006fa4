package engine

import (
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/pgimaged/pgimaged/core/dcs"
	"github.com/pgimaged/pgimaged/core/pg"
)

// The decisions of a change of primary (change.go), of the cluster's timeline history, of
// re-pointing replicas at a new leader and of rejoining a former primary. [Decide] calls them;
// they read nothing but the observation.

// Actions beyond the first day's.
const (
	// ActHandOver: the leader of a switchover shuts PostgreSQL down cleanly, records its
	// shutdown checkpoint in the request and gives up the leader key.
	ActHandOver ActionKind = "hand over"
	// ActTakeOver: the candidate of a change (its turn come) replays to the old primary's
	// checkpoint, promotes, takes the leader key and records the switch.
	ActTakeOver ActionKind = "take over"
	// ActAbortChange: the pending change cannot go on; it is marked aborted with the reason.
	ActAbortChange ActionKind = "abort change"
	// ActRepoint: a running standby follows another upstream than it should: its
	// primary_conninfo is rewritten and PostgreSQL reloaded.
	ActRepoint ActionKind = "repoint"
	// ActRejoin: a directory of this cluster that cannot follow the leader as it is runs the
	// rejoin methods (pg_rewind toward the leader), then starts as its standby.
	ActRejoin ActionKind = "rejoin"
)

// States published during a change of primary or a rejoin.
const (
	StateSwitchingOver = "switching over"
	StatePromoting     = "promoting"
	StateRejoining     = "rejoining"
)

// decideChange is the decision a pending change of primary asks of this member; false: none,
// the usual decision stands.
func decideChange(obs Observation) (Action, bool) {
	ch, cl, me := obs.Change, obs.Cluster, obs.Member
	if ch == nil || cl == nil || ch.over(obs.Now) {
		return Action{}, false
	}
	abort := func(format string, args ...any) (Action, bool) {
		why := fmt.Sprintf(format, args...)
		return Action{Kind: ActAbortChange, Change: ch, State: dcs.StateRunning,
			Reason: fmt.Sprintf("the %s cannot go on: %s", ch.Describe(), why)}, true
	}
	wait := func(reason string) (Action, bool) {
		return Action{Kind: ActWait, State: StateSwitchingOver, Reason: reason}, true
	}
	switch {
	case ch.Kind == Switchover && ch.Leader == me:
		switch {
		case ch.Phase == PhaseAsked && cl.Leader != me:
			return abort("member %s, which it hands over from, no longer leads", me)
		case ch.Waiting(obs.Now) || ch.Phase == PhaseAsked && !ch.ScheduledAt.IsZero() && obs.Paused:
			return Action{}, false // scheduled: the leader leads on until its time (and while paused)
		case ch.Phase == PhaseAsked && obs.PostgreSQL == PGPrimary && !ch.ScheduledAt.IsZero():
			// Its time has come: the candidate is checked as a switchover asked now would be
			// (none named: the most advanced healthy replica now is the one).
			req, err := CheckSwitchover(InSynchronousMode(*cl, obs.SynchronousMode), ch.Candidate, obs.MaxLag)
			if err != nil {
				return abort("at its scheduled time: %v", err)
			}
			named := *ch
			named.Candidate = req.Candidate
			return Action{Kind: ActHandOver, Change: &named, State: StateSwitchingOver,
				Reason: fmt.Sprintf("the switchover to %s scheduled at %s: PostgreSQL is shut down cleanly and the leader key given up", req.Candidate, ch.ScheduledAt.UTC().Format(time.RFC3339))}, true
		case ch.Phase == PhaseAsked && obs.PostgreSQL == PGPrimary:
			return Action{Kind: ActHandOver, Change: ch, State: StateSwitchingOver,
				Reason: fmt.Sprintf("a switchover to %s: PostgreSQL is shut down cleanly and the leader key given up", ch.Candidate)}, true
		case ch.Phase == PhaseAsked:
			return Action{}, false // the leader's server is not up yet: the usual decision starts it
		case cl.Leader == ch.Candidate:
			return Action{}, false // done: this member follows the candidate
		case ch.Phase == PhaseDemoted && !ch.Deadline.IsZero() && obs.Now.After(ch.Deadline):
			return abort("the candidate %s did not take over by %s; the old primary resumes", ch.Candidate, ch.Deadline.Format("15:04:05"))
		}
		return wait(fmt.Sprintf("handed over to %s (shutdown checkpoint %s); waiting for it to take the leader key", ch.Candidate, ch.CheckpointLSN))
	case ch.Candidate == me:
		if ch.Kind == Switchover && ch.Phase == PhaseDemoted && cl.Leader == ch.Leader {
			// The old primary records the hand-over before it gives up the key (or the key expires).
			return wait(fmt.Sprintf("member %s handed over (shutdown checkpoint %s) and is giving up the leader key", ch.Leader, ch.CheckpointLSN))
		}
		if cl.Leader != "" && cl.Leader != me && !(ch.Kind == Switchover && ch.Phase == PhaseAsked && cl.Leader == ch.Leader) {
			return abort("member %s holds the leader key", cl.Leader)
		}
		turn := cl.Leader == me || ch.Phase == PhasePromoting ||
			ch.Kind == Switchover && ch.Phase == PhaseDemoted || ch.Kind == Failover && ch.Phase == PhaseAsked
		if !turn || obs.PostgreSQL == PGStopped {
			return Action{}, false // not yet, or the server must run first (the usual decision starts it)
		}
		// A failover checks the candidate again before it promotes, also when an attempt cut
		// short left the request promoting: other members may have received more since. Once
		// it holds the key (or runs as the primary) it goes on.
		if ch.Kind == Failover && cl.Leader == "" && (ch.Phase == PhaseAsked || obs.PostgreSQL == PGStandby) {
			// A directory the cluster's primary moved on from never leads again, also named as
			// a failover's candidate: promoted, it would fork a timeline of its own.
			if why := behindHistory(obs); why != "" {
				return abort("%s", why)
			}
			// Its key expired, but the old primary's server answered: two primaries would
			// take writes, and what clients wrote to the old one would be lost. --force
			// accepts a window of WAL, never that.
			if obs.UpstreamPrimary != "" {
				return abort("the server its WAL comes from, %s, still runs as a primary (its agent is gone, not its PostgreSQL): stop that server, or start its agent, and ask again", obs.UpstreamPrimary)
			}
			if _, err := CheckFailover(InSynchronousMode(withOwnPosition(*cl, me, obs.WAL), obs.SynchronousMode), me, ch.Force); err != nil {
				return abort("%v", err)
			}
		}
		return Action{Kind: ActTakeOver, Change: ch, State: StatePromoting,
			Reason: fmt.Sprintf("the %s names this member: it promotes, takes the leader key and records the switch", ch.Describe())}, true
	}
	return Action{}, false
}

// withOwnPosition is cl with this member's published position replaced by what its server
// says now, and published as running: its server runs (the caller's condition), whatever the
// key an agent killed mid-promotion left says ("promoting"). A member whose key is not
// published (yet) — its agent restarted mid-promotion, and the key of the one before it
// expired — is added so: the request was checked against its published key when it was asked,
// and what the check needs again is where its WAL stands now.
func withOwnPosition(cl dcs.Cluster, me string, wal *pg.Position) dcs.Cluster {
	if wal == nil {
		return cl
	}
	out := cl
	out.Members = append([]dcs.Member(nil), cl.Members...)
	found := false
	for i := range out.Members {
		if out.Members[i].Name == me {
			out.Members[i].Timeline, out.Members[i].XLogLocation = wal.Timeline, int64(wal.Newest())
			out.Members[i].State, found = dcs.StateRunning, true
		}
	}
	if !found {
		out.Members = append(out.Members, dcs.Member{Name: me, State: dcs.StateRunning, Timeline: wal.Timeline, XLogLocation: int64(wal.Newest())})
	}
	return out
}

// changeFor names the member a pending change of primary will make the leader, "" when no
// change is pending: while one is, no other member takes a free leader key.
func changeFor(obs Observation) string {
	if ch := obs.Change; ch != nil && ch.underWay(obs.Now) {
		return ch.Candidate
	}
	return ""
}

// ownTimeline is the timeline the data directory is on: the running server's, else the
// newest pg_control records.
func ownTimeline(obs Observation) int {
	if obs.WAL != nil && obs.WAL.Timeline > 0 {
		return obs.WAL.Timeline
	}
	return int(max(obs.Control.Timeline, obs.Control.MinRecoveryPointTLI))
}

// behindHistory says why this directory may never lead again — its timeline is older than the
// cluster history's newest, so the cluster's primary moved on without it — "" when it may.
func behindHistory(obs Observation) string {
	tl := obs.Cluster.History.Timeline()
	if own := ownTimeline(obs); tl > 0 && own > 0 && own < tl {
		return fmt.Sprintf("the data directory is on timeline %d and the cluster history's newest timeline is %d: the primary moved on without it", own, tl)
	}
	return ""
}

// handedOver reports whether the stopped directory is the clean end of a switchover from this
// member: its shutdown checkpoint lies before the point where the history's next timeline
// began, so it holds nothing the new primary lacks and follows it as it is.
func handedOver(obs Observation) bool {
	cd := obs.Control
	if !cd.HasPosition || cd.State != pg.DBShutdowned {
		return false
	}
	for _, sw := range obs.Cluster.History.Switches {
		if sw.Timeline == int(cd.Timeline)+1 && sw.OldLeader == obs.Member && uint64(cd.Checkpoint) < sw.LSN {
			return true
		}
	}
	return false
}

// followsHistory reports whether a standby directory on an older timeline, whose WAL ends at
// end, can follow the cluster onto its newer timelines: the next timeline began at or after
// end.
func followsHistory(obs Observation, end pg.LSN) bool {
	for _, sw := range obs.Cluster.History.Switches {
		if sw.Timeline == int(obs.Control.Timeline)+1 {
			return uint64(end) <= sw.LSN
		}
	}
	return false
}

// upstream is the member a standby of this member should stream from: the running member its
// replicatefrom tag names, else the leader; false when neither has published where it is.
func upstream(obs Observation) (dcs.Member, bool) {
	cl := obs.Cluster
	if m, ok := cl.Member(obs.ReplicateFrom); ok && obs.ReplicateFrom != obs.Member && m.IsRunning() && m.ConnURL != "" {
		return m, true
	}
	lm, ok := cl.LeaderMember()
	if !ok || lm.Name == obs.Member || !lm.IsRunning() || lm.ConnURL == "" {
		return dcs.Member{}, false
	}
	return lm, true
}

// hostPort is the host:port a connection string (URL or keyword/value) names, "" when it
// cannot be read.
func hostPort(connString string) string {
	conn, _, err := pg.ParseConnURL(connString)
	if err != nil {
		return ""
	}
	port := conn.Port
	if port == 0 {
		port = 5432
	}
	return net.JoinHostPort(conn.Host, strconv.Itoa(port))
}

// decideStandby is the decision for a standby that runs: it keeps running, is re-pointed at
// the upstream it should follow, or — holding WAL of an old timeline past the point where the
// cluster's next one began — rejoins.
func decideStandby(obs Observation, act Action) Action {
	act.Start, act.State = KeepRunning, dcs.StateRunning
	act.Reason = "PostgreSQL runs as a standby in the data directory; it is kept running"
	if a, ok := standbyLeads(obs, act, true); ok {
		return a
	}
	cl := obs.Cluster
	if obs.WAL != nil && obs.WAL.Receiving { // pg_control's timeline lags: only the receiver's tells
		for _, sw := range cl.History.Switches {
			if sw.Timeline == obs.WAL.Timeline+1 && uint64(obs.WAL.Newest()) > sw.LSN {
				if a, ok := rejoinAction(obs, act, fmt.Sprintf("the standby received WAL of timeline %d up to %s, past the point %s where timeline %d began: it cannot follow the new primary as it is",
					obs.WAL.Timeline, obs.WAL.Newest(), pg.LSN(sw.LSN), sw.Timeline)); ok {
					a.Stop = true
					return a
				}
				return act
			}
		}
	}
	if a, ok := receiverDiverged(obs, act); ok { // snapshot_stream.go
		return a
	}
	up, ok := upstream(obs)
	if !ok || obs.Following == "" || hostPort(up.ConnURL) == obs.Following {
		return act
	}
	act.Kind, act.Leader = ActRepoint, &up
	act.Reason = fmt.Sprintf("the standby streams from %s, but it should follow %s (%s): its primary_conninfo is rewritten and PostgreSQL reloaded", obs.Following, up.Name, hostPort(up.ConnURL))
	return act
}

// rejoinAction is the rejoin of a directory that cannot follow the leader as it is (why), when
// rejoin methods can run and have not all failed for it; false otherwise (it needs a reinit).
// After they failed, rejoin = "reimage" lets the replica methods replace it.
func rejoinAction(obs Observation, act Action, why string) (Action, bool) {
	lm, ok := obs.Cluster.LeaderMember()
	if !ok || !lm.IsRunning() || lm.ConnURL == "" || obs.Cluster.SystemIdentifier() == "" {
		return act, false
	}
	switch {
	case len(obs.RejoinMethods) > 0 && !obs.RejoinFailed:
		act.Kind, act.State, act.Leader = ActRejoin, StateRejoining, &lm
		act.Reason = why + fmt.Sprintf("; it rejoins with %v toward the leader %s", obs.RejoinMethods, lm.Name)
		return act, true
	case obs.Reimage:
		act.Kind, act.State = ActReclone, StateReinitializing
		act.SystemIdentifier = obs.Cluster.SystemIdentifier()
		act.Reason = why + "; the rejoin methods failed and rejoin = \"reimage\": the replica methods replace the data directory"
		return act, true
	}
	return act, false
}
