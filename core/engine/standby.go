package engine

import (
	"fmt"

	"github.com/hashicorp/hcl/v2"

	"github.com/pgimaged/pgimaged/core/config"
	"github.com/pgimaged/pgimaged/sdk"
)

// StandbyKeeps reports whether method m (run by a plugin that can, or cannot, work without a
// source) is used to make a standby cluster's leader: always with a remote host; without one
// (a standby cluster that follows an archive) only a method that works without a source — one
// with no_master, or whose plugin restores from a repository, like pgBackRest's and WAL-E's.
// That is the seed's rule for a clone without a connection.
func StandbyKeeps(sc *config.StandbyCluster, m *config.Method, worksWithoutSource bool) bool {
	return sc != nil && (sc.Host != "" || m.NoMaster || worksWithoutSource)
}

// standbyMethodUses are standby_cluster's create_replica_methods.
func (n *Node) standbyMethodUses() []methodUse {
	sc := n.Config.StandbyCluster
	if sc == nil {
		return nil
	}
	var uses []methodUse
	for i, label := range sc.CreateReplicaMethods {
		uses = append(uses, methodUse{method: n.Config.Method(label), path: sdk.PathClone, standby: true,
			ref: fmt.Sprintf("standby_cluster.create_replica_methods[%d]", i)})
	}
	return uses
}

// standbyMethodDiagnostic says that a standby_cluster method is left out: the block has no host
// and the method needs a source. nil when the method is kept.
func (n *Node) standbyMethodDiagnostic(m *config.Method, pluginName string, worksWithoutSource bool, ref string) *hcl.Diagnostic {
	sc := n.Config.StandbyCluster
	if StandbyKeeps(sc, m, worksWithoutSource) {
		return nil
	}
	return &hcl.Diagnostic{
		Severity: hcl.DiagWarning, Summary: "Method left out of the standby cluster",
		Detail: fmt.Sprintf("standby_cluster has no host, so method %q (plugin %s), which copies from a running server, is not used: "+
			"only methods that work without a source make the standby leader from the archive.", m.Label, pluginName),
		Subject: n.subject(m, ref),
	}
}

// standbyWithoutMethods reports a standby cluster without host whose methods are all builtins
// that need a source (basebackup, the default): nothing could make its leader.
func (n *Node) standbyWithoutMethods() hcl.Diagnostics {
	sc := n.Config.StandbyCluster
	if sc == nil || sc.Host != "" {
		return nil
	}
	for _, label := range sc.CreateReplicaMethods {
		if label != config.DefaultReplicaMethod {
			return nil // a plugin decides whether it works without a source
		}
	}
	at := n.Config.RangeOf("standby_cluster.create_replica_methods")
	if _, set := n.Config.Ranges["standby_cluster.create_replica_methods"]; !set {
		at = sc.DefRange
	}
	return hcl.Diagnostics{{
		Severity: hcl.DiagError, Summary: "No method for the standby leader",
		Detail: "standby_cluster has no host and only basebackup, which copies from a running server, among its create_replica_methods: " +
			"name a method that restores from the archive's backups, such as pgbackrest or a method with no_master.",
		Subject: &at,
	}}
}
