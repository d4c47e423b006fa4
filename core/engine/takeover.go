package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pgimaged/pgimaged/core/dcs"
	"github.com/pgimaged/pgimaged/core/pg"
)

// What the agents do for a change of primary (see change.go), each a step of its own so that a
// crash between two is resumed from what the DCS and the data directory say.

// handOver stops the primary cleanly for a switchover and reads where it ended: the shutdown
// checkpoint, which the candidate must replay before it promotes, and its timeline. A server
// that does not stop cleanly (a shutdown that had to be immediate) cannot hand over.
func (n *Node) handOver(ctx context.Context, srv *pg.Server) (pg.LSN, int, error) {
	if _, running := srv.Running(); running {
		if err := srv.Stop(ctx, "fast"); err != nil {
			return 0, 0, fmt.Errorf("while stopping PostgreSQL for the switchover: %w", err)
		}
	}
	cd, err := pg.ReadControlData(n.Config.DataDir)
	if err != nil {
		return 0, 0, err
	}
	if !cd.HasPosition || cd.State != pg.DBShutdowned {
		return 0, 0, fmt.Errorf("the server did not shut down cleanly (state %q): the candidate cannot know it has every write", cd.State)
	}
	return cd.Checkpoint, int(cd.Timeline), nil
}

// catchUp waits until the running standby has replayed WAL past lsn on timeline tli (the old
// primary's shutdown checkpoint), polling until ctx ends.
func catchUp(ctx context.Context, srv *pg.Server, tli int, lsn pg.LSN) error {
	for {
		pos, err := srv.WALPosition(ctx)
		switch {
		case err == nil && !pos.InRecovery:
			return errors.New("the server is not in recovery: it cannot follow the old primary's last checkpoint")
		case err == nil && pos.Replayed > lsn:
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("replayed %s of timeline %d, not past the old primary's shutdown checkpoint %s: %w", pos.Replayed, pos.Timeline, lsn, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// promote ends the running standby's recovery (a primary promoted by hand is left as it is)
// and says where its new timeline began; a primary on the first timeline, never promoted,
// reports timeline 1 and no switch.
func promote(ctx context.Context, srv *pg.Server) (dcs.TimelineSwitch, error) {
	if err := srv.Promote(ctx); err != nil {
		return dcs.TimelineSwitch{}, err
	}
	// Until a checkpoint, pg_control names the old timeline: pg_rewind, reading it, would
	// find nothing to rewind on a former primary.
	if err := srv.Checkpoint(ctx); err != nil {
		return dcs.TimelineSwitch{}, fmt.Errorf("while checkpointing the new primary: %w", err)
	}
	pos, err := srv.WALPosition(ctx)
	if err != nil {
		return dcs.TimelineSwitch{}, fmt.Errorf("while reading the new primary's timeline: %w", err)
	}
	sw := dcs.TimelineSwitch{Timeline: pos.Timeline, Time: time.Now().UTC().Truncate(time.Microsecond)} // as the history keeps it
	if !switched(sw) {
		return sw, nil // the first timeline began nowhere: a primary never promoted
	}
	_, at, err := pg.SwitchPoint(srv.DataDir, pos.Timeline)
	if err != nil {
		return dcs.TimelineSwitch{}, fmt.Errorf("while reading where timeline %d began: %w", pos.Timeline, err)
	}
	sw.LSN = uint64(at)
	return sw, nil
}

// switched reports whether sw is a switch of timeline: a take-over of a primary on the
// cluster's first timeline (bootstrapped by another tool and never promoted) is none, and
// leaves the history as it is.
func switched(sw dcs.TimelineSwitch) bool { return sw.Timeline > 1 }

// recordSwitch appends sw to the cluster history, reading it again when another writer came
// first; a history that already records sw's timeline (this member's own earlier attempt, cut
// short) is left as it is.
func recordSwitch(ctx context.Context, st dcs.Store, sw dcs.TimelineSwitch) error {
	for range 5 {
		h, err := st.History(ctx)
		if err != nil {
			return err
		}
		if h.Timeline() >= sw.Timeline {
			if latest, _ := h.Latest(); latest.Timeline == sw.Timeline && latest.NewLeader == sw.NewLeader {
				return nil
			}
			return fmt.Errorf("the cluster history records timeline %d already; this member's timeline %d is not newer", h.Timeline(), sw.Timeline)
		}
		err = st.AppendTimelineSwitch(ctx, h, sw)
		if !errors.Is(err, dcs.ErrHistoryChanged) {
			return err
		}
	}
	return dcs.ErrHistoryChanged
}
