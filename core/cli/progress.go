package cli

import (
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

// progressDisplay draws one progress bar per method on a terminal: bytes, rate and ETA.
type progressDisplay struct {
	mu     sync.Mutex
	w      io.Writer
	bar    *progressbar.ProgressBar
	method string
	phase  string
	total  int64
}

func newProgressDisplay(w io.Writer) *progressDisplay { return &progressDisplay{w: w} }

// Update is the engine's progress hook.
func (d *progressDisplay) Update(method string, p sdk.Progress) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.bar == nil || method != d.method || p.Phase != d.phase || (p.Total > 0 && p.Total != d.total) {
		d.finishLocked()
		max := p.Total
		if max <= 0 {
			max = -1 // unknown: a spinner with bytes and rate
		}
		desc := method
		if p.Phase != "" {
			desc += " (" + p.Phase + ")"
		}
		d.bar = progressbar.NewOptions64(max,
			progressbar.OptionSetWriter(d.w),
			progressbar.OptionSetDescription(desc),
			progressbar.OptionShowBytes(true),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionShowCount(),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionSetWidth(30),
			progressbar.OptionOnCompletion(func() { _, _ = io.WriteString(d.w, "\n") }),
		)
		d.method, d.phase, d.total = method, p.Phase, p.Total
	}
	_ = d.bar.Set64(p.Done)
}

func (d *progressDisplay) finishLocked() {
	if d.bar != nil && !d.bar.IsFinished() {
		_ = d.bar.Finish()
	}
	d.bar = nil
}

// Close ends the last bar.
func (d *progressDisplay) Close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.finishLocked()
}
