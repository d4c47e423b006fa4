package plugin

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	hostproc "github.com/pgimaged/pgimaged/core/plugin/host/proc"
	"github.com/pgimaged/pgimaged/sdk"
)

// ErrTimeout means the method ran past its timeout and was stopped.
var ErrTimeout = errors.New("method timed out")

// KillGrace is how long a plugin has to end a cancelled call, and the processes it started,
// before it is killed with everything it started.
var KillGrace = 10 * time.Second

// watchInterval is how often the plugin's process tree is read while a call runs; every tenth
// time, all processes of the system are read (see Instance.track and hostproc.Watch).
var watchInterval = 200 * time.Millisecond

// Clone runs a clone on the instance. timeout (0: none) bounds the whole call; when it passes or
// ctx ends, the plugin is asked to stop and given KillGrace to end its processes, then it is
// killed with everything it started. Whatever the outcome, Clone returns only once no process
// the plugin started during the call remains. Deprecated option names are sent as the names of
// their options.
func (i *Instance) Clone(ctx context.Context, req sdk.CloneRequest, rep sdk.Reporter, timeout time.Duration) (sdk.Result, error) {
	req.Options = i.Info.Schema.Canonical(req.Options)
	return i.call(ctx, timeout, func(ctx context.Context) (sdk.Result, error) { return i.Client.Clone(ctx, req, rep) })
}

// Bootstrap runs a bootstrap on the instance, with the same timeout and process rules as Clone.
func (i *Instance) Bootstrap(ctx context.Context, req sdk.BootstrapRequest, rep sdk.Reporter, timeout time.Duration) (sdk.Result, error) {
	req.Options = i.Info.Schema.Canonical(req.Options)
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
	stopWatch := i.watch()
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
	var endErr error
	returned := false
	select {
	case o = <-done:
		returned = true
	case <-cctx.Done():
	}
	if cctx.Err() != nil {
		// The client side of a cancelled call returns at once, whatever the plugin does. The
		// plugin has KillGrace to end what it started; then it is killed with all of it, so
		// that nothing the method started outlives the call.
		i.awaitQuiet(KillGrace)
		stopWatch()
		endErr = i.End()
		if !returned {
			o = <-done
		}
	} else {
		stopWatch()
		endErr = i.endLeftovers()
	}
	if endErr != nil {
		endErr = fmt.Errorf("while ending the processes plugin %s started: %w", i.Name, endErr)
	}
	switch {
	case o.err == nil && endErr == nil:
		return o.res, nil
	case o.err == nil:
		return sdk.Result{}, endErr
	case timedOut.Load():
		return sdk.Result{}, errors.Join(fmt.Errorf("%w after %s: %w", ErrTimeout, timeout, o.err), endErr)
	case ctx.Err() != nil:
		return sdk.Result{}, errors.Join(fmt.Errorf("%w: %w", ctx.Err(), o.err), endErr)
	}
	return sdk.Result{}, errors.Join(i.Failure(o.err), endErr)
}

// roots are the plugin process and every process seen in its tree, for treeOf.
func (i *Instance) roots() map[int]uint64 {
	i.mu.Lock()
	defer i.mu.Unlock()
	r := make(map[int]uint64, len(i.seen)+1)
	for pid, p := range i.seen {
		r[pid] = p.Start
	}
	if i.pid > 0 {
		r[i.pid] = i.start
	}
	return r
}

// track reads the plugin's tree, remembers what it finds and returns the processes other than
// the plugin itself that run now. With full unset it follows the tree through the children
// files only, which costs in proportion to the tree rather than to the system; a full scan also
// finds what left the tree into a process group or session one of its processes leads.
func (i *Instance) track(full bool) map[int]hostproc.Process {
	var tree map[int]hostproc.Process
	if !full {
		var ok bool
		if tree, ok = hostproc.Walk(i.roots()); !ok {
			full = true
		}
	}
	if full {
		tree = treeOf(hostproc.Scan(), i.roots())
	}
	delete(tree, i.pid)
	i.mu.Lock()
	changed := false
	for pid, p := range tree {
		if _, ok := i.seen[pid]; !ok {
			i.seen[pid] = p
			changed = true
		}
	}
	for pid, p := range i.seen {
		if _, ok := tree[pid]; !ok {
			if _, alive := hostproc.Alive(pid, p.Start); !alive {
				delete(i.seen, pid)
				changed = true
			}
		}
	}
	i.mu.Unlock()
	if changed {
		i.writeRecord()
	}
	return tree
}

// writeRecord replaces the process record with the plugin and what it runs now.
func (i *Instance) writeRecord() {
	if i.record == "" {
		return
	}
	r := record{Owner: os.Getpid(), Boot: bootID(), Plugin: i.Name}
	if self, ok := hostproc.Read(os.Getpid()); ok {
		r.OwnerStart = self.Start
	}
	if i.pid > 0 {
		r.Processes = append(r.Processes, hostproc.Process{PID: i.pid, Start: i.start, Comm: i.Name})
	}
	i.mu.Lock()
	for _, p := range i.seen {
		r.Processes = append(r.Processes, p)
	}
	i.mu.Unlock()
	i.recorded.Store(true)
	if err := writeRecord(i.record, r); err != nil {
		i.logger.Error("could not record the processes of a running method", "error", err)
	}
}

// watch writes the process record at once and keeps it up to date until the returned function
// is called.
func (i *Instance) watch() (stop func()) {
	i.writeRecord()
	return hostproc.Watch(watchInterval, func(full bool) { i.track(full) })
}

// awaitQuiet waits until the plugin runs no process of its own, at most grace.
func (i *Instance) awaitQuiet(grace time.Duration) {
	deadline := time.Now().Add(grace)
	for len(i.track(true)) > 0 && time.Now().Before(deadline) && !i.gp.Exited() {
		time.Sleep(50 * time.Millisecond)
	}
}

// endLeftovers ends what the plugin left running after a call that ended (the plugin stays)
// and removes the process record.
func (i *Instance) endLeftovers() error {
	spare := map[int]bool{}
	if i.pid > 0 {
		spare[i.pid] = true
	}
	killed, err := endTree(i.roots(), spare)
	if len(killed) > 0 {
		i.logger.Warn("killed processes the method left running", "count", len(killed), "processes", fmt.Sprint(killed))
	}
	if err != nil {
		return err
	}
	i.mu.Lock()
	i.seen = map[int]hostproc.Process{}
	i.mu.Unlock()
	if i.record != "" && i.recorded.Load() {
		return removeRecord(i.record)
	}
	return nil
}

// endAll ends the plugin and everything it started: first what it started, while the plugin
// lives and, as their child subreaper, keeps them in its tree; then the plugin, asked to exit;
// then anything of its tree still there.
func (i *Instance) endAll() error {
	if i.pid <= 0 {
		i.gp.Kill()
		return nil
	}
	_, err1 := endTree(i.roots(), map[int]bool{i.pid: true})
	i.gp.Kill()
	_, err2 := endTree(i.roots(), nil)
	_ = syscall.Kill(-i.pid, syscall.SIGKILL) // the plugin's group: nothing should be left there
	return errors.Join(err1, err2)
}

// LogLevel is the hclog level of a plugin's log line.
func LogLevel(l sdk.Level) hclog.Level {
	switch l {
	case sdk.LevelTrace:
		return hclog.Trace
	case sdk.LevelDebug:
		return hclog.Debug
	case sdk.LevelWarn:
		return hclog.Warn
	case sdk.LevelError:
		return hclog.Error
	}
	return hclog.Info
}
