package plugin

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/pgimaged/pgimaged/sdk"
)

// ErrTimeout: the method ran past its timeout and was stopped.
var ErrTimeout = errors.New("method timed out")

// KillGrace is how long a plugin has to end a cancelled call before its process is killed.
var KillGrace = 10 * time.Second

// Clone runs a clone on the instance. timeout (0: none) bounds the whole call; when it passes or
// ctx ends, the plugin is asked to stop and, if it has not returned within KillGrace, killed with
// its process group.
func (i *Instance) Clone(ctx context.Context, req sdk.CloneRequest, rep sdk.Reporter, timeout time.Duration) (sdk.Result, error) {
	return i.call(ctx, timeout, func(ctx context.Context) (sdk.Result, error) { return i.Client.Clone(ctx, req, rep) })
}

// Bootstrap runs a bootstrap on the instance, with the same timeout rules as Clone.
func (i *Instance) Bootstrap(ctx context.Context, req sdk.BootstrapRequest, rep sdk.Reporter, timeout time.Duration) (sdk.Result, error) {
	return i.call(ctx, timeout, func(ctx context.Context) (sdk.Result, error) { return i.Client.Bootstrap(ctx, req, rep) })
}

func (i *Instance) call(ctx context.Context, timeout time.Duration, f func(context.Context) (sdk.Result, error)) (sdk.Result, error) {
	// The timeout is ours, not gRPC's: a deadline sent along would make the plugin's side
	// cancel on its own clock, and the call could end before this side knew it timed out.
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var timedOut atomic.Bool
	if timeout > 0 {
		t := time.AfterFunc(timeout, func() {
			timedOut.Store(true)
			cancel()
		})
		defer t.Stop()
	}
	type out struct {
		res sdk.Result
		err error
	}
	done := make(chan out, 1)
	go func() {
		r, err := f(cctx)
		done <- out{r, err}
	}()
	var o out
	select {
	case o = <-done:
	case <-cctx.Done():
		t := time.NewTimer(KillGrace)
		select {
		case o = <-done:
			t.Stop()
		case <-t.C:
			i.Kill()
			o = <-done
		}
	}
	if cctx.Err() != nil {
		// The client side of a cancelled call returns at once, whatever the plugin does; make
		// sure the plugin and what it started are gone before the caller touches the data
		// directory again.
		i.Kill()
	}
	switch {
	case o.err == nil:
		return o.res, nil
	case timedOut.Load():
		return sdk.Result{}, fmt.Errorf("%w after %s: %w", ErrTimeout, timeout, o.err)
	case ctx.Err() != nil:
		return sdk.Result{}, fmt.Errorf("%w: %w", ctx.Err(), o.err)
	}
	return sdk.Result{}, i.Failure(o.err)
}
