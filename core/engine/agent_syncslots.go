package engine

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgimaged/pgimaged/core/dcs"
	"github.com/pgimaged/pgimaged/core/pg"
)

// replicationState is what the agent remembers between cycles for [Agent.tendReplication].
type replicationState struct {
	// seen is when each member slot's member was last seen in the DCS ([SlotInput.Seen]).
	seen map[string]time.Time
}

// tendReplication carries out, once a cycle on a running PostgreSQL, what [PlanSlots] and, on
// the primary, [PlanSync] decide. Failures are logged; the next cycle tries again.
func (a *Agent) tendReplication(ctx context.Context) {
	n := a.Node
	if a.store == nil || a.srv == nil || a.cl.SystemIdentifier() == "" {
		return
	}
	st := a.pgStatus(ctx)
	if !st.Running || !st.Queried {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := a.srv.Connect(cctx)
	if err != nil {
		return
	}
	defer conn.Close(context.Background())
	if n.Config.Replication.UseSlots {
		a.tendSlots(cctx, conn)
	}
	switch {
	case a.cl.Leader == n.Config.Name && !st.InRecovery:
		a.tendSync(cctx, conn)
	case st.InRecovery:
		// A standby has no use for the names a primary wrote (a copy brings them along); once
		// promoted it must not wait for standbys its agent has not chosen.
		a.writeSyncNames(cctx, "", false)
	}
}

// tendSlots creates and drops this member's replication slots as [PlanSlots] says.
func (a *Agent) tendSlots(ctx context.Context, conn *pgx.Conn) {
	n := a.Node
	log := n.logger()
	existing, err := pg.PhysicalSlots(ctx, conn)
	if err != nil {
		log.Warn("could not list the replication slots", "error", err)
		return
	}
	plan := PlanSlots(SlotInput{Self: n.Config.Name, Cluster: a.cl, Existing: existing, Seen: a.repl.seen,
		Now: time.Now(), TTL: n.Config.Replication.MemberSlotsTTL})
	a.repl.seen = plan.Seen
	for _, s := range plan.Create {
		if err := pg.CreatePhysicalSlot(ctx, conn, s); err != nil {
			log.Warn("could not create a member's replication slot", "slot", s, "error", err)
			continue
		}
		log.Info("created a member's replication slot", "slot", s)
	}
	for _, s := range plan.Drop {
		if err := pg.DropSlot(ctx, conn, s); err != nil {
			log.Warn("could not drop a replication slot no member uses", "slot", s, "error", err)
			continue
		}
		log.Info("dropped a replication slot no member streams through here", "slot", s)
	}
}

// tendSync keeps synchronous replication on the primary: in synchronous mode the sync key and
// synchronous_standby_names as [PlanSync] says, in that order; otherwise neither.
func (a *Agent) tendSync(ctx context.Context, conn *pgx.Conn) {
	n := a.Node
	log := n.logger()
	r := n.Config.Replication
	if !r.SynchronousMode {
		raw, present, err := a.store.Get(ctx, dcs.SyncKey)
		if err != nil {
			log.Warn("could not read the sync key", "error", err)
		} else if present {
			if _, err := a.store.CompareAndSwap(ctx, dcs.SyncKey, raw, nil); err != nil {
				log.Warn("could not remove the sync key", "error", err)
			}
		}
		a.writeSyncNames(ctx, "", false)
		return
	}
	reps, err := pg.StatReplication(ctx, conn)
	if err != nil {
		log.Warn("could not read the standbys", "error", err)
		return
	}
	var names string
	if err := conn.QueryRow(ctx, "SHOW synchronous_standby_names").Scan(&names); err != nil {
		log.Warn("could not read synchronous_standby_names", "error", err)
		return
	}
	kept, err := KeepSync(ctx, a.store, SyncInput{Self: n.Config.Name, Cluster: a.cl, Replicas: reps, Names: names,
		Count: r.SynchronousNodeCount, Strict: r.SynchronousModeStrict})
	if kept.Key != nil {
		log.Info("sync key updated", "sync_standby", kept.Key.Standbys)
	}
	if err != nil {
		log.Warn("could not update the sync key; the next cycle reads it again", "error", err)
		return
	}
	if kept.NamesChanged {
		a.writeSyncNames(ctx, kept.Names, true)
	}
}

// writeSyncNames writes synchronous_standby_names (or removes pgimaged's setting, set false)
// and reloads PostgreSQL when it changed.
func (a *Agent) writeSyncNames(ctx context.Context, names string, set bool) {
	log := a.Node.logger()
	changed, err := pg.WriteSynchronousStandbyNames(a.Node.Config.DataDir, names, set)
	if err != nil {
		log.Warn("could not write synchronous_standby_names", "error", err)
		return
	}
	if !changed {
		return
	}
	if err := a.srv.Reload(ctx); err != nil {
		log.Warn("could not reload PostgreSQL after changing synchronous_standby_names", "error", err)
		return
	}
	log.Info("synchronous_standby_names changed", "value", names)
}

// slotSetting sets primary_slot_name in standby settings toward src, a member: the slot its
// upstream keeps for this member (use_slots), or none. A source that is no member (a standby
// cluster's remote, a connection string given) keeps the settings it has. The slot is created
// on src now if it is not there yet (the upstream's agent creates it too, once a cycle), so
// the standby's first connection finds it.
func (n *Node) slotSetting(settings map[string]string, src *Source) {
	if src == nil || src.Member == "" {
		return
	}
	if !n.Config.Replication.UseSlots {
		delete(settings, "primary_slot_name")
		return
	}
	slot := SlotName(n.Config.Name)
	settings["primary_slot_name"] = slot
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := createSourceSlot(ctx, src, slot); err != nil {
		n.logger().Warn("could not create this member's replication slot on its upstream; its agent creates it", "slot", slot, "error", err)
	}
}

// createSourceSlot creates the physical slot on src over a replication connection, reserving
// WAL at once; a slot that exists is not an error.
func createSourceSlot(ctx context.Context, src *Source, slot string) error {
	conn, err := dialReplication(ctx, src)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, "CREATE_REPLICATION_SLOT "+pgx.Identifier{slot}.Sanitize()+" PHYSICAL RESERVE_WAL").ReadAll()
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "42710" { // duplicate_object
		return nil
	}
	return err
}
