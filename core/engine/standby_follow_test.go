package engine_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pgimaged/pgimaged/core/config"
	"github.com/pgimaged/pgimaged/core/dcs"
	"github.com/pgimaged/pgimaged/core/dcs/dcstest"
	"github.com/pgimaged/pgimaged/core/engine"
	"github.com/pgimaged/pgimaged/core/pg"
)

// remoteB is the standby_cluster block of `standby follow` in these tests.
var remoteB = &config.StandbyCluster{Host: "10.2.0.5", Ports: []int{5432}, CreateReplicaMethods: []string{"basebackup"}}

// The primary asked to follow a remote stops, is rewound (FollowStandby) and publishes itself
// as the standby leader, no longer marked as having led; a failed attempt is published and
// tried again. Nobody else acts on the request, and nothing happens while paused.
func TestStepStandbyFollow(t *testing.T) {
	rec := &engine.StandbyRecord{Phase: engine.StandbyFollowAsked, Leader: "node1", By: "operator", Remote: engine.BlockOf(remoteB)}
	cl := &dcs.Cluster{Initialize: str(sysidStr), Leader: "node1", Members: []dcs.Member{running("node1", dcs.RolePrimary, 1, 0x5000000), running("node2", dcs.RoleReplica, 1, 0x5000000)}}
	obs := engine.Observation{Member: "node1", Cluster: cl, DataDir: engine.DirCluster, Control: clusterDir(pg.DBInProduction, 1, 0x5000000),
		PostgreSQL: engine.PGPrimary, Led: true, StandbyCluster: true, StandbyRecord: rec, RejoinMethods: []string{"rewind"}}
	if a := engine.Decide(obs); a.Kind != engine.ActFollowStandby || !strings.Contains(a.Reason, "rewound toward it with rewind") || strings.Contains(a.Reason, "re-cloned") {
		t.Fatalf("the primary asked to follow decides %s: %s", a.Kind, a.Reason)
	}
	st := engine.State{Name: "node1", LoopWait: 10 * time.Second, Role: dcs.RolePrimary, SysID: sysidStr}
	st, _ = runSteps(t, st, obs, []stepCase{
		{nil, "Publish(rejoining) FollowStandby"},
		{&engine.Result{Attempts: []dcs.Attempt{{Method: "rewind", OK: true}}}, "Mark(led=false) Mark(needs reinit=false) Publish(running) Wait"},
	})
	if st.Role != dcs.RoleStandbyLeader || len(st.History) != 1 || st.History[0].Method != "rewind" {
		t.Errorf("after the follow: role %q, history %+v; want standby_leader and the rewind", st.Role, st.History)
	}
	st = engine.State{Name: "node1", LoopWait: 10 * time.Second, Role: dcs.RolePrimary, SysID: sysidStr}
	runSteps(t, st, obs, []stepCase{
		{nil, "Publish(rejoining) FollowStandby"},
		{&engine.Result{Err: errors.New("pg_rewind: boom")}, "Publish(failed) Wait"},
	})

	reimage := obs
	reimage.RejoinMethods, reimage.Reimage = nil, true
	if a := engine.Decide(reimage); a.Kind != engine.ActFollowStandby || !strings.Contains(a.Reason, "re-cloned") {
		t.Errorf("without a rejoin method, rejoin = reimage: %s: %s", a.Kind, a.Reason)
	}
	replica := obs
	replica.Member, replica.PostgreSQL, replica.Standby, replica.Led = "node2", engine.PGStandby, true, false
	if a := engine.Decide(replica); a.Kind == engine.ActFollowStandby {
		t.Errorf("a replica acts on the leader's follow: %s", a.Reason)
	}
	paused := obs
	paused.Paused = true
	if a := engine.Decide(paused); a.Kind == engine.ActFollowStandby {
		t.Errorf("followed while paused: %s", a.Reason)
	}
	other := obs
	other.Cluster = &dcs.Cluster{Initialize: str(otherSysid), Leader: "node1", Members: cl.Members}
	if a := engine.Decide(other); a.Kind != engine.ActRefuse {
		t.Errorf("a directory of another cluster: %s: %s", a.Kind, a.Reason)
	}
}

// A standby of a cluster that followed a remote, whose receiver does not stream and whose WAL
// went past the point where the remote's timeline began, rejoins the standby leader; one that
// streams, or stayed before that point, does not.
func TestDecideStandbyFollowDiverged(t *testing.T) {
	rec := &engine.StandbyRecord{Phase: engine.StandbyFollowing, Leader: "node1", Remote: engine.BlockOf(remoteB), Timeline: 2, SwitchLSN: 0x5000000}
	cl := &dcs.Cluster{Initialize: str(sysidStr), Leader: "node1", Members: []dcs.Member{running("node1", dcs.RoleStandbyLeader, 2, 0x5100000), running("node2", dcs.RoleReplica, 1, 0x5002220)}}
	base := engine.Observation{Member: "node2", Cluster: cl, DataDir: engine.DirCluster, Control: clusterDir(pg.DBInArchiveRecovery, 1, 0x5000000),
		Standby: true, PostgreSQL: engine.PGStandby, StandbyCluster: true, StandbyRecord: rec, RejoinMethods: []string{"rewind"},
		WAL: &pg.Position{InRecovery: true, Timeline: 1, Replayed: 0x5002220}}
	if a := engine.Decide(base); a.Kind != engine.ActRejoin || !strings.Contains(a.Reason, "past the point 0/5000000 where the cluster's WAL and the remote's (timeline 2) went apart") {
		t.Fatalf("a standby past the remote's fork decides %s: %s", a.Kind, a.Reason)
	}
	// The cluster followed a remote on an older timeline than the standby's own.
	newer := base
	newer.WAL = &pg.Position{InRecovery: true, Timeline: 3, Replayed: 0x5200000}
	if a := engine.Decide(newer); a.Kind != engine.ActRejoin || !strings.Contains(a.Reason, "on timeline 3, which its standby leader node1 (on timeline 2") {
		t.Errorf("a standby on a timeline its standby leader lacks decides %s: %s", a.Kind, a.Reason)
	}
	for name, change := range map[string]func(*engine.Observation){
		"streaming": func(o *engine.Observation) {
			o.WAL = &pg.Position{InRecovery: true, Timeline: 2, Receiving: true, Replayed: 0x5100000}
		},
		"before the fork":    func(o *engine.Observation) { o.WAL = &pg.Position{InRecovery: true, Timeline: 1, Replayed: 0x4ff0000} },
		"the standby leader": func(o *engine.Observation) { o.Member = "node1" },
		"still asked":        func(o *engine.Observation) { r := *rec; r.Phase = engine.StandbyFollowAsked; o.StandbyRecord = &r },
	} {
		obs := base
		change(&obs)
		if a := engine.Decide(obs); a.Kind == engine.ActRejoin {
			t.Errorf("%s: rejoins: %s", name, a.Reason)
		}
	}
}

// The cluster, promoted before it followed the remote again, began a timeline of the number
// the remote was on (each promotion takes the next number it knows of) elsewhere: a standby on
// that one, its WAL past the fork, holds WAL the remote never had and rejoins; one on the
// remote's timeline of that number, which began where the record says, does not. Without
// either start known, the number decides as before.
func TestDecideStandbyOnAnotherTimelineOfTheNumber(t *testing.T) {
	rec := &engine.StandbyRecord{Phase: engine.StandbyFollowing, Leader: "node1", Remote: engine.BlockOf(remoteB), Timeline: 4, TimelineBegan: 0x3400000, SwitchLSN: 0x3300000}
	cl := &dcs.Cluster{Initialize: str(sysidStr), Leader: "node1", Members: []dcs.Member{running("node1", dcs.RoleStandbyLeader, 4, 0x3600000), running("node3", dcs.RoleReplica, 4, 0x3300200)}}
	base := engine.Observation{Member: "node3", Cluster: cl, DataDir: engine.DirCluster, Control: clusterDir(pg.DBInArchiveRecovery, 4, 0x3300200),
		Standby: true, PostgreSQL: engine.PGStandby, StandbyCluster: true, StandbyRecord: rec, RejoinMethods: []string{"rewind"},
		WAL: &pg.Position{InRecovery: true, Timeline: 4, Replayed: 0x3300200}, TimelineBegan: 0x3300000}
	if a := engine.Decide(base); a.Kind != engine.ActRejoin || !strings.Contains(a.Reason, "timeline 4 began at 0/3300000, not where the remote's timeline 4 began (0/3400000)") {
		t.Fatalf("a standby on the cluster's own timeline 4 decides %s: %s", a.Kind, a.Reason)
	}
	stopped := base
	stopped.PostgreSQL, stopped.WAL, stopped.Cluster = engine.PGStopped, nil, &dcs.Cluster{Initialize: str(sysidStr), Members: cl.Members}
	stopped.FollowsRemote = true
	if a := engine.Decide(stopped); a.Kind == engine.ActAdopt && strings.Contains(a.Reason, "takes the leader key") {
		t.Errorf("a stopped copy of the cluster's own timeline 4 leads the standby cluster: %s", a.Reason)
	}
	for name, change := range map[string]func(*engine.Observation){
		"the remote's timeline 4":      func(o *engine.Observation) { o.TimelineBegan = 0x3400000 },
		"its start unknown":            func(o *engine.Observation) { o.TimelineBegan = 0 },
		"the record without the start": func(o *engine.Observation) { r := *rec; r.TimelineBegan = 0; o.StandbyRecord = &r },
		"not past the fork":            func(o *engine.Observation) { o.WAL = &pg.Position{InRecovery: true, Timeline: 4, Replayed: 0x3300000} },
	} {
		obs := base
		change(&obs)
		if a := engine.Decide(obs); a.Kind == engine.ActRejoin {
			t.Errorf("%s: rejoins: %s", name, a.Reason)
		}
	}
}

// A remote of another major version is refused before anything is copied, naming both.
func TestRemoteVersionRefusal(t *testing.T) {
	for _, c := range []struct {
		remote, local int
		want          string
	}{
		{150004, 150018, ""},
		{0, 150018, ""},
		{160002, 150018, "the remote is PostgreSQL 16 (server_version_num 160002), the local binaries are PostgreSQL 15 (150018)"},
		{90624, 150018, "PostgreSQL 9.6"},
		{140010, 150018, "PostgreSQL 14"},
	} {
		err := engine.RemoteVersionRefusal(c.remote, c.local)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%d against %d: %v", c.remote, c.local, err)
		case c.want != "" && (!errors.Is(err, engine.ErrRemoteVersion) || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%d against %d: %v, want %q", c.remote, c.local, err, c.want)
		}
	}
}

// `standby follow` is asked only of a cluster led by a running primary, with a block, once; a
// record of an earlier promotion gives way to it, and a promotion is refused while it is asked.
func TestRequestStandbyFollow(t *testing.T) {
	ctx := context.Background()
	st := dcstest.NewMemory().Open("operator")
	primary := dcs.Cluster{Leader: "node1", Members: []dcs.Member{running("node1", dcs.RolePrimary, 1, 0x5000000)}}
	standby := dcs.Cluster{Leader: "node1", Members: []dcs.Member{running("node1", dcs.RoleStandbyLeader, 1, 0x5000000)}}
	if _, err := engine.RequestStandbyFollow(ctx, st, primary, nil, "operator"); !errors.Is(err, engine.ErrCannotFollow) {
		t.Errorf("without a block: %v", err)
	}
	if _, err := engine.RequestStandbyFollow(ctx, st, standby, remoteB, "operator"); !errors.Is(err, engine.ErrCannotFollow) {
		t.Errorf("a standby cluster: %v", err)
	}
	promoted := `{"phase":"promoted","leader":"node1","timeline":2}`
	if err := st.Put(ctx, engine.StandbyKey, []byte(promoted)); err != nil {
		t.Fatal(err)
	}
	r, err := engine.RequestStandbyFollow(ctx, st, primary, remoteB, "operator")
	if err != nil || r.Phase != engine.StandbyFollowAsked || r.Leader != "node1" {
		t.Fatalf("request: %+v, %v", r, err)
	}
	got, err := engine.ReadStandby(ctx, st)
	if err != nil || got == nil || got.Remote == nil || got.Remote.Host != "10.2.0.5" {
		t.Fatalf("recorded: %+v, %v", got, err)
	}
	if _, err := engine.RequestStandbyFollow(ctx, st, primary, remoteB, "operator"); !errors.Is(err, engine.ErrChangePending) {
		t.Errorf("asked twice: %v", err)
	}
	if _, err := engine.RequestStandbyPromote(ctx, st, standby, "operator"); !errors.Is(err, engine.ErrChangePending) {
		t.Errorf("a promotion while a follow is asked: %v", err)
	}
}

// A promotion waits for a member that is creating a replica: the timeline does not switch
// under a copy made from the standby leader.
func TestStandbyPromoteRefusedMidClone(t *testing.T) {
	ctx := context.Background()
	st := dcstest.NewMemory().Open("operator")
	cloning := dcs.Member{Name: "node2", State: dcs.StateCreatingReplica, Role: dcs.RoleReplica}
	cl := dcs.Cluster{Leader: "node1", Members: []dcs.Member{running("node1", dcs.RoleStandbyLeader, 1, 0x5000000), cloning}}
	if _, err := engine.RequestStandbyPromote(ctx, st, cl, "operator"); !errors.Is(err, engine.ErrChangePending) || !strings.Contains(err.Error(), "node2 is creating a replica") {
		t.Errorf("promotion while node2 clones: %v", err)
	}
	if r, _ := engine.ReadStandby(ctx, st); r != nil {
		t.Errorf("a refused promotion left a record: %+v", r)
	}
	cl.Members[1] = running("node2", dcs.RoleReplica, 1, 0x5000000)
	if _, err := engine.RequestStandbyPromote(ctx, st, cl, "operator"); err != nil {
		t.Errorf("promotion once node2 streams: %v", err)
	}
}

// The DCS's block decides; what this configuration says against it is told.
func TestStandbyNote(t *testing.T) {
	following := &engine.StandbyRecord{Phase: engine.StandbyFollowing, Remote: engine.BlockOf(remoteB)}
	other := &config.StandbyCluster{Host: "10.9.9.9", CreateReplicaMethods: []string{"basebackup"}}
	for _, c := range []struct {
		name string
		cfg  *config.StandbyCluster
		rec  *engine.StandbyRecord
		want string
	}{
		{"no record", remoteB, nil, ""},
		{"the same block", remoteB, following, ""},
		{"no block here", nil, following, "this configuration has no standby_cluster block, but the DCS records that the cluster is a standby cluster of host=10.2.0.5 port=5432"},
		{"another block here", other, following, "differs from the DCS's, which is used: host=10.2.0.5"},
		{"another block here, the DCS's from a file", other, &engine.StandbyRecord{Phase: engine.StandbyFollowing, Remote: engine.BlockOf(remoteB), FromFile: true}, ""},
		{"no block here, the DCS's from a file", nil, &engine.StandbyRecord{Phase: engine.StandbyFollowing, Remote: engine.BlockOf(remoteB), FromFile: true}, "this configuration has no standby_cluster block"},
		{"promoted", remoteB, &engine.StandbyRecord{Phase: engine.StandbyPromoted, Leader: "node1", Remote: engine.BlockOf(remoteB)}, "is ignored: the DCS records that the cluster was promoted"},
	} {
		if got := engine.StandbyNote(c.cfg, c.rec); c.want == "" && got != "" || !strings.Contains(got, c.want) {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}

// Where the cluster's WAL and the remote's went apart: the cluster's own first switch that the
// remote's history does not hold, else the remote's newest switch, the earlier of the two.
func TestForkPoint(t *testing.T) {
	remote := dcs.TimelineSwitch{Timeline: 3, LSN: 0x7000000}
	starts := map[int]uint64{2: 0x5000000, 3: 0x7000000}
	shared := dcs.TimelineSwitch{Timeline: 2, LSN: 0x5000000}
	own := dcs.TimelineSwitch{Timeline: 3, LSN: 0x6000000} // this cluster promoted on its own
	for _, c := range []struct {
		name string
		own  []dcs.TimelineSwitch
		want uint64
	}{
		{"no history of its own: the remote's switch", nil, 0x7000000},
		{"a switch the remote shares", []dcs.TimelineSwitch{shared}, 0x7000000},
		{"its own promotion before the remote's switch", []dcs.TimelineSwitch{shared, own}, 0x6000000},
	} {
		if got := engine.ForkPoint(dcs.History{Switches: c.own}, remote, starts); got != c.want {
			t.Errorf("%s: %x, want %x", c.name, got, c.want)
		}
	}
	if got := engine.ForkPoint(dcs.History{Switches: []dcs.TimelineSwitch{{Timeline: 2, LSN: 0x4000000}}}, dcs.TimelineSwitch{Timeline: 1}, nil); got != 0x4000000 {
		t.Errorf("a remote on its first timeline, this cluster promoted: %x", got)
	}
}

// Which remote a member follows: the DCS's block after `standby follow`, its own over one
// recorded from the standby leader's file, none once promoted.
func TestUseStandbyRecord(t *testing.T) {
	other := &config.StandbyCluster{Host: "10.9.9.9", CreateReplicaMethods: []string{"basebackup"}}
	for _, c := range []struct {
		name string
		cfg  *config.StandbyCluster
		rec  *engine.StandbyRecord
		want string // the remote's host, "" for none
	}{
		{"no record", other, nil, "10.9.9.9"},
		{"standby follow", other, &engine.StandbyRecord{Phase: engine.StandbyFollowing, Remote: engine.BlockOf(remoteB)}, "10.2.0.5"},
		{"from the leader's file", other, &engine.StandbyRecord{Phase: engine.StandbyFollowing, Remote: engine.BlockOf(remoteB), FromFile: true}, "10.9.9.9"},
		{"from the leader's file, no block here", nil, &engine.StandbyRecord{Phase: engine.StandbyFollowing, Remote: engine.BlockOf(remoteB), FromFile: true}, "10.2.0.5"},
		{"promoted", other, &engine.StandbyRecord{Phase: engine.StandbyPromoted, Remote: engine.BlockOf(remoteB)}, ""},
	} {
		n := &engine.Node{Config: &config.Config{Name: "node1", StandbyCluster: c.cfg}}
		n.UseStandbyRecord(c.rec)
		got := ""
		if src := engine.RemoteSource(n); src != nil {
			got = src.Conn.Host
		}
		if got != c.want {
			t.Errorf("%s: follows %q, want %q", c.name, got, c.want)
		}
	}
}
