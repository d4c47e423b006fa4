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
				State: "running", Role: "replica", Version: "3.2.2", XLogLocation: 83886440, Timeline: 2,
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
