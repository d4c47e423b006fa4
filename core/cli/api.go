package cli

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
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
		Config:    cfg.API,
		Snapshot:  agent.Snapshot,
		Status:    func(cl dcs.Cluster) any { return clusterJSON(cfg, cl) },
		Metrics:   metrics,
		Effective: func() any { return effectiveConfig(agent.ConfigInUse()) },
		Liveness:  2*cfg.LoopWait + cfg.TTL,
		Version:   Version,
		Logger:    logger.Named("api"),
	})
	if err != nil {
		return nil, nil, err
	}
	srv.HandleAuthenticated("/reinit", reinitHandler(agent))
	srv.HandleAuthenticated("/reload", reloadHandler(agent, cfg.Filename, logger))
	srv.HandleAuthenticated("/reinitialize", api.ReinitializeHandler(agent.Snapshot, agent.RequestReinit))
	srv.HandleAuthenticated("/restart", api.RestartHandler(agent.Snapshot, agent.RequestRestart))
	srv.HandleAuthenticated("/failsafe", api.FailsafeHandler(cfg.FailsafeMode, agent.Snapshot, agent.RunsPrimary))
	change := api.ChangeOptions{Open: agent.Open, MaxLag: cfg.MaximumLagOnFailover,
		SynchronousMode: cfg.Replication.SynchronousMode, Settle: cfg.LoopWait + time.Second}
	srv.HandleAuthenticated("/switchover", api.ChangeHandler(engine.Switchover, change))
	srv.HandleAuthenticated("/failover", api.ChangeHandler(engine.Failover, change))
	srv.HandleAuthenticatedDelete("/switchover", api.CancelScheduledHandler(change))
	srv.HandleAuthenticated("/standby/promote", api.StandbyPromoteHandler(change))
	srv.HandleAuthenticated("/standby/follow", api.StandbyFollowHandler(change, func() *config.StandbyCluster { return agent.ConfigInUse().StandbyCluster }))
	if err := srv.Start(); err != nil {
		return nil, nil, err
	}
	return srv, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}

// reinitHandler is POST /reinit, as Patroni's: it asks this member's agent to clone its replica
// afresh, with the configured methods or those the JSON body names ({"methods": ["basebackup"]}).
// The leader is refused at once (503, Patroni's answer); the agent checks the rest before it
// deletes anything and publishes a refusal as its last error.
func reinitHandler(agent *engine.Agent) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Methods []string `json:"methods"`
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&body); err != nil && !errors.Is(err, io.EOF) {
			http.Error(w, "the body is not a JSON object: "+err.Error(), http.StatusBadRequest)
			return
		}
		if snap := agent.Snapshot(); snap.Leader || (snap.Queried && !snap.InRecovery) {
			http.Error(w, "I am the leader, can not reinitialize", http.StatusServiceUnavailable)
			return
		}
		req := engine.ReinitRequest{Methods: body.Methods, By: "api " + r.RemoteAddr, At: time.Now().UTC()}
		if err := agent.RequestReinit(r.Context(), req); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "reinitialize started")
	})
}

// effectiveConfig is the configuration in effect for GET /config, with the file DCS's default
// path filled in.
func effectiveConfig(cfg *config.Config) map[string]any {
	out := cfg.Effective()
	if d, ok := out["dcs"].(map[string]any); ok && cfg.DCS.Kind != config.DCSEtcd {
		d["path"] = fileDCSPath(cfg)
	}
	return out
}
