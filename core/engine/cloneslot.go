package engine

import (
	"context"
	"slices"
	"time"

	"github.com/pgimaged/pgimaged/sdk"
)

// cloneSlotPlugins are the plugins whose copy streams WAL from the source through a
// replication slot named by their "slot" option (pg_basebackup --slot).
var cloneSlotPlugins = []string{"basebackup"}

// cloneSlotOptions are a clone method's options with, under use_slots, the slot the source
// keeps for this member (created there first when it is not yet), so that the WAL written
// between the copy's start and the standby's first connection stays on the source: the copy
// streams through the slot, and the standby goes on from where the copy left it. Options that
// name a slot already, a plugin without one, or a source that is no member are left as they are.
func (n *Node) cloneSlotOptions(ctx context.Context, plugin string, opts sdk.Options, src *Source) sdk.Options {
	slot, ok := n.cloneSlot(plugin, opts, src)
	if !ok {
		return opts
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := createSourceSlot(cctx, src, slot); err != nil {
		n.logger().Warn("could not create this member's replication slot on the source; the copy streams without it", "slot", slot, "error", err)
		return opts
	}
	return append(slices.Clone(opts), sdk.Option{Name: "slot", Value: slot})
}

// plannedSlotOptions are the options [Node.cloneSlotOptions] gives, for `pgimaged plan`,
// which creates nothing.
func (n *Node) plannedSlotOptions(plugin string, opts sdk.Options, src *Source) sdk.Options {
	if slot, ok := n.cloneSlot(plugin, opts, src); ok {
		return append(slices.Clone(opts), sdk.Option{Name: "slot", Value: slot})
	}
	return opts
}

// cloneSlot is the slot a clone by plugin with opts from src copies through; false for none.
func (n *Node) cloneSlot(plugin string, opts sdk.Options, src *Source) (string, bool) {
	if !n.Config.Replication.UseSlots || src == nil || src.Member == "" || !slices.Contains(cloneSlotPlugins, plugin) ||
		opts.Has("slot") || opts.Has("create-slot") {
		return "", false
	}
	return SlotName(n.Config.Name), true
}
