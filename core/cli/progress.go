package cli

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/pgimaged/pgimaged/core/dcs"
	"github.com/pgimaged/pgimaged/sdk"
)

// isTerminal reports whether f is a character device (a terminal).
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// progressDisplay draws one progress bar per method and phase on a terminal, with what is done
// (bytes, files or percent, as the plugin counts),
// the rate and the time left. Rate and time left are measured from the method's first progress
// event, not from the bar's last redraw, so a burst of events cannot make them absurd.
//
// The bar renders into nothing; the display draws its last frame itself, in one write, after
// both the text and the value are set, so the two always agree. Log lines written through the
// display (see [progressDisplay.Write]) clear the bar's line first and have the bar redrawn
// below them, so that a log line and the bar never share a line.
type progressDisplay struct {
	mu      sync.Mutex
	w       io.Writer
	bar     *progressbar.ProgressBar
	method  string
	phase   string
	started time.Time // first event of this method and phase
	first   int64     // bytes done at that event
	last    time.Time // last redraw
	ended   bool      // the bar reached its end and drew its last line
	drawn   string    // the frame on the terminal's current line, "" when none
}

func newProgressDisplay(w io.Writer) *progressDisplay { return &progressDisplay{w: w} }

// clearLine takes the cursor to the start of the line and erases the line.
const clearLine = "\r\x1b[K"

// Update is the engine's progress hook.
func (d *progressDisplay) Update(method string, p sdk.Progress) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.bar == nil || method != d.method || p.Phase != d.phase {
		d.finishLocked()
		max := p.Total
		if max <= 0 {
			max = -1 // unknown: a spinner
		}
		d.bar = progressbar.NewOptions64(max,
			progressbar.OptionSetWriter(io.Discard),
			progressbar.OptionSetWidth(30),
			progressbar.OptionThrottle(0),
			progressbar.OptionSetPredictTime(false),
			progressbar.OptionSetDescription(describe(method, p, 0, 0)),
		)
		d.method, d.phase, d.started, d.first, d.last, d.ended = method, p.Phase, time.Now(), p.Done, time.Time{}, false
	}
	if d.ended {
		return // the bar has drawn its last line
	}
	if p.Total > 0 && p.Total != d.bar.GetMax64() {
		d.bar.ChangeMax64(p.Total) // pg_basebackup refines its estimate as it goes
	}
	done := p.Total > 0 && p.Done >= p.Total
	if !done && time.Since(d.last) < 250*time.Millisecond {
		return
	}
	d.last = time.Now()
	d.bar.Describe(describe(method, p, time.Since(d.started), p.Done-d.first))
	_ = d.bar.Set64(p.Done)
	d.drawLocked(d.bar.String())
	if done {
		_, _ = io.WriteString(d.w, "\n")
		d.drawn, d.ended = "", true
	}
}

func (d *progressDisplay) drawLocked(frame string) {
	if frame == "" {
		return
	}
	_, _ = io.WriteString(d.w, clearLine+frame)
	d.drawn = frame
}

// Write writes log output above the bar: it clears the bar's line, writes p and draws the bar
// again below it.
func (d *progressDisplay) Write(p []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.drawn == "" {
		return d.w.Write(p)
	}
	if _, err := io.WriteString(d.w, clearLine); err != nil {
		return 0, err
	}
	n, err := d.w.Write(p)
	if err != nil {
		return n, err
	}
	if len(p) > 0 && p[len(p)-1] != '\n' {
		_, _ = io.WriteString(d.w, "\n")
	}
	_, _ = io.WriteString(d.w, d.drawn)
	return n, nil
}

// describe is the text left of the bar: what runs, how much is done, how fast, how long still.
// A percentage with a known total is left to the bar, which draws it beside itself.
func describe(method string, p sdk.Progress, elapsed time.Duration, moved int64) string {
	head := method
	if p.Phase != "" {
		head += " (" + p.Phase + ")"
	}
	var parts []string
	switch p.Unit {
	case sdk.UnitPercent:
		if p.Total <= 0 {
			parts = append(parts, fmt.Sprintf("%d%%", p.Done))
		}
	case sdk.UnitFiles:
		if p.Total > 0 {
			parts = append(parts, fmt.Sprintf("%d of %d files", p.Done, p.Total))
		} else {
			parts = append(parts, fmt.Sprintf("%d files", p.Done))
		}
	default:
		done := humanBytes(p.Done)
		if p.Total > 0 {
			done += " of " + humanBytes(p.Total)
		}
		parts = append(parts, done)
	}
	if elapsed >= time.Second && moved > 0 {
		rate := float64(moved) / elapsed.Seconds()
		switch p.Unit {
		case sdk.UnitBytes:
			parts = append(parts, humanBytes(int64(rate))+"/s")
		case sdk.UnitFiles:
			parts = append(parts, fmt.Sprintf("%.1f files/s", rate))
		}
		if p.Total > p.Done {
			left := time.Duration(float64(p.Total-p.Done) / rate * float64(time.Second))
			parts = append(parts, left.Round(time.Second).String()+" left")
		}
	}
	if len(parts) == 0 {
		return head
	}
	return head + " " + strings.Join(parts, ", ")
}

// finishLocked ends the current bar's line; a bar that did not reach its end stays where it
// stopped (the method failed or moved to another phase).
func (d *progressDisplay) finishLocked() {
	if d.drawn != "" {
		_, _ = io.WriteString(d.w, "\n")
		d.drawn = ""
	}
	d.bar = nil
}

// Close ends the last bar.
func (d *progressDisplay) Close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.finishLocked()
}

// followPublishedProgress draws, on stderr when it is a terminal, the progress another
// process's method publishes (a member's agent, in its member key): each call hands the latest
// (nil: none; the bar ends). Without a terminal it does nothing.
func followPublishedProgress(e *env) func(*dcs.CloneProgress) {
	f, ok := e.stderr.(*os.File)
	if !ok || !isTerminal(f) {
		return func(*dcs.CloneProgress) {}
	}
	disp := newProgressDisplay(e.stderr)
	return func(p *dcs.CloneProgress) {
		if p == nil {
			disp.Close()
			return
		}
		unit := sdk.UnitBytes
		switch p.Unit {
		case sdk.UnitFiles.String():
			unit = sdk.UnitFiles
		case sdk.UnitPercent.String():
			unit = sdk.UnitPercent
		}
		disp.Update(p.Method, sdk.Progress{Phase: p.Phase, Done: p.Done, Total: p.Total, Unit: unit})
	}
}
