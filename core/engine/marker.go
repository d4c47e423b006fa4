package engine

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/pgimaged/pgimaged/core/pg"
)

// The incomplete marker is a file beside the data directory that exists while pgimaged fills
// it, and for as long as what is inside is not a complete cluster. A data directory with the
// marker is a half-made one of pgimaged's own: it is never adopted, even if it looks like a
// cluster (invariant 2). The marker also records what the next attempt may do with it:
//
//   - created: pgimaged created the data directory itself; an attempt that gives up removes it
//     rather than leaving it empty.
//   - waldir: a separate WAL directory the attempt may fill; it was empty (waldir) or missing
//     (waldir_created) before, so what it holds is the attempt's to remove.
//   - method and keep_data: the replica method that ran last in it, and whether that method
//     sets keep_data. A failed keep_data method's leftovers are handed to the next attempt
//     (a keep_data method runs over them; any other method empties them first); everything
//     else a marked directory holds is removed before the next attempt.
//
// Without the marker, pgimaged never deletes anything in the data directory (invariant 3): a
// non-empty directory it did not mark is refused.

// marker is the content of the incomplete marker.
type marker struct {
	attempt  string   // "bootstrap" or "clone"
	created  bool     // pgimaged created the data directory
	method   string   // the replica method that ran last, "" before any
	keepData bool     // that method sets keep_data
	walDirs  []walDir // separate WAL directories the attempt may fill (see checkWalDirs)
	pid      int
	started  time.Time
}

func (m marker) encode() []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "attempt=%s\n", m.attempt)
	fmt.Fprintf(&b, "created=%t\n", m.created)
	if m.method != "" {
		fmt.Fprintf(&b, "method=%s\n", m.method)
		fmt.Fprintf(&b, "keep_data=%t\n", m.keepData)
	}
	for _, w := range m.walDirs {
		key := "waldir"
		if w.created {
			key = "waldir_created"
		}
		fmt.Fprintf(&b, "%s=%s\n", key, w.path)
	}
	fmt.Fprintf(&b, "pid=%d\n", m.pid)
	fmt.Fprintf(&b, "started=%s\n", m.started.UTC().Format(time.RFC3339))
	return []byte(b.String())
}

// decodeMarker reads a marker. Lines it does not know (an older pgimaged wrote one free-form
// line) are passed over: such a marker only says that the directory is half-made.
func decodeMarker(b []byte) marker {
	var m marker
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok {
			continue
		}
		switch k {
		case "attempt":
			m.attempt = v
		case "created":
			m.created = v == "true"
		case "method":
			m.method = v
		case "keep_data":
			m.keepData = v == "true"
		case "waldir", "waldir_created":
			m.walDirs = append(m.walDirs, walDir{path: v, created: k == "waldir_created"})
		case "pid":
			m.pid, _ = strconv.Atoi(v)
		case "started":
			m.started, _ = time.Parse(time.RFC3339, v)
		}
	}
	return m
}

// IncompletePath is where the marker of this node's data directory lives.
func (n *Node) IncompletePath() string {
	d := absDir(n.Config.DataDir)
	return filepath.Join(filepath.Dir(d), "."+filepath.Base(d)+".pgimaged-incomplete")
}

// readMarker returns the marker and whether there is one.
func (n *Node) readMarker() (marker, bool) {
	b, err := os.ReadFile(n.IncompletePath())
	if err != nil {
		return marker{}, false
	}
	return decodeMarker(b), true
}

func (n *Node) writeMarker(m marker) error {
	p := n.IncompletePath()
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return fmt.Errorf("while creating the parent of data directory %q: %w", n.Config.DataDir, err)
	}
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, m.encode(), 0o600); err != nil {
		return fmt.Errorf("while marking data directory %q as being filled: %w", n.Config.DataDir, err)
	}
	if err := os.Rename(tmp, p); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("while marking data directory %q as being filled: %w", n.Config.DataDir, err)
	}
	return nil
}

// markIncomplete writes the marker before an attempt touches the data directory. created says
// whether the attempt creates the directory; a marker left by an earlier attempt keeps its
// own word on that, and its method, until the next method runs.
func (n *Node) markIncomplete(what string, created bool) error {
	m := marker{attempt: what, created: created, pid: os.Getpid(), started: time.Now()}
	if old, ok := n.readMarker(); ok {
		m.created = m.created || old.created
		m.method, m.keepData, m.walDirs = old.method, old.keepData, old.walDirs
	}
	return n.writeMarker(m)
}

// markMethod records in the marker that a replica method is about to run in the data directory,
// so that what it leaves (also after pgimaged is killed) is known to be its.
func (n *Node) markMethod(method string, keepData bool) error {
	m, ok := n.readMarker()
	if !ok {
		m = marker{attempt: "clone", pid: os.Getpid(), started: time.Now()}
	}
	m.method, m.keepData = method, keepData
	return n.writeMarker(m)
}

// ClearIncomplete removes the marker: the data directory is complete (or gone).
func (n *Node) ClearIncomplete() {
	_ = os.Remove(n.IncompletePath())
}

// Incomplete reports whether the data directory is marked as pgimaged's own half-made one.
func (n *Node) Incomplete() bool {
	_, err := os.Stat(n.IncompletePath())
	return err == nil
}

// Leftover reports what the incomplete marker says about the data directory. ok: the marker
// exists, so the directory is pgimaged's own and not complete; it must never be adopted. method
// is the replica method that ran last in it ("" if none ran yet); keep is true when that method
// sets keep_data and left files: those leftovers are handed to the next clone attempt, not
// emptied and not adopted.
func (n *Node) Leftover() (method string, keep bool, ok bool) {
	m, ok := n.readMarker()
	if !ok {
		return "", false, false
	}
	keep = false
	if m.keepData {
		empty, exists, err := pg.IsEmptyDir(n.Config.DataDir)
		keep = err == nil && exists && !empty
	}
	return m.method, keep, true
}

// Adoptable reports whether the data directory holds a complete cluster that the node may
// adopt: a cluster (PG_VERSION and pg_control) and no incomplete marker. A marked directory
// that looks like a cluster is the leftover of a failed method, never adopted (invariant 2).
func (n *Node) Adoptable() bool {
	return pg.HasCluster(n.Config.DataDir) && !n.Incomplete()
}

// cleanIncomplete deals with a data directory a previous attempt of pgimaged's left half-made:
// the leftovers of a keep_data method stay for the next attempt (and the marker with them);
// anything else is removed (the directory itself if pgimaged created it), with the pgpass
// file beside it, and the marker is cleared.
func (n *Node) cleanIncomplete() error {
	m, ok := n.readMarker()
	if !ok {
		return nil
	}
	dir := n.Config.DataDir
	srv, err := n.server()
	if err == nil {
		if _, running := srv.Running(); running {
			return fmt.Errorf("data directory %q is marked incomplete but a PostgreSQL runs in it; stop it first", dir)
		}
	}
	if method, keep, _ := n.Leftover(); keep {
		n.logger().Info("keeping what the keep_data method left in the data directory for the next attempt", "data_dir", dir, "method", method)
		return nil
	}
	return n.discardIncomplete(m)
}

// discardIncomplete removes a marked data directory's contents (the directory itself if
// pgimaged created it), the pgpass file beside it, and the marker.
func (n *Node) discardIncomplete(m marker) error {
	dir := n.Config.DataDir
	n.logger().Warn("removing the half-made data directory a previous attempt left", "data_dir", dir, "attempt", m.attempt, "method", m.method)
	n.cleanWalDirs()
	if err := pg.EmptyDir(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("while emptying the half-made data directory %q: %w", dir, err)
	}
	if m.created {
		if err := os.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("while removing the half-made data directory %q: %w", dir, err)
		}
	}
	n.removePgpass()
	n.removeSuperuserPgpass()
	n.ClearIncomplete()
	return nil
}
