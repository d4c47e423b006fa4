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
	last   time.Time
}

func newProgressDisplay(w io.Writer) *progressDisplay { return &progressDisplay{w: w} }

// Update is the engine's progress hook.
func (d *progressDisplay) Update(method string, p sdk.Progress) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.bar != nil && method == d.method && p.Phase == d.phase && p.Total > 0 && p.Total != d.total {
		// pg_basebackup refines its estimate as it goes: same bar, new end.
		d.bar.ChangeMax64(p.Total)
		d.total = p.Total
	}
	if d.bar == nil || method != d.method || p.Phase != d.phase {
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
		d.last = time.Time{}
	}
	// The bar's rate is bytes over the time between updates: updates microseconds apart (a
	// burst, or the final event) would show absurd rates, so take at most four a second.
	if time.Since(d.last) < 250*time.Millisecond && (p.Total <= 0 || p.Done < p.Total) {
		return
	}
	d.last = time.Now()
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
