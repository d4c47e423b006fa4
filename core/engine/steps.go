package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/pgimaged/pgimaged/core/pg"
)

// StepError is a failure in one step of a bootstrap or clone, with the tail of the log that
// explains it (PostgreSQL's log for a server step, the method's output for a method step).
type StepError struct {
	Step    string
	Err     error
	LogTail []string
}

func (e *StepError) Error() string {
	msg := e.Step + ": " + e.Err.Error()
	if n := len(e.LogTail); n > 0 {
		tail := e.LogTail
		if n > 5 {
			tail = tail[n-5:]
		}
		msg += "\n  last log lines:\n    " + strings.Join(tail, "\n    ")
	}
	return msg
}

func (e *StepError) Unwrap() error { return e.Err }

// attempt tracks what one bootstrap or clone created, so a failure can undo exactly that.
type attempt struct {
	node       *Node
	dir        string
	createdDir bool // the data directory did not exist before
	srv        *pg.Server
	started    bool
}

// undo stops the server this attempt started and removes what the attempt created: the data
// directory itself if it made it, else the contents it put into a directory that was empty, and
// what it put into the separate WAL directories the incomplete marker records.
func (a *attempt) undo() {
	log := a.node.logger()
	if a.started && a.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		if err := a.srv.Stop(ctx, "immediate"); err != nil && !errors.Is(err, pg.ErrNotRunning) {
			log.Error("could not stop PostgreSQL after a failed attempt", "error", err)
		}
		cancel()
	}
	a.node.cleanWalDirs()
	if a.createdDir {
		if err := os.RemoveAll(a.dir); err != nil {
			log.Error("could not remove the data directory this attempt created", "dir", a.dir, "error", err)
		} else {
			log.Info("removed the data directory this attempt created", "dir", a.dir)
		}
		return
	}
	if err := pg.EmptyDir(a.dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		log.Error("could not empty the data directory after a failed attempt", "dir", a.dir, "error", err)
	} else {
		log.Info("emptied the data directory after a failed attempt", "dir", a.dir)
	}
}

// serverTail is the end of PostgreSQL's log, for a StepError.
func (a *attempt) serverTail() []string {
	if a.srv == nil {
		return nil
	}
	return a.srv.LogTail(10)
}

func stepErr(step string, err error, tail []string) error {
	if err == nil {
		return nil
	}
	var se *StepError
	if errors.As(err, &se) {
		return err
	}
	return &StepError{Step: step, Err: err, LogTail: tail}
}

// checkDataDir refuses a data directory that an attempt must not fill: one inside another
// cluster's data directory (ErrInsideCluster), one that already holds a cluster
// (ErrHasCluster), and a non-empty one that pgimaged did not mark as its own leftover
// (ErrDataDirNotEmpty, naming a cluster found at any depth below it). Marked leftovers (see
// [Node.Leftover]) pass: they are pgimaged's own. It reports whether the directory exists.
func (n *Node) checkDataDir() (exists bool, err error) {
	dir := n.Config.DataDir
	if above, err := pg.ClusterAbove(dir); err != nil {
		return false, err
	} else if above != "" {
		return false, fmt.Errorf("%w: %s is inside the cluster in %s; choose a data directory outside it", ErrInsideCluster, dir, above)
	}
	empty, exists, err := pg.IsEmptyDir(dir)
	if err != nil {
		return false, err
	}
	if n.Incomplete() {
		return exists, nil
	}
	if pg.HasCluster(dir) {
		return exists, fmt.Errorf("%w: %s", ErrHasCluster, dir)
	}
	if exists && !empty {
		what := "files pgimaged did not create"
		if below, complete, err := pg.ClusterBelow(dir); err == nil && below != "" {
			what = "the PostgreSQL cluster in " + below
		} else if err == nil && !complete {
			what = "files pgimaged did not create (a large tree)"
		}
		return exists, fmt.Errorf("%w: %s holds %s; pgimaged only fills an empty or missing directory, and deletes nothing it did not create: move them away or choose another data_dir", ErrDataDirNotEmpty, dir, what)
	}
	return exists, nil
}

// IsRefusal reports whether err is a refusal to touch the data directory or a separate WAL
// directory (ErrHasCluster, ErrDataDirNotEmpty, ErrInsideCluster, ErrWalDirNotEmpty): waiting or
// retrying cannot fix it, an operator must.
func IsRefusal(err error) bool {
	return errors.Is(err, ErrHasCluster) || errors.Is(err, ErrDataDirNotEmpty) || errors.Is(err, ErrInsideCluster) || errors.Is(err, ErrWalDirNotEmpty)
}
