package engine

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/pgimaged/pgimaged/core/pg"
)

// The incomplete marker is a file beside the data directory that exists while pgimaged fills
// it. A data directory with the marker is a half-made one of pgimaged's own (the process died
// during a bootstrap or clone): the next attempt may remove it, even if it already looks like
// a cluster. Without the marker, pgimaged never deletes a cluster it finds.

// IncompletePath is where the marker of this node's data directory lives.
func (n *Node) IncompletePath() string {
	d := filepath.Clean(n.Config.DataDir)
	return filepath.Join(filepath.Dir(d), "."+filepath.Base(d)+".pgimaged-incomplete")
}

func (n *Node) markIncomplete(what string) error {
	p := n.IncompletePath()
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return fmt.Errorf("while creating the parent of data directory %q: %w", n.Config.DataDir, err)
	}
	body := fmt.Sprintf("%s started %s by pid %d\n", what, time.Now().UTC().Format(time.RFC3339), os.Getpid())
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		return fmt.Errorf("while marking data directory %q as being filled: %w", n.Config.DataDir, err)
	}
	return nil
}

// ClearIncomplete removes the marker: the data directory is complete.
func (n *Node) ClearIncomplete() {
	_ = os.Remove(n.IncompletePath())
}

// Incomplete reports whether a previous attempt left a half-made data directory.
func (n *Node) Incomplete() bool {
	_, err := os.Stat(n.IncompletePath())
	return err == nil
}

// cleanIncomplete empties a data directory a previous attempt of pgimaged's left half-made.
func (n *Node) cleanIncomplete() error {
	if !n.Incomplete() {
		return nil
	}
	srv, err := n.server()
	if err == nil {
		if _, running := srv.Running(); running {
			return fmt.Errorf("data directory %q is marked incomplete but a PostgreSQL runs in it; stop it first", n.Config.DataDir)
		}
	}
	n.logger().Warn("removing the half-made data directory a previous attempt left", "data_dir", n.Config.DataDir)
	if err := pg.EmptyDir(n.Config.DataDir); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("while emptying the half-made data directory %q: %w", n.Config.DataDir, err)
	}
	n.ClearIncomplete()
	return nil
}
