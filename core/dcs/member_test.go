package dcs_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pgimaged/pgimaged/core/dcs"
)

func TestPatroniMemberJSON(t *testing.T) {
	cases := []struct {
		fixture   string
		want      dcs.Member
		primary   bool
		cloneFrom bool
	}{
		{
			fixture: "patroni2-master.json",
			want: dcs.Member{ConnURL: "postgres://10.0.0.1:5432/postgres", APIURL: "http://10.0.0.1:8008/patroni",
				State: "running", Role: "master", Version: "2.1.4", XLogLocation: 67109208, Timeline: 1},
			primary: true,
		},
		{
			fixture: "patroni3-primary.json",
			want: dcs.Member{ConnURL: "postgres://10.0.0.1:5432/postgres", APIURL: "http://10.0.0.1:8008/patroni",
				State: "running", Role: "primary", Version: "3.2.2", XLogLocation: 83886440, Timeline: 2,
				Tags: map[string]any{"nofailover": false}},
			primary: true,
		},
		{
			fixture: "patroni3-replica-clonefrom.json",
			want: dcs.Member{ConnURL: "postgres://10.0.0.2:5432/postgres", APIURL: "http://10.0.0.2:8008/patroni",
				State: "running", Role: "replica", Version: "3.2.2", XLogLocation: 83886440, Timeline: 2, PendingRestart: true,
				Tags: map[string]any{"clonefrom": true, "nofailover": false}},
			cloneFrom: true,
		},
		{
			fixture: "patroni3-standby-leader.json",
			want: dcs.Member{ConnURL: "postgres://10.0.1.1:5432/postgres", APIURL: "http://10.0.1.1:8008/patroni",
				State: "running", Role: "standby_leader", Version: "3.2.2", XLogLocation: 83886440, Timeline: 2},
			primary: true,
		},
	}
	for _, tc := range cases {
		t.Run(tc.fixture, func(t *testing.T) {
			var m dcs.Member
			if err := json.Unmarshal([]byte(fixture(t, tc.fixture)), &m); err != nil {
				t.Fatalf("unmarshal: %v", err)
			}
			if !reflect.DeepEqual(m, tc.want) {
				t.Errorf("member:\n got %+v\nwant %+v", m, tc.want)
			}
			if m.IsPrimary() != tc.primary {
				t.Errorf("IsPrimary() = %v, want %v", m.IsPrimary(), tc.primary)
			}
			if m.CloneFrom() != tc.cloneFrom {
				t.Errorf("CloneFrom() = %v, want %v", m.CloneFrom(), tc.cloneFrom)
			}
		})
	}
}

func TestMemberRoles(t *testing.T) {
	cases := []struct {
		role    string
		primary bool
	}{
		{"primary", true}, {"master", true}, {"leader", true}, {"standby_leader", true},
		{"replica", false}, {"standby", false}, {"", false}, {"demoted", false},
	}
	for _, tc := range cases {
		if got := (dcs.Member{Role: tc.role}).IsPrimary(); got != tc.primary {
			t.Errorf("role %q: IsPrimary() = %v, want %v", tc.role, got, tc.primary)
		}
	}
}

func TestMemberCloneFromTag(t *testing.T) {
	cases := []struct {
		tags string // JSON, as Patroni writes it
		want bool
	}{
		{`{"clonefrom": true}`, true},
		{`{"clonefrom": "true"}`, true},
		{`{"clonefrom": "True"}`, true},
		{`{"clonefrom": 1}`, true},
		{`{"clonefrom": "yes"}`, true},
		{`{"clonefrom": false}`, false},
		{`{"clonefrom": "false"}`, false},
		{`{"clonefrom": 0}`, false},
		{`{"clonefrom": null}`, false},
		{`{"nofailover": true}`, false},
		{`null`, false},
	}
	for _, tc := range cases {
		var m dcs.Member
		if err := json.Unmarshal([]byte(`{"tags": `+tc.tags+`}`), &m); err != nil {
			t.Fatalf("tags %s: %v", tc.tags, err)
		}
		if got := m.CloneFrom(); got != tc.want {
			t.Errorf("tags %s: CloneFrom() = %v, want %v", tc.tags, got, tc.want)
		}
	}
}

func TestAttemptJSON(t *testing.T) {
	started := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	t.Run("written in seconds", func(t *testing.T) {
		b, err := json.Marshal(dcs.Attempt{Method: "wal_e", Exit: 1, Started: started, Duration: 1500 * time.Millisecond, Tail: []string{"no backups"}})
		if err != nil {
			t.Fatal(err)
		}
		want := `{"method":"wal_e","ok":false,"exit":1,"started":"2024-05-01T10:00:00Z","duration":1.5,"tail":["no backups"]}`
		if string(b) != want {
			t.Errorf("JSON:\n got %s\nwant %s", b, want)
		}
	})
	cases := []struct {
		name     string
		duration string
		want     time.Duration
		fails    bool
	}{
		{name: "seconds", duration: `90`, want: 90 * time.Second},
		{name: "fractional seconds", duration: `0.25`, want: 250 * time.Millisecond},
		{name: "seconds as a string", duration: `"12.5"`, want: 12500 * time.Millisecond},
		{name: "Go duration string", duration: `"1m30s"`, want: 90 * time.Second},
		{name: "null", duration: `null`, want: 0},
		{name: "garbage", duration: `"soon"`, fails: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var a dcs.Attempt
			err := json.Unmarshal([]byte(`{"method":"basebackup","ok":true,"started":"2024-05-01T10:00:00Z","duration":`+tc.duration+`}`), &a)
			if tc.fails {
				if err == nil || !strings.Contains(err.Error(), "basebackup") {
					t.Fatalf("unmarshal: %v, want an error naming the method", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("unmarshal: %v", err)
			}
			want := dcs.Attempt{Method: "basebackup", OK: true, Started: started, Duration: tc.want}
			if !reflect.DeepEqual(a, want) {
				t.Errorf("attempt: %+v, want %+v", a, want)
			}
		})
	}
}

func TestClusterAccessors(t *testing.T) {
	empty, sysid := "", "7301234567890123456"
	members := []dcs.Member{{Name: "a", Role: "replica"}, {Name: "b", Role: "primary"}}
	cases := []struct {
		name          string
		c             dcs.Cluster
		bootstrapping bool
		sysid         string
		leader        string // "" when LeaderMember reports none
	}{
		{name: "empty", c: dcs.Cluster{}},
		{name: "bootstrapping", c: dcs.Cluster{Initialize: &empty}, bootstrapping: true},
		{name: "initialized with a leader", c: dcs.Cluster{Initialize: &sysid, Leader: "b", Members: members}, sysid: sysid, leader: "b"},
		{name: "leader not published", c: dcs.Cluster{Initialize: &sysid, Leader: "c", Members: members}, sysid: sysid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.c.Bootstrapping(); got != tc.bootstrapping {
				t.Errorf("Bootstrapping() = %v, want %v", got, tc.bootstrapping)
			}
			if got := tc.c.SystemIdentifier(); got != tc.sysid {
				t.Errorf("SystemIdentifier() = %q, want %q", got, tc.sysid)
			}
			m, ok := tc.c.LeaderMember()
			if ok != (tc.leader != "") || m.Name != tc.leader {
				t.Errorf("LeaderMember() = %q, %v; want %q", m.Name, ok, tc.leader)
			}
		})
	}
}

func TestMemberCriticalPathJSON(t *testing.T) {
	zone := time.FixedZone("UTC+2", 2*3600)
	t0 := time.Date(2026, 11, 27, 4, 0, 0, 123456789, zone)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	path := &dcs.CriticalPath{Kind: dcs.PathClone, Phases: []dcs.Phase{
		{Name: "agent_start", Start: at(0), End: at(40)},
		{Name: "leader_seen", Start: at(40), End: at(1500)},
		{Name: "plugin_launch", Method: "basebackup", Start: at(1510), End: at(1530)},
		{Name: "clone_method", Method: "basebackup", Start: at(1530), End: at(1930)},
	}}
	m := dcs.Member{Name: "node2", ConnURL: "postgres://127.0.0.1:5433/postgres", State: dcs.StateRunning, Role: dcs.RoleReplica,
		PGImaged: &dcs.MemberDetail{SystemIdentifier: "7300000000000000001", CriticalPath: path}}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}

	// The shape others read: pgimaged.critical_path.{kind, phases[{name, method, start, end, seconds}]},
	// the times in UTC with nanoseconds.
	var raw struct {
		PGImaged struct {
			CriticalPath struct {
				Kind   string           `json:"kind"`
				Phases []map[string]any `json:"phases"`
			} `json:"critical_path"`
		} `json:"pgimaged"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	cp := raw.PGImaged.CriticalPath
	if cp.Kind != "clone" || len(cp.Phases) != len(path.Phases) {
		t.Fatalf("critical_path in %s", b)
	}
	for i, p := range cp.Phases {
		want := path.Phases[i]
		if p["name"] != want.Name {
			t.Errorf("phase %d: name %v, want %s", i, p["name"], want.Name)
		}
		if got, _ := p["method"].(string); got != want.Method {
			t.Errorf("phase %s: method %q, want %q", want.Name, got, want.Method)
		}
		for key, wt := range map[string]time.Time{"start": want.Start, "end": want.End} {
			s, _ := p[key].(string)
			if tm, err := time.Parse(time.RFC3339Nano, s); err != nil || !tm.Equal(wt) || !strings.HasSuffix(s, "Z") {
				t.Errorf("phase %s: %s %q (%v), want %s in UTC", want.Name, key, s, err, wt.UTC().Format(time.RFC3339Nano))
			}
		}
		if sec, _ := p["seconds"].(float64); sec != want.End.Sub(want.Start).Seconds() {
			t.Errorf("phase %s: seconds %v, want %v", want.Name, p["seconds"], want.End.Sub(want.Start).Seconds())
		}
	}

	// Written as a member key and read back, the path is the same.
	st, err := dcs.OpenFile(t.Context(), dcs.FileConfig{Path: t.TempDir()}, "batman", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.PutMember(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	cl, err := st.Cluster(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	got, ok := cl.Member("node2")
	if !ok || got.PGImaged == nil || got.PGImaged.CriticalPath == nil {
		t.Fatalf("member read back without its critical path: %+v", got)
	}
	back := got.PGImaged.CriticalPath
	if back.Kind != path.Kind || len(back.Phases) != len(path.Phases) {
		t.Fatalf("critical path read back: %+v, want %+v", back, path)
	}
	for i, p := range back.Phases {
		w := path.Phases[i]
		if p.Name != w.Name || p.Method != w.Method || !p.Start.Equal(w.Start) || !p.End.Equal(w.End) {
			t.Errorf("phase %d read back: %+v, want %+v", i, p, w)
		}
	}
	if s := back.String(); !strings.HasPrefix(s, "clone agent_start=0.040 leader_seen=1.460 plugin_launch[basebackup]=0.020 clone_method[basebackup]=0.400") || !strings.HasSuffix(s, " total=1.930") {
		t.Errorf("summary %q", s)
	}
}
