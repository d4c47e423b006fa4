package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pgimaged/pgimaged/core/dcs"
	"github.com/pgimaged/pgimaged/core/pg"
)

// Observe gathers what [Decide] needs, reading only: the data directory, its pg_control and
// recovery files, whether PostgreSQL runs in it and as what, and the DCS state cl (nil with
// dcsErr when the DCS could not be read). `pgimaged run` and `pgimaged plan` both call it.
func (n *Node) Observe(ctx context.Context, cl *dcs.Cluster, dcsErr error) Observation {
	dir := n.Config.DataDir
	obs := Observation{Member: n.Config.Name, Cluster: cl, DCSError: dcsErr, NoMaster: n.anyNoMaster()}
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
		obs.PostgreSQL = n.pgState(ctx, srv, obs.Standby && !obs.EndingRecovery)
	}
	if cl != nil && cl.Initialize != nil && !cl.Bootstrapping() {
		if src := CloneSource(n, *cl); src != nil {
			obs.Source = src.Member
		}
	}
	return obs
}

// pgState tells whether PostgreSQL runs in the data directory and whether it is in recovery:
// asked over a connection, else read from postmaster.pid ("standby" or "ready"), else guessed
// from the recovery files. A server whose role cannot be told otherwise counts as a primary
// unless it has standby settings: fencing one too many is safe, two primaries are not.
func (n *Node) pgState(ctx context.Context, srv *pg.Server, standbyFiles bool) PGState {
	if _, running := srv.Running(); !running {
		return PGStopped
	}
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if conn, err := srv.Connect(qctx); err == nil {
		defer conn.Close(context.Background())
		var inRecovery bool
		if err := conn.QueryRow(qctx, "SELECT pg_is_in_recovery()").Scan(&inRecovery); err == nil {
			if inRecovery {
				return PGStandby
			}
			return PGPrimary
		}
	}
	if b, err := os.ReadFile(filepath.Join(srv.DataDir, "postmaster.pid")); err == nil {
		lines := strings.Split(string(b), "\n")
		if len(lines) > 7 {
			switch strings.TrimSpace(lines[7]) {
			case "standby":
				return PGStandby
			case "ready":
				return PGPrimary
			}
		}
	}
	if standbyFiles {
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

// markNeedsReinit marks the data directory as needing a reinit, with the reason.
func (n *Node) markNeedsReinit(reason string) error {
	if err := os.WriteFile(n.NeedsReinitPath(), []byte(reason+"\n"), 0o600); err != nil {
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
