package engine

import (
	"context"
	"time"

	"github.com/pgimaged/pgimaged/core/dcs"
	"github.com/pgimaged/pgimaged/core/pg"
)

// remoteAskTimeout bounds the question to the remote each cycle.
const remoteAskTimeout = 2 * time.Second

// refreshRemote adds to s, on the standby leader of a standby cluster that follows a remote
// host, how far it stands behind the remote: the remote's WAL flush position (IDENTIFY_SYSTEM
// over a replication connection, as the replication role) minus what it replayed, the WAL it
// received but not yet replayed, and how old the last transaction it replayed is meanwhile.
func (a *Agent) refreshRemote(ctx context.Context, s *Snapshot) {
	src := RemoteSource(a.Node)
	if src == nil || !s.Leader || !s.Queried || !s.InRecovery {
		return
	}
	r := &dcs.RemoteFollow{}
	if s.Server.Received > s.Position {
		r.ReceivedLagBytes = s.Server.Received - s.Position
		if !s.Server.ReplayedAt.IsZero() {
			r.ReplayDelay = max(time.Since(s.Server.ReplayedAt).Seconds(), 0)
		}
	}
	rctx, cancel := context.WithTimeout(ctx, remoteAskTimeout)
	defer cancel()
	row, err := identifySystem(rctx, src)
	if err == nil {
		var at pg.LSN
		if at, err = pg.ParseLSN(string(row[2])); err == nil {
			lag := max(int64(at)-s.Position, 0)
			r.LagBytes = &lag
		}
	}
	if err != nil {
		r.Error = a.Node.secrets().Mask(err.Error())
	}
	s.Remote = r
}
