package engine_test

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/pgimaged/pgimaged/core/config"
	"github.com/pgimaged/pgimaged/core/dcs"
	"github.com/pgimaged/pgimaged/core/dcs/dcstest"
	"github.com/pgimaged/pgimaged/core/engine"
	"github.com/pgimaged/pgimaged/core/plugin"
)

// A replica that pg_basebackup copied but that cannot start because its port is taken keeps
// PostgreSQL's reason once the copy is removed: in the member's last_error (what status shows)
// and in the history, whose attempt is a failure with PostgreSQL's log lines.
func TestAgentKeepsTheCauseOfAFailedStart(t *testing.T) {
	mem := dcstest.NewMemory()
	primary := agentNode(t, "node1")
	runAgent(t, primary, mem)
	eventually(t, "node1 leads a running primary", func() bool {
		m, ok := mem.Snapshot().Member("node1")
		return ok && m.State == dcs.StateRunning && mem.Snapshot().Leader == "node1"
	})

	replica := agentNode(t, "node2")
	replica.Plugins, replica.Catalog = nil, &plugin.Catalog{Dir: pluginDir(t)}
	replica.Config.Methods = map[string]*config.Method{"basebackup": {Label: "basebackup", Attempts: 1}}
	taken, err := net.Listen("tcp", replica.Config.PostgreSQL.Listen)
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	runAgent(t, replica, mem)

	const reason = "Address already in use"
	eventually(t, "node2 publishes why its PostgreSQL did not start", func() bool {
		m, ok := mem.Snapshot().Member("node2")
		return ok && m.PGImaged != nil && strings.Contains(m.PGImaged.LastError, reason)
	})
	m, _ := mem.Snapshot().Member("node2")
	if first := strings.SplitN(m.PGImaged.LastError, "\n", 2)[0]; !strings.Contains(first, reason) {
		t.Errorf("last_error's first line (what status shows) lacks PostgreSQL's reason:\n%s", m.PGImaged.LastError)
	}
	eventually(t, "node2's history records the failed attempt with PostgreSQL's log lines", func() bool {
		atts, err := engine.ReadHistory(context.Background(), mem.Open("reader"), "node2")
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range atts {
			if a.Method == "basebackup" && !a.OK && strings.Contains(a.Error, reason) && strings.Contains(strings.Join(a.Tail, "\n"), "could not bind") {
				return true
			}
		}
		return false
	})
}
