package cli

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"

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
}

func newProgressDisplay(w io.Writer) *progressDisplay { return &progressDisplay{w: w} }

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
			progressbar.OptionSetWriter(d.w),
			progressbar.OptionSetWidth(30),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionSetPredictTime(false),
			progressbar.OptionSetDescription(describe(method, p, 0, 0)),
			progressbar.OptionOnCompletion(func() { _, _ = io.WriteString(d.w, "\n") }),
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
	desc := describe(method, p, time.Since(d.started), p.Done-d.first)
	if done {
		// Reaching the end draws the bar a last time and ends its line: describe it first.
		d.bar.Describe(desc)
		_ = d.bar.Set64(p.Done)
		d.ended = true
		return
	}
	_ = d.bar.Set64(p.Done)
	d.bar.Describe(desc)
}

// describe is the text left of the bar: what runs, how much is done, how fast, how long still.
func describe(method string, p sdk.Progress, elapsed time.Duration, moved int64) string {
	s := method
	if p.Phase != "" {
		s += " (" + p.Phase + ")"
	}
	switch p.Unit {
	case sdk.UnitPercent:
		s += fmt.Sprintf(" %d%%", p.Done)
	case sdk.UnitFiles:
		if p.Total > 0 {
			s += fmt.Sprintf(" %d of %d files", p.Done, p.Total)
		} else {
			s += fmt.Sprintf(" %d files", p.Done)
		}
	default:
		s += " " + humanBytes(p.Done)
		if p.Total > 0 {
			s += " of " + humanBytes(p.Total)
		}
	}
	if elapsed >= time.Second && moved > 0 {
		rate := float64(moved) / elapsed.Seconds()
		switch p.Unit {
		case sdk.UnitBytes:
			s += fmt.Sprintf(", %s/s", humanBytes(int64(rate)))
		case sdk.UnitFiles:
			s += fmt.Sprintf(", %.1f files/s", rate)
		}
		if p.Total > p.Done {
			left := time.Duration(float64(p.Total-p.Done) / rate * float64(time.Second))
			s += ", " + left.Round(time.Second).String() + " left"
		}
	}
	return s
}

// finishLocked ends the current bar's line; a bar that did not reach its end stays where it
// stopped (the method failed or moved to another phase).
func (d *progressDisplay) finishLocked() {
	if d.bar != nil && !d.ended {
		_ = d.bar.Exit()
	}
	d.bar = nil
}

// Close ends the last bar.
func (d *progressDisplay) Close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.finishLocked()
}
