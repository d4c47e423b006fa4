package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/pgimaged/pgimaged/core/dcs"
	"github.com/pgimaged/pgimaged/core/pg"
)

// Observe gathers what [Decide] needs, reading only: the data directory, its pg_control and
// recovery files, whether PostgreSQL runs in it and as what, and the DCS state cl (nil with
// dcsErr when the DCS could not be read). `pgimaged run` and `pgimaged plan` both call it.
func (n *Node) Observe(ctx context.Context, cl *dcs.Cluster, dcsErr error) Observation {
	return n.observe(ctx, cl, dcsErr, nil, nil)
}

// observe is [Node.Observe] with the pending reinit req (whose methods make the chain) and
// status, which tells what PostgreSQL answered this cycle (nil: ask it now).
func (n *Node) observe(ctx context.Context, cl *dcs.Cluster, dcsErr error, req *ReinitRequest, status func() pgStatus) Observation {
	dir := n.Config.DataDir
	obs := Observation{Member: n.Config.Name, Cluster: cl, DCSError: dcsErr, NoMaster: n.anyNoMaster(), ReinitRequested: req,
		SynchronousMode: n.Config.Replication.SynchronousMode,
		MaxLag:          n.Config.MaximumLagOnFailover}
	if cl == nil && dcsErr == nil {
		obs.DCSError = errors.New("no DCS state")
	}
	switch {
	case n.Incomplete():
		obs.DataDir = DirLeftover
		_, obs.KeepLeftover, _ = n.Leftover()
	case pg.HasCluster(dir):
		obs.DataDir = DirCluster
		obs.Control, obs.ControlError = pg.ReadControlData(dir)
		obs.Standby, obs.EndingRecovery = pg.RecoveryMode(dir)
		_, err := os.Stat(filepath.Join(dir, "backup_label"))
		obs.BackupLabel = err == nil
		obs.NeedsReinit = n.MarkedNeedsReinit()
		_, err = os.Stat(n.ledPath())
		obs.Led = err == nil
	default:
		if _, err := n.checkDataDir(); err != nil {
			obs.DataDir = DirForeign
			obs.DirProblem = err.Error()
		}
	}
	if srv, err := n.server(); err == nil {
		if status == nil {
			status = func() pgStatus { return n.queryPG(ctx, srv) }
		}
		st := status()
		obs.PostgreSQL = pgState(srv, st, obs.Standby && !obs.EndingRecovery)
		if st.Queried && st.InRecovery && !st.Streaming {
			obs.ReceiverFailure = walReceiverFailure(n.messageLog()) // snapshot_stream.go
		}
	}
	if cl != nil && cl.Initialize != nil && !cl.Bootstrapping() {
		obs.Source = ChooseSource(n.Config.Name, *cl).Member.Name
	}
	var methods []string
	if req != nil {
		methods = req.Methods
	}
	obs.Chain = PlanChain(n.chainInput(methods, obs.Source != ""))
	n.observeRejoin(&obs)
	n.observeStandby(&obs)
	return obs
}

// pgStatus is what PostgreSQL answers about itself, asked once a cycle ([Node.queryPG]).
type pgStatus struct {
	// Running: a postmaster runs in the data directory.
	Running bool
	// Queried: it answered; the fields below are its answers.
	Queried    bool
	InRecovery bool
	// Position is the WAL written (primary) or replayed (standby), in bytes from 0/0.
	Position int64
	// Received is the WAL a standby received (on a primary, Position).
	Received int64
	// Receiving: a standby's Timeline is its WAL receiver's, not pg_control's lagging one.
	Receiving bool
	Timeline  int
	// Streaming: a WAL receiver streams from SenderHost:SenderPort.
	Streaming  bool
	SenderHost string
	SenderPort int
	// PendingRestart: a setting needs a restart to apply (pg_settings.pending_restart).
	PendingRestart bool
}

// queryPG asks the PostgreSQL of the data directory where it stands: the one query for its
// role, WAL position, timeline and upstream.
func (n *Node) queryPG(ctx context.Context, srv *pg.Server) pgStatus {
	var st pgStatus
	if _, st.Running = srv.Running(); !st.Running {
		return st
	}
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := srv.Connect(qctx)
	if err != nil {
		return st
	}
	defer conn.Close(context.Background())
	pos, err := pg.QueryPosition(qctx, conn)
	if err == nil {
		st.InRecovery, st.Timeline, st.Receiving = pos.InRecovery, pos.Timeline, pos.Receiving
		if pos.InRecovery && !pos.Receiving {
			st.Timeline = replayTimeline(n.Config.DataDir, pos.Timeline, pos.Newest())
		}
		st.Position, st.Received = int64(pos.Replayed), int64(pos.Received)
		err = conn.QueryRow(qctx, `SELECT
			COALESCE((SELECT sender_host FROM pg_stat_wal_receiver WHERE status = 'streaming'), ''),
			COALESCE((SELECT sender_port FROM pg_stat_wal_receiver WHERE status = 'streaming'), 0),
			EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming'),
			EXISTS (SELECT 1 FROM pg_settings WHERE pending_restart)`).Scan(&st.SenderHost, &st.SenderPort, &st.Streaming, &st.PendingRestart)
	}
	if err == nil {
		st.Queried = true
		return st
	}
	// A role that may not read pg_control_checkpoint or the WAL receiver still says whether
	// it is in recovery.
	if err := conn.QueryRow(qctx, "SELECT pg_is_in_recovery()").Scan(&st.InRecovery); err == nil {
		st.Queried = true
	}
	return st
}

// pgState tells whether PostgreSQL runs in the data directory and whether it is in recovery:
// as it answered (st), else from the files: postmaster.pid's "standby" (a standby without hot
// standby), or a standby.signal older than the postmaster ([pg.StartedAsStandby]; a hot
// standby's postmaster.pid says "ready" as a primary's does). A server whose role cannot be told
// counts as a primary: fencing one too many is safe, two primaries are not.
func pgState(srv *pg.Server, st pgStatus, standbyFiles bool) PGState {
	if !st.Running {
		return PGStopped
	}
	if st.Queried {
		if st.InRecovery {
			return PGStandby
		}
		return PGPrimary
	}
	if b, err := os.ReadFile(filepath.Join(srv.DataDir, "postmaster.pid")); err == nil {
		if lines := strings.Split(string(b), "\n"); len(lines) > 7 && strings.TrimSpace(lines[7]) == "standby" {
			return PGStandby
		}
	}
	if standbyFiles && pg.StartedAsStandby(srv.DataDir) {
		return PGStandby
	}
	return PGPrimary
}

// NeedsReinitPath is where the mark of a data directory that needs a reinit lives: beside it.
func (n *Node) NeedsReinitPath() string {
	d := filepath.Clean(n.Config.DataDir)
	return filepath.Join(filepath.Dir(d), "."+filepath.Base(d)+".pgimaged-needs-reinit")
}

// MarkedNeedsReinit reports whether the data directory is marked as needing a reinit.
func (n *Node) MarkedNeedsReinit() bool {
	_, err := os.Stat(n.NeedsReinitPath())
	return err == nil
}

// markNeedsReinit marks the data directory as needing a reinit, with the reason. The mark is on
// disk when it returns: a rejoin leaves what it writes unsynced until PostgreSQL's start syncs
// it (see [Node.startRejoined]), and only the mark keeps a crash in between from starting a
// directory half written.
func (n *Node) markNeedsReinit(reason string) error {
	if err := pg.WriteFileDurable(n.NeedsReinitPath(), []byte(reason+"\n"), 0o600); err != nil {
		return fmt.Errorf("while marking data directory %q as needing reinit: %w", n.Config.DataDir, err)
	}
	return nil
}

// clearNeedsReinit removes the mark once the data directory is gone or replaced.
func (n *Node) clearNeedsReinit() {
	_ = os.Remove(n.NeedsReinitPath())
}

// ledPath marks a data directory this member ran as the cluster's primary with the leader key.
func (n *Node) ledPath() string {
	d := filepath.Clean(n.Config.DataDir)
	return filepath.Join(filepath.Dir(d), "."+filepath.Base(d)+".pgimaged-led")
}

// markLed records that this member leads with its data directory (led true) or no longer may
// restart it as a primary on its own (led false).
func (n *Node) markLed(led bool) {
	if !led {
		_ = os.Remove(n.ledPath())
		return
	}
	if _, err := os.Stat(n.ledPath()); err == nil {
		return
	}
	if err := os.WriteFile(n.ledPath(), []byte(n.Config.Name+"\n"), 0o600); err != nil {
		n.logger().Warn("could not record that this member leads with its data directory", "error", err)
	}
}

// replayTimeline is the timeline of the WAL a standby without a WAL receiver holds up to end:
// the newest timeline whose history file and WAL segments are in the data directory's pg_wal
// and that began at or before end, else control (pg_control's, which lags behind a timeline
// switch until the next restartpoint). The segments tell a standby that follows the timeline
// from one that only fetched its history file and could not follow it (it had received WAL
// past the switch point).
func replayTimeline(dataDir string, control int, end pg.LSN) int {
	files, _ := filepath.Glob(filepath.Join(dataDir, "pg_wal", "*.history"))
	tl := control
	for _, f := range files {
		id, err := strconv.ParseUint(strings.TrimSuffix(filepath.Base(f), ".history"), 16, 32)
		if err != nil || int(id) <= tl {
			continue
		}
		if _, at, err := pg.SwitchPoint(dataDir, int(id)); err == nil && at <= end && hasSegments(dataDir, int(id)) {
			tl = int(id)
		}
	}
	return tl
}

// hasSegments reports whether pg_wal in dataDir holds a WAL segment file of timeline tli.
func hasSegments(dataDir string, tli int) bool {
	segs, _ := filepath.Glob(filepath.Join(dataDir, "pg_wal", fmt.Sprintf("%08X", tli)+strings.Repeat("[0-9A-F]", 16)))
	return len(segs) > 0
}
