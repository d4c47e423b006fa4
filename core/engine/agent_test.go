package engine_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/pgimaged/pgimaged/core/config"
	"github.com/pgimaged/pgimaged/core/dcs"
	"github.com/pgimaged/pgimaged/core/dcs/dcstest"
	"github.com/pgimaged/pgimaged/core/engine"
	"github.com/pgimaged/pgimaged/core/pg"
	"github.com/pgimaged/pgimaged/internal/pgtest"
	"github.com/pgimaged/pgimaged/internal/testenv"
	"github.com/pgimaged/pgimaged/sdk"
)

// agentNode is a member whose methods run in-process, with a data directory under a fresh
// temporary directory and PostgreSQL on a free port.
func agentNode(t *testing.T, name string) *engine.Node {
	t.Helper()
	testenv.RequirePostgresUser(t)
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	c := config.Config{Scope: "batman", Name: name, DataDir: filepath.Join(t.TempDir(), name)}
	c.PostgreSQL.BinDir = testenv.PGBinDir(t)
	c.PostgreSQL.Listen = fmt.Sprintf("127.0.0.1:%d", pgtest.FreePort(t))
	c.PostgreSQL.Superuser = config.Credentials{Username: u.Username}
	c.PostgreSQL.Replication = config.Credentials{Username: "replicator"}
	cfg := config.New(c)
	return &engine.Node{
		Config:  cfg,
		Plugins: inProcess{t: t, plugins: map[string]sdk.Plugin{"initdb": initdbPlugin{}}},
		Logger:  hclog.New(&hclog.LoggerOptions{Name: name, Level: hclog.Debug, Output: testWriter{t}}),
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// runAgent runs the node's agent against mem until the test ends; the agent stops its
// PostgreSQL when it returns.
func runAgent(t *testing.T, n *engine.Node, mem *dcstest.Memory) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	a := &engine.Agent{
		Node:         n,
		Open:         func(context.Context) (dcs.Store, error) { return mem.Open(n.Config.Name), nil },
		LoopWait:     200 * time.Millisecond,
		ReadBackWait: 10 * time.Millisecond,
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := a.Run(ctx); err != nil {
			t.Errorf("agent %s: %v", n.Config.Name, err)
		}
	})
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
}

// eventually waits until cond holds; the deadline only guards against a hang.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never happened: %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// injectOnce returns the fault for op the first `times` times it is asked, then none.
func injectOnce(op string, fault dcstest.Fault, times int) func(string, string) dcstest.Fault {
	var mu sync.Mutex
	return func(o, _ string) dcstest.Fault {
		mu.Lock()
		defer mu.Unlock()
		if o == op && times > 0 {
			times--
			return fault
		}
		return dcstest.FaultNone
	}
}

func postmasterRunning(dir string) bool {
	b, err := os.ReadFile(filepath.Join(dir, "postmaster.pid"))
	if err != nil {
		return false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
	if err != nil {
		return false
	}
	_, err = os.Stat(fmt.Sprintf("/proc/%d", pid))
	return err == nil
}

// A bootstrap that succeeds but cannot record its system identifier removes the new cluster
// and releases initialize, so the cluster is not stuck with an empty initialize.
func TestAgentReleasesInitializeWhenRecordingFails(t *testing.T) {
	n := agentNode(t, "node1")
	mem := dcstest.NewMemory()
	failures := 0
	var mu sync.Mutex
	mem.Inject = func(op, _ string) dcstest.Fault {
		mu.Lock()
		defer mu.Unlock()
		if op == "SetInitialize" && failures < 1 {
			failures++
			return dcstest.FaultUnavailable
		}
		if op == "TryInitialize" && failures >= 1 {
			return dcstest.FaultUnavailable // no second bootstrap: look at what the first left
		}
		return dcstest.FaultNone
	}
	runAgent(t, n, mem)
	eventually(t, "the failed record is published", func() bool {
		m, ok := mem.Snapshot().Member("node1")
		return ok && m.PGImaged != nil && strings.Contains(m.PGImaged.LastError, "recording the system identifier")
	})
	cl := mem.Snapshot()
	if cl.Initialize != nil {
		t.Errorf("initialize after a bootstrap whose record failed: %q held by %q, want it released", *cl.Initialize, mem.InitializeOwner())
	}
	if postmasterRunning(n.Config.DataDir) {
		t.Error("the unrecorded cluster still runs")
	}
	if pg.HasCluster(n.Config.DataDir) {
		t.Error("the unrecorded cluster was not removed")
	}
}

// An uncertain write of the system identifier (the DCS applied it, the answer was lost) is
// settled by reading initialize back: the bootstrap stands and the member leads.
func TestAgentSettlesUncertainRecordByReadingBack(t *testing.T) {
	n := agentNode(t, "node1")
	mem := dcstest.NewMemory()
	mem.Inject = injectOnce("SetInitialize", dcstest.FaultUncertain, 1)
	runAgent(t, n, mem)
	eventually(t, "node1 leads a running primary", func() bool {
		cl := mem.Snapshot()
		m, ok := cl.Member("node1")
		return cl.Leader == "node1" && ok && m.State == dcs.StateRunning && m.Role == dcs.RolePrimary
	})
	id, err := pg.SystemIdentifier(n.Config.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	if got := mem.Snapshot().SystemIdentifier(); got != strconv.FormatUint(id, 10) {
		t.Errorf("initialize %q, the cluster's system identifier is %d", got, id)
	}
	if n.Incomplete() {
		t.Error("the bootstrapped directory is still marked incomplete")
	}
}

// After an outage the leader key may still name this member under its old session: the
// member takes it back instead of reporting that another member leads.
func TestAgentTakesBackTheLeaderKeyNamingIt(t *testing.T) {
	n := agentNode(t, "node1")
	mem := dcstest.NewMemory()
	runAgent(t, n, mem)
	eventually(t, "node1 leads", func() bool { return mem.Snapshot().Leader == "node1" })
	// A stale session of node1's holds the leader key, as an etcd lease that outlived an
	// outage does, while the agent's own session is lost.
	stale := mem.Open("node1")
	old := mem.LeaderSession()
	if held, err := stale.AcquireLeader(context.Background(), "node1"); err != nil || !held {
		t.Fatalf("taking the key for the stale session: %v %v", held, err)
	}
	old.Lose()
	eventually(t, "the agent holds the key naming it again", func() bool {
		s := mem.LeaderSession()
		return s != nil && s != stale && s != old && mem.Snapshot().Leader == "node1"
	})
	if !postmasterRunning(n.Config.DataDir) {
		t.Error("the primary was stopped")
	}
	_ = stale.Close()
}

// A member that finds a cluster in its data directory and an empty DCS records the cluster's
// system identifier; when that write fails, initialize is released again instead of staying
// empty and held (which would make every member, this one included, wait for ever).
func TestAgentAdoptReleasesInitializeWhenClaimFails(t *testing.T) {
	n := agentNode(t, "node1")
	out, err := exec.Command(filepath.Join(n.Config.PostgreSQL.BinDir, "initdb"), "-D", n.Config.DataDir,
		"--username="+n.Config.PostgreSQL.Superuser.Username, "--auth=trust", "--no-sync", "--locale=C").CombinedOutput()
	if err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	id, err := pg.SystemIdentifier(n.Config.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	mem := dcstest.NewMemory()
	mem.Inject = injectOnce("SetInitialize", dcstest.FaultUnavailable, 1)
	runAgent(t, n, mem)
	eventually(t, "node1 leads its cluster, recorded in initialize", func() bool {
		cl := mem.Snapshot()
		m, ok := cl.Member("node1")
		return cl.SystemIdentifier() == strconv.FormatUint(id, 10) && cl.Leader == "node1" && ok && m.State == dcs.StateRunning
	})
}
