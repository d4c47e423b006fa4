package api

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pgimaged/pgimaged/core/dcs"
	"github.com/pgimaged/pgimaged/core/engine"
)

// standbyCollector turns what the snapshot says of a standby cluster into gauges at each
// scrape.
type standbyCollector struct {
	snapshot func() engine.Snapshot
}

var (
	descStandbyLeader = prometheus.NewDesc("pgimaged_standby_leader", "1 while this member holds the leader key of a standby cluster and runs in recovery as its standby leader.", nil, nil)
	descRemoteLag     = prometheus.NewDesc("pgimaged_remote_lag_bytes", "On a standby leader: the remote's WAL flush position minus the WAL replayed here (absent while the remote cannot be asked).", nil, nil)
	descRemoteDelay   = prometheus.NewDesc("pgimaged_remote_replay_delay_seconds", "On a standby leader: how old the last replayed transaction is while received WAL waits to be replayed; 0 when all is replayed.", nil, nil)
)

func (c *standbyCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descStandbyLeader, descRemoteLag, descRemoteDelay} {
		ch <- d
	}
}

func (c *standbyCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.snapshot()
	leads := s.Leader && s.Running && s.Queried && s.InRecovery && s.Role == dcs.RoleStandbyLeader
	v := 0.0
	if leads {
		v = 1
	}
	ch <- prometheus.MustNewConstMetric(descStandbyLeader, prometheus.GaugeValue, v)
	if !leads || s.Remote == nil {
		return
	}
	if s.Remote.LagBytes != nil {
		ch <- prometheus.MustNewConstMetric(descRemoteLag, prometheus.GaugeValue, float64(*s.Remote.LagBytes))
	}
	ch <- prometheus.MustNewConstMetric(descRemoteDelay, prometheus.GaugeValue, s.Remote.ReplayDelay)
}
