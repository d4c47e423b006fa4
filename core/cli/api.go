package cli

import (
	"context"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/pgimaged/pgimaged/core/api"
	"github.com/pgimaged/pgimaged/core/config"
	"github.com/pgimaged/pgimaged/core/dcs"
	"github.com/pgimaged/pgimaged/core/engine"
)

// startAPI starts the HTTP API of `pgimaged run` when the configuration has an api block, with
// its metrics fed by the agent's node; nil without the block. Authenticated POST handlers are
// added with HandleAuthenticated on what it returns. stop shuts the server down.
func startAPI(cfg *config.Config, agent *engine.Agent, logger hclog.Logger) (srv *api.Server, stop func(), err error) {
	if !cfg.API.Enabled() {
		return nil, func() {}, nil
	}
	metrics := api.NewMetrics(cfg.Scope, cfg.Name, agent.Snapshot)
	agent.Node.Events = metrics
	srv, err = api.New(api.Options{
		Config:   cfg.API,
		Snapshot: agent.Snapshot,
		Status:   func(cl dcs.Cluster) any { return statusJSON(cfg, cl) },
		Metrics:  metrics,
		Liveness: 2*cfg.LoopWait + cfg.TTL,
		Version:  Version,
		Logger:   logger.Named("api"),
	})
	if err != nil {
		return nil, nil, err
	}
	if err := srv.Start(); err != nil {
		return nil, nil, err
	}
	return srv, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}
