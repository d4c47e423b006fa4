package api

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/pgimaged/pgimaged/core/dcs"
	"github.com/pgimaged/pgimaged/core/engine"
)

// Metrics is pgimaged's Prometheus metrics in a registry of its own: what the engine reports
// through [engine.Events] (attempts, plugin launches, DCS errors) and, at each scrape, the
// member's snapshot. Every series carries the labels scope and member; per-method series also
// method.
type Metrics struct {
	reg *prometheus.Registry

	attempts, successes, failures map[string]*prometheus.CounterVec
	durations                     map[string]*prometheus.HistogramVec
	lastSuccess, lastFailure      map[string]*prometheus.GaugeVec
	cloneBytes                    *prometheus.CounterVec
	launches, launchFailures      *prometheus.CounterVec
	launchTime                    *prometheus.HistogramVec
	dcsErrors                     prometheus.Counter
	changes                       map[engine.ChangeKind]prometheus.Counter
	rejoins                       *prometheus.CounterVec
	rejoinTime                    *prometheus.HistogramVec
}

var (
	_ engine.Events       = (*Metrics)(nil)
	_ engine.ChangeEvents = (*Metrics)(nil)
)

// NewMetrics makes the metrics of member name in scope; snapshot is read at each scrape.
func NewMetrics(scope, name string, snapshot func() engine.Snapshot) *Metrics {
	m := &Metrics{
		reg:       prometheus.NewRegistry(),
		attempts:  map[string]*prometheus.CounterVec{},
		successes: map[string]*prometheus.CounterVec{},
		failures:  map[string]*prometheus.CounterVec{}, durations: map[string]*prometheus.HistogramVec{},
		lastSuccess: map[string]*prometheus.GaugeVec{}, lastFailure: map[string]*prometheus.GaugeVec{},
	}
	r := prometheus.WrapRegistererWith(prometheus.Labels{"scope": scope, "member": name}, m.reg)
	method := []string{"method"}
	for _, kind := range []string{engine.KindBootstrap, engine.KindClone} {
		m.attempts[kind] = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pgimaged_" + kind + "_attempts_total",
			Help: "Attempts of " + kind + " methods, ended, by method."}, method)
		m.successes[kind] = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pgimaged_" + kind + "_successes_total",
			Help: "Attempts of " + kind + " methods that succeeded, by method."}, method)
		m.failures[kind] = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pgimaged_" + kind + "_failures_total",
			Help: "Attempts of " + kind + " methods that failed, by method."}, method)
		m.durations[kind] = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "pgimaged_" + kind + "_duration_seconds",
			Help:    "How long attempts of " + kind + " methods took, by method.",
			Buckets: []float64{1, 5, 15, 30, 60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 24 * 3600}}, method)
		m.lastSuccess[kind] = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "pgimaged_" + kind + "_last_success_timestamp_seconds",
			Help: "When the last successful attempt of a " + kind + " method ended, in Unix seconds, by method."}, method)
		m.lastFailure[kind] = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "pgimaged_" + kind + "_last_failure_timestamp_seconds",
			Help: "When the last failed attempt of a " + kind + " method ended, in Unix seconds, by method."}, method)
		r.MustRegister(m.attempts[kind], m.successes[kind], m.failures[kind], m.durations[kind], m.lastSuccess[kind], m.lastFailure[kind])
	}
	m.cloneBytes = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pgimaged_clone_bytes_total",
		Help: "Bytes replica methods reported having copied, by method."}, method)
	m.launches = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pgimaged_plugin_launches_total",
		Help: "Plugin launches for a method, by method."}, method)
	m.launchFailures = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pgimaged_plugin_launch_failures_total",
		Help: "Plugin launches for a method that failed, by method."}, method)
	m.launchTime = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "pgimaged_plugin_launch_duration_seconds",
		Help: "How long launching a method's plugin took, by method.", Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}}, method)
	m.dcsErrors = prometheus.NewCounter(prometheus.CounterOpts{Name: "pgimaged_dcs_errors_total",
		Help: "Failed reads and writes of the DCS, and lost sessions."})
	r.MustRegister(m.cloneBytes, m.launches, m.launchFailures, m.launchTime, m.dcsErrors)
	m.changes = map[engine.ChangeKind]prometheus.Counter{
		engine.Switchover: prometheus.NewCounter(prometheus.CounterOpts{Name: "pgimaged_switchovers_total",
			Help: "Switchovers that ended with this member as the primary."}),
		engine.Failover: prometheus.NewCounter(prometheus.CounterOpts{Name: "pgimaged_failovers_total",
			Help: "Failovers that ended with this member as the primary."}),
	}
	m.rejoins = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pgimaged_rejoins_total",
		Help: "Attempts of rejoin methods on this member's own data directory, by method and outcome (success, failure)."},
		[]string{"method", "outcome"})
	m.rejoinTime = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "pgimaged_rejoin_duration_seconds",
		Help:    "How long attempts of rejoin methods took, by method.",
		Buckets: []float64{1, 5, 15, 30, 60, 300, 900, 1800, 3600, 3 * 3600}}, method)
	r.MustRegister(m.changes[engine.Switchover], m.changes[engine.Failover], m.rejoins, m.rejoinTime)
	if snapshot != nil {
		r.MustRegister(&snapshotCollector{snapshot: snapshot})
		r.MustRegister(&standbyCollector{snapshot: snapshot}) // metrics_standby.go
	}
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry is the private registry the metrics live in.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// AttemptEnded counts one ended attempt of a bootstrap or replica method.
func (m *Metrics) AttemptEnded(kind string, att dcs.Attempt, bytes int64) {
	if m.attempts[kind] == nil {
		return
	}
	end := float64(att.Started.Add(att.Duration).UnixNano()) / 1e9
	m.attempts[kind].WithLabelValues(att.Method).Inc()
	m.durations[kind].WithLabelValues(att.Method).Observe(att.Duration.Seconds())
	if att.OK {
		m.successes[kind].WithLabelValues(att.Method).Inc()
		m.lastSuccess[kind].WithLabelValues(att.Method).Set(end)
	} else {
		m.failures[kind].WithLabelValues(att.Method).Inc()
		m.lastFailure[kind].WithLabelValues(att.Method).Set(end)
	}
	if kind == engine.KindClone && bytes > 0 {
		m.cloneBytes.WithLabelValues(att.Method).Add(float64(bytes))
	}
}

// PluginLaunched counts one launch of a method's plugin.
func (m *Metrics) PluginLaunched(method string, took time.Duration, err error) {
	m.launches.WithLabelValues(method).Inc()
	m.launchTime.WithLabelValues(method).Observe(took.Seconds())
	if err != nil {
		m.launchFailures.WithLabelValues(method).Inc()
	}
}

// ChangeDone counts one change of primary that ended with this member as the primary.
func (m *Metrics) ChangeDone(kind engine.ChangeKind) {
	if c := m.changes[kind]; c != nil {
		c.Inc()
	}
}

// RejoinEnded counts one attempt of a rejoin method and observes how long it took.
func (m *Metrics) RejoinEnded(att dcs.Attempt) {
	outcome := "failure"
	if att.OK {
		outcome = "success"
	}
	m.rejoins.WithLabelValues(att.Method, outcome).Inc()
	m.rejoinTime.WithLabelValues(att.Method).Observe(att.Duration.Seconds())
}

// DCSError counts one DCS failure.
func (m *Metrics) DCSError(error) { m.dcsErrors.Inc() }

// snapshotCollector turns the member's snapshot into gauges at each scrape.
type snapshotCollector struct {
	snapshot func() engine.Snapshot
}

var (
	descPrimary   = prometheus.NewDesc("pgimaged_primary", "1 while PostgreSQL runs as the primary and this member holds the leader key.", nil, nil)
	descReplica   = prometheus.NewDesc("pgimaged_replica", "1 while PostgreSQL runs as a standby of the cluster.", nil, nil)
	descLeader    = prometheus.NewDesc("pgimaged_leader", "1 while this member holds the leader key.", nil, nil)
	descStreaming = prometheus.NewDesc("pgimaged_streaming", "1 while a WAL receiver streams from an upstream.", nil, nil)
	descUp        = prometheus.NewDesc("pgimaged_postgres_up", "1 while the data directory's postmaster runs.", nil, nil)
	descRunning   = prometheus.NewDesc("pgimaged_state_running", "1 while the member publishes the state running.", nil, nil)
	descFailed    = prometheus.NewDesc("pgimaged_state_failed", "1 while the member publishes the state failed.", nil, nil)
	descBusy      = prometheus.NewDesc("pgimaged_busy", "1 while a bootstrap or a clone is in flight.", nil, nil)
	descTimeline  = prometheus.NewDesc("pgimaged_timeline", "PostgreSQL's timeline.", nil, nil)
	descPosition  = prometheus.NewDesc("pgimaged_wal_position_bytes", "WAL written (primary) or replayed (standby), in bytes from 0/0.", nil, nil)
	descLag       = prometheus.NewDesc("pgimaged_replication_lag_bytes", "The leader's published WAL position minus this standby's replayed one.", nil, nil)
	descLastCycle = prometheus.NewDesc("pgimaged_last_cycle_timestamp_seconds", "When the agent last finished a cycle, in Unix seconds.", nil, nil)
)

func (c *snapshotCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descPrimary, descReplica, descLeader, descStreaming, descUp, descRunning, descFailed, descBusy, descTimeline, descPosition, descLag, descLastCycle} {
		ch <- d
	}
}

func (c *snapshotCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.snapshot()
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	gauge := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	gauge(descPrimary, b(s.Primary()))
	gauge(descReplica, b(s.Replica()))
	gauge(descLeader, b(s.Leader))
	gauge(descStreaming, b(s.Running && s.Queried && s.Streaming))
	gauge(descUp, b(s.Running))
	gauge(descRunning, b(s.State == dcs.StateRunning))
	gauge(descFailed, b(s.State == dcs.StateFailed))
	gauge(descBusy, b(s.Busy))
	if s.Running && s.Queried {
		gauge(descTimeline, float64(s.Timeline))
		gauge(descPosition, float64(s.Position))
		if lag := s.Lag(); s.InRecovery && lag >= 0 {
			gauge(descLag, float64(lag))
		}
	}
	if !s.LastCycle.IsZero() {
		gauge(descLastCycle, float64(s.LastCycle.UnixNano())/1e9)
	}
}
