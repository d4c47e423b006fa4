package engine

import (
	"bytes"
	"context"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/pgimaged/pgimaged/core/dcs"
)

// Phases of a bootstrap's or a clone's critical path ([dcs.CriticalPath]), in the order they
// happen. docs/operations.md says what each one spans.
const (
	PhaseAgentStart           = "agent_start"           // process start until the agent first read the DCS
	PhaseInitialize           = "initialize"            // taking the initialize key until won
	PhaseLeaderSeen           = "leader_seen"           // agent ready until a leader to clone from is seen
	PhasePluginLaunch         = "plugin_launch"         // starting the method's plugin until it answers
	PhaseMethod               = "method"                // the bootstrap method (initdb...)
	PhaseCloneMethod          = "clone_method"          // one attempt of a replica method (pg_basebackup...)
	PhasePostgresStart        = "postgres_start"        // starting PostgreSQL until pg_ctl returns
	PhaseAcceptingConnections = "accepting_connections" // until it accepts connections and any recovery ended
	PhaseRoles                = "roles"                 // superuser and replication roles, post_bootstrap
	PhaseCheckpoint           = "checkpoint"            // the new primary's checkpoint, before it is published
	PhaseStandbyStart         = "standby_start"         // standby settings, start, until it accepts connections
	PhaseStreaming            = "streaming"             // until the WAL receiver streams
	PhasePublished            = "published"             // writing the leader and member keys
)

// timeline records the phases of one bootstrap or clone as they end, each logged at DEBUG.
// A nil timeline records nothing.
type timeline struct {
	log  hclog.Logger
	mu   sync.Mutex
	path dcs.CriticalPath
}

type timelineKey struct{}

// timelineOf is the timeline ctx carries, nil if none.
func timelineOf(ctx context.Context) *timeline {
	tl, _ := ctx.Value(timelineKey{}).(*timeline)
	return tl
}

// withTimeline is ctx carrying the timeline of kind it already carries, else a new one.
func (n *Node) withTimeline(ctx context.Context, kind string) (context.Context, *timeline) {
	if tl := timelineOf(ctx); tl != nil && tl.path.Kind == kind {
		return ctx, tl
	}
	tl := &timeline{log: n.logger(), path: dcs.CriticalPath{Kind: kind}}
	return context.WithValue(ctx, timelineKey{}, tl), tl
}

// since records the phase name from start until now.
func (t *timeline) since(name string, start time.Time) { t.span(name, "", start, time.Now()) }

// span records a phase that ended; method names the method a plugin_launch, method or
// clone_method ran.
func (t *timeline) span(name, method string, start, end time.Time) {
	if t == nil || start.IsZero() {
		return
	}
	p := dcs.Phase{Name: name, Method: method, Start: start, End: end}
	t.mu.Lock()
	t.path.Phases = append(t.path.Phases, p)
	t.mu.Unlock()
	kv := []any{"name", name, "seconds", p.Seconds()}
	if method != "" {
		kv = append(kv, "method", method)
	}
	t.log.Debug("phase", kv...)
}

// prepend puts phases that ended (and were logged) before this timeline began in front of it.
func (t *timeline) prepend(ps ...dcs.Phase) {
	if t == nil {
		return
	}
	t.mu.Lock()
	t.path.Phases = append(append([]dcs.Phase(nil), ps...), t.path.Phases...)
	t.mu.Unlock()
}

// result is a copy of what was recorded.
func (t *timeline) result() *dcs.CriticalPath {
	if t == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return &dcs.CriticalPath{Kind: t.path.Kind, Phases: append([]dcs.Phase(nil), t.path.Phases...)}
}

var initTime = time.Now()

// ProcessStart is when this process started, as the kernel counts it (to its clock tick), or
// when this package was initialized if that is earlier or unknown.
func ProcessStart() time.Time {
	stat, err1 := os.ReadFile("/proc/self/stat")
	uptime, err2 := os.ReadFile("/proc/uptime")
	now := time.Now()
	if err1 != nil || err2 != nil {
		return initTime
	}
	// Field 22, after the parenthesized command name, is the start in clock ticks since boot.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return initTime
	}
	fields := bytes.Fields(stat[i+1:])
	up := bytes.Fields(uptime)
	if len(fields) < 20 || len(up) < 1 {
		return initTime
	}
	ticks, err1 := strconv.ParseInt(string(fields[19]), 10, 64)
	upSec, err2 := strconv.ParseFloat(string(up[0]), 64)
	if err1 != nil || err2 != nil {
		return initTime
	}
	const clockTicks = 100 // USER_HZ on Linux
	age := time.Duration((upSec - float64(ticks)/clockTicks) * float64(time.Second))
	if start := now.Add(-age); age >= 0 && start.Before(initTime) {
		return start
	}
	return initTime
}
