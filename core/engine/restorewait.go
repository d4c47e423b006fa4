package engine

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/pgimaged/pgimaged/core/pg"
)

// ErrRestoreFails is a standby fed by an archive alone whose recovery does not get past one
// WAL position: its restore_command keeps failing.
var ErrRestoreFails = errors.New("the standby leader cannot restore WAL: its restore_command fails")

// restoreRetries is how many times in a row recovery says it waits for WAL at the same position
// before the restore_command is taken as failing (PostgreSQL tries it again every
// wal_retrieve_retry_interval, 5s by default).
const restoreRetries = 3

// waitingForWAL is PostgreSQL's line when neither the archive nor pg_wal gave it the next WAL.
var waitingForWAL = regexp.MustCompile(`LOG:\s+waiting for WAL to become available at (\S+)`)

// serverLine is a line PostgreSQL itself writes (log_line_prefix starts with a timestamp);
// the other lines in its log are the output of the commands it runs, restore_command's included.
var serverLine = regexp.MustCompile(`^\d{4}-\d{2}-\d{2} `)

// restoreStalled reads the lines of the server log written since the start of a standby without a
// primary: when its recovery waited restoreRetries times in a row for WAL at the same position,
// it returns an [ErrRestoreFails] error naming the position and the restore_command's last
// output (its lines that do not continue another, between the last two waits). nil otherwise.
func restoreStalled(lines []string) error {
	var waits []int // line numbers of the waits at the last position
	last := ""
	for i, l := range lines {
		m := waitingForWAL.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		if m[1] != last {
			waits, last = nil, m[1]
		}
		waits = append(waits, i)
	}
	if len(waits) < restoreRetries {
		return nil
	}
	var output []string
	for _, l := range lines[waits[len(waits)-2]+1 : waits[len(waits)-1]] {
		if l = strings.TrimRight(l, "\r"); l != "" && !serverLine.MatchString(l) && !strings.HasPrefix(l, " ") && !strings.HasPrefix(l, "\t") {
			output = append(output, l)
		}
	}
	said := "it writes nothing"
	if len(output) > 0 {
		said = "its output: " + strings.Join(output, " | ")
	}
	return fmt.Errorf("%w (recovery waits for WAL at %s, tried %d times)\n  %s", ErrRestoreFails, last, len(waits), said)
}

// watchRestore returns the context a start of srv and the wait for it to accept connections
// run in. For a standby whose WAL comes from its restore_command alone (archiveOnly), it reads
// the server log from offset on and ends that context with [restoreStalled]'s error when
// recovery does not get past a position, instead of letting PostgreSQL's start wait for as long
// as ctx allows (a hot standby accepts connections only once it is consistent). cause turns the
// error of a step run in it into that error; stop ends the watch.
func (n *Node) watchRestore(ctx context.Context, archiveOnly bool, offset int64) (wctx context.Context, cause func(error) error, stop func()) {
	if !archiveOnly {
		return ctx, func(err error) error { return err }, func() {}
	}
	wctx, cancel := context.WithCancelCause(ctx)
	go func() {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		// With the logging collector on, the messages are in the collector's current file,
		// read from its size when first named (it may be one an earlier start appended to).
		from := map[string]int64{n.ServerLogFile(): offset}
		for {
			select {
			case <-wctx.Done():
				return
			case <-tick.C:
			}
			path, format := n.messageLog()
			if format != logStderr {
				path = n.ServerLogFile()
			}
			if _, seen := from[path]; !seen {
				from[path] = pg.LogSize(path)
			}
			if err := restoreStalled(pg.LogSince(path, from[path], 400)); err != nil {
				cancel(err)
				return
			}
		}
	}()
	cause = func(err error) error {
		if c := context.Cause(wctx); err != nil && ctx.Err() == nil && errors.Is(c, ErrRestoreFails) {
			return c
		}
		return err
	}
	return wctx, cause, func() { cancel(nil) }
}
