package plugin

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/go-hclog"
	hostproc "github.com/pgimaged/pgimaged/core/plugin/host/proc"
)

// record is what a process record file holds: the processes a running method had started, as
// seen by the pgimaged that ran it, so that the next pgimaged can end them if that one was
// killed without a chance to do so.
type record struct {
	// Owner is the pgimaged that wrote the record, Boot the machine's boot it ran in.
	Owner      int                `json:"owner"`
	OwnerStart uint64             `json:"owner_start"`
	Boot       string             `json:"boot"`
	Plugin     string             `json:"plugin"`
	Processes  []hostproc.Process `json:"processes"`
}

// writeRecord replaces the record at path atomically (a new file renamed over the old one).
func writeRecord(path string, r record) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("while writing process record %q: %w", path, err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("while writing process record %q: %w", path, err)
	}
	tmp := f.Name()
	// No fsync: the record is for a pgimaged that is killed, not a machine that stops (after a
	// reboot nothing of it runs, see Boot).
	_, werr := f.Write(append(b, '\n'))
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp, path)
	}
	if werr != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("while writing process record %q: %w", path, werr)
	}
	return nil
}

// ErrRecordInUse means the process record belongs to a pgimaged that still runs.
var ErrRecordInUse = errors.New("the process record belongs to a running pgimaged")

// EndRecorded ends what a method run by an earlier pgimaged left running: it reads the process
// record at path (see [Catalog.ProcessRecord]), kills every listed process that still runs with
// the start time recorded, together with its descendants and the members of process groups and
// sessions it leads, waits until they are gone, and removes the record. A pid now used by
// another program (its start time differs) is left alone. No record: nothing to do.
//
// A record whose writer still runs is refused with [ErrRecordInUse]: callers hold the data
// directory's lock first, so that this does not happen.
func EndRecorded(path string, logger hclog.Logger) (killed int, err error) {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("while reading process record %q: %w", path, err)
	}
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		// A record cut short cannot be trusted for pids; it is kept for the operator to read.
		return 0, fmt.Errorf("while reading process record %q: %w", path, err)
	}
	if boot := bootID(); r.Boot != "" && boot != "" && r.Boot != boot {
		logger.Info("removing a process record of an earlier boot", "record", path)
		return 0, removeRecord(path)
	}
	if r.Owner != 0 && r.Owner != os.Getpid() {
		if _, alive := hostproc.Alive(r.Owner, r.OwnerStart); alive {
			return 0, fmt.Errorf("%w: %q was written by pid %d, which still runs", ErrRecordInUse, path, r.Owner)
		}
	}
	roots := map[int]uint64{}
	for _, p := range r.Processes {
		if p.PID > 1 && p.PID != os.Getpid() {
			roots[p.PID] = p.Start
		}
	}
	gone, err := endTree(roots, nil)
	if len(gone) > 0 {
		names := make([]string, 0, len(gone))
		for _, p := range gone {
			names = append(names, fmt.Sprintf("%d (%s)", p.PID, p.Comm))
		}
		sort.Strings(names)
		logger.Warn("killed processes an earlier pgimaged left running", "record", path, "plugin", r.Plugin,
			"count", len(gone), "processes", strings.Join(names, ", "))
	}
	if err != nil {
		return len(gone), fmt.Errorf("while ending the processes recorded in %q: %w", path, err)
	}
	return len(gone), removeRecord(path)
}

func removeRecord(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("while removing process record %q: %w", path, err)
	}
	return nil
}
