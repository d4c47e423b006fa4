package engine

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/pgimaged/pgimaged/core/config"
	"github.com/pgimaged/pgimaged/core/pg"
	"github.com/pgimaged/pgimaged/sdk"
)

// A method may put pg_wal in a directory of its own (initdb's and pg_basebackup's `waldir`):
// the data directory then holds only a symbolic link, and emptying it leaves the WAL segments
// and archive_status behind, where the next initdb or pg_basebackup refuses them. Such a WAL
// directory belongs to the attempt only if it was missing or empty when the attempt began:
// pgimaged checks that first (refusing, and touching nothing, when it is not) and records it in
// the incomplete marker before any method runs, so that a failed attempt, or the next start
// after pgimaged was killed, removes what the attempt put there and nothing else.

// ErrWalDirNotEmpty: a method's separate WAL directory holds files the attempt did not create.
var ErrWalDirNotEmpty = errors.New("WAL directory is not empty")

// walDirPlugins are the plugins whose `waldir` option names a separate WAL directory.
var walDirPlugins = map[string]bool{"initdb": true, "basebackup": true}

// walDir is a separate WAL directory recorded in the incomplete marker; created: it did not
// exist before the attempt.
type walDir struct {
	path    string
	created bool
}

// WalDirOf returns the separate WAL directory method m puts pg_wal in (its `waldir` option, for
// the plugins that have one), "" when pg_wal stays inside the data directory. For the bootstrap
// method, initdb's options in bootstrap.initdb count too.
func (n *Node) WalDirOf(m *config.Method) string {
	if m.Label == n.BootstrapMethod() {
		m = n.bootstrapMethod()
	}
	if !walDirPlugins[config.PluginNameFor(m, n.plugins().Has)] {
		return ""
	}
	w, _ := m.Options.Get("waldir")
	return w
}

// attemptWalDirs are the separate WAL directories an attempt may fill: the bootstrap method's,
// or those of every replica method, each once.
func (n *Node) attemptWalDirs(kind string) []string {
	var dirs []string
	add := func(m *config.Method) {
		if w := n.WalDirOf(m); w != "" && !containsPath(dirs, w) {
			dirs = append(dirs, w)
		}
	}
	if kind == KindBootstrap {
		add(n.bootstrapMethod())
		return dirs
	}
	for _, label := range n.ReplicaMethods() {
		add(n.Config.Method(label))
	}
	return dirs
}

func containsPath(dirs []string, p string) bool {
	for _, d := range dirs {
		if filepath.Clean(d) == filepath.Clean(p) {
			return true
		}
	}
	return false
}

// checkWalDirs refuses, before anything is touched, a separate WAL directory the attempt could
// not call its own: a relative one, one that is the data directory or lies inside or above it,
// and one that holds anything (ErrWalDirNotEmpty) unless the incomplete marker records it as an
// earlier attempt's. It returns the directories with whether the attempt creates them.
func (n *Node) checkWalDirs(kind string) ([]walDir, error) {
	own, _ := n.readMarker()
	data := absDir(n.Config.DataDir)
	var out []walDir
	for _, w := range n.attemptWalDirs(kind) {
		if err := walDirPlacement(w, data); err != nil {
			return nil, err
		}
		if rec, ok := own.walDir(w); ok {
			out = append(out, rec)
			continue
		}
		empty, exists, err := pg.IsEmptyDir(w)
		if err != nil {
			return nil, fmt.Errorf("while inspecting WAL directory %q: %w", w, err)
		}
		if !empty {
			return nil, fmt.Errorf("%w: %s holds files pgimaged did not create; pgimaged only fills an empty or missing WAL directory, and deletes nothing it did not create: move them away or choose another waldir", ErrWalDirNotEmpty, w)
		}
		out = append(out, walDir{path: filepath.Clean(w), created: !exists})
	}
	return out, nil
}

// walDirPlacement says why w cannot be a separate WAL directory for the data directory data
// (absolute), nil when it can.
func walDirPlacement(w, data string) error {
	if !filepath.IsAbs(w) {
		return fmt.Errorf("WAL directory %q is not an absolute path (initdb and pg_basebackup refuse a relative waldir)", w)
	}
	w = filepath.Clean(w)
	if w == data || strings.HasPrefix(w, data+string(filepath.Separator)) || strings.HasPrefix(data, w+string(filepath.Separator)) || w == "/" {
		return fmt.Errorf("WAL directory %q overlaps data directory %q: choose a directory of its own, outside the data directory", w, data)
	}
	return nil
}

// walDir returns the marker's record of WAL directory p.
func (m marker) walDir(p string) (walDir, bool) {
	for _, w := range m.walDirs {
		if w.path == filepath.Clean(p) {
			return w, true
		}
	}
	return walDir{}, false
}

// markWalDirs records dirs in the incomplete marker, beside those it holds already, before a
// method may write into them.
func (n *Node) markWalDirs(dirs []walDir) error {
	if len(dirs) == 0 {
		return nil
	}
	m, ok := n.readMarker()
	if !ok {
		return errors.New("while recording the WAL directories: the data directory is not marked incomplete")
	}
	for _, d := range dirs {
		if _, ok := m.walDir(d.path); !ok {
			m.walDirs = append(m.walDirs, d)
		}
	}
	return n.writeMarker(m)
}

// cleanWalDirs removes what an attempt put into the WAL directories the incomplete marker
// records: each is emptied, and removed when the attempt created it. The records stay until the
// marker is cleared.
func (n *Node) cleanWalDirs() {
	m, ok := n.readMarker()
	if !ok {
		return
	}
	log := n.logger()
	for _, w := range m.walDirs {
		empty, exists, err := pg.IsEmptyDir(w.path)
		if err == nil && (!exists || empty && !w.created) {
			continue // nothing of the attempt's is there
		}
		if err := pg.EmptyDir(w.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			log.Error("could not empty the WAL directory after a failed attempt", "wal_dir", w.path, "error", err)
			continue
		}
		if w.created {
			if err := os.Remove(w.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				log.Error("could not remove the WAL directory this attempt created", "wal_dir", w.path, "error", err)
				continue
			}
		}
		log.Info("removed what the failed attempt put into the WAL directory", "wal_dir", w.path)
	}
}

// emptyLinkedWalDir empties the directory the data directory's pg_wal links to, if it is a link
// to a directory outside it: the WAL of the cluster a reinit replaces.
func (n *Node) emptyLinkedWalDir() error {
	data := absDir(n.Config.DataDir)
	link := filepath.Join(data, "pg_wal")
	fi, err := os.Lstat(link)
	if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		return nil
	}
	target, err := os.Readlink(link)
	if err != nil {
		return fmt.Errorf("while reading the pg_wal link of %q: %w", data, err)
	}
	if !filepath.IsAbs(target) {
		target = filepath.Join(data, target)
	}
	if walDirPlacement(target, data) != nil {
		return nil
	}
	n.logger().Warn("reinit: emptying the WAL directory pg_wal links to", "wal_dir", target)
	return pg.EmptyDir(target)
}

// planWalDir names in a planned method the separate WAL directory m puts pg_wal in.
func (n *Node) planWalDir(pm *PlannedMethod, m *config.Method) {
	w := n.WalDirOf(m)
	if w == "" {
		return
	}
	pm.WalDir = w
	pm.Notes = append(pm.Notes, fmt.Sprintf("pg_wal goes to the separate WAL directory %s; it must be empty or missing when the attempt begins, and a failed attempt removes what it put there", w))
}

// validateWalDirs checks the separate WAL directories of the methods on paths (all without):
// each must be absolute and apart from the data directory and, unless the data directory holds
// a cluster already (whose WAL it is), empty or missing or pgimaged's own from an earlier
// attempt; a usable one is named in a warning, so that validate shows where WAL goes.
func (n *Node) validateWalDirs(paths ...sdk.Path) hcl.Diagnostics {
	var diags hcl.Diagnostics
	own, _ := n.readMarker()
	data := absDir(n.Config.DataDir)
	inUse := pg.HasCluster(data) && !n.Incomplete()
	var seen []string
	for _, u := range n.methodUses(paths...) {
		w := n.WalDirOf(u.method)
		if w == "" || containsPath(seen, w) {
			continue
		}
		seen = append(seen, w)
		at := func(sev hcl.DiagnosticSeverity, summary, detail string) {
			d := u.method.OptionDiagnostic("waldir", sev, summary, detail)
			if d.Subject == nil || d.Subject.Filename == "" {
				d.Subject = n.subject(u.method, u.ref)
			}
			diags = append(diags, d)
		}
		if err := walDirPlacement(w, data); err != nil {
			at(hcl.DiagError, "Unusable WAL directory", fmt.Sprintf("Method %q: %v.", u.method.Label, err))
			continue
		}
		if _, ok := own.walDir(w); !ok && !inUse {
			if empty, _, err := pg.IsEmptyDir(w); err != nil || !empty {
				detail := fmt.Sprintf("Method %q puts pg_wal in %s, which holds files pgimaged did not create: a bootstrap or clone would refuse it, as it deletes nothing it did not create. Move them away or choose another waldir.", u.method.Label, w)
				if err != nil {
					detail = fmt.Sprintf("Method %q puts pg_wal in %s: %v.", u.method.Label, w, err)
				}
				at(hcl.DiagError, "WAL directory not empty", detail)
				continue
			}
		}
		at(hcl.DiagWarning, "Separate WAL directory", fmt.Sprintf("Method %q puts pg_wal in %s (the data directory holds a link to it). It must be empty or missing when a bootstrap or clone begins; a failed attempt removes what it put there.", u.method.Label, w))
	}
	return diags
}
