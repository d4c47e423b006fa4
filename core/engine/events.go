package engine

import (
	"context"
	"time"

	"github.com/pgimaged/pgimaged/core/dcs"
	"github.com/pgimaged/pgimaged/sdk"
)

// Attempt kinds passed to [Events.AttemptEnded].
const (
	KindBootstrap = "bootstrap"
	KindClone     = "clone"
)

// Events observes what the engine does, for metrics. Every method is called synchronously from
// the engine's goroutine and must return quickly. A Node without Events reports nothing.
type Events interface {
	// AttemptEnded is called when one attempt of a bootstrap or replica method ends; kind is
	// KindBootstrap or KindClone, bytes what the method reported having copied (0 if it did not
	// report bytes).
	AttemptEnded(kind string, att dcs.Attempt, bytes int64)
	// PluginLaunched is called after the plugin that runs method was started (err nil) or
	// could not be (err set); took is how long the launch took.
	PluginLaunched(method string, took time.Duration, err error)
	// DCSError is called when the agent could not read or write the DCS.
	DCSError(err error)
}

// ChangeEvents is what an [Events] may implement as well, to observe changes of primary and
// rejoins; the engine finds it by a type assertion.
type ChangeEvents interface {
	// ChangeDone is called on the member that took over, once a change of primary of kind has
	// ended with it promoted, holding the leader key and the switch recorded.
	ChangeDone(kind ChangeKind)
	// RejoinEnded is called for each attempt of a rejoin method once its outcome is final (a
	// method that succeeded but whose standby did not stream counts as failed).
	RejoinEnded(att dcs.Attempt)
}

func (n *Node) changeDone(kind ChangeKind) {
	if ev, ok := n.Events.(ChangeEvents); ok {
		ev.ChangeDone(kind)
	}
}

func (n *Node) rejoinsEnded(atts []dcs.Attempt) {
	if ev, ok := n.Events.(ChangeEvents); ok {
		for _, att := range atts {
			ev.RejoinEnded(att)
		}
	}
}

func (n *Node) attemptEnded(kind string, att dcs.Attempt, bytes int64) {
	if n.Events != nil {
		n.Events.AttemptEnded(kind, att, bytes)
	}
}

// launch starts the plugin that runs method and reports the launch to Events.
func (n *Node) launch(ctx context.Context, method, pluginName string) (PluginInstance, error) {
	start := time.Now()
	inst, err := n.plugins().Launch(ctx, pluginName)
	if n.Events != nil {
		n.Events.PluginLaunched(method, time.Since(start), err)
	}
	return inst, err
}

// bytesDone is the largest byte count the method reported in its progress.
func (r *methodReporter) bytesDone() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.bytes
}

func (r *methodReporter) noteProgress(p sdk.Progress) {
	if p.Unit != sdk.UnitBytes || p.Done <= 0 {
		return
	}
	r.mu.Lock()
	r.bytes = max(r.bytes, p.Done)
	r.mu.Unlock()
}
