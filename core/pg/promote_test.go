package pg_test

import (
	"errors"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/pgimaged/pgimaged/core/pg"
	"github.com/pgimaged/pgimaged/internal/pgtest"
	"github.com/pgimaged/pgimaged/internal/testenv"
)

// startStandby copies primary into a new directory and starts it as a streaming standby.
func startStandby(t *testing.T, primary *pgtest.Primary) *pg.Server {
	t.Helper()
	dir := filepath.Join(testenv.PostgresUser(t).TempDir(t), "standby")
	primary.Basebackup(t, dir)
	err := pg.WriteSettings(dir, pg.Settings{
		Listen:    "127.0.0.1:" + strconv.Itoa(pgtest.FreePort(t)),
		HBA:       []string{"host all all 127.0.0.1/32 scram-sha-256"},
		Superuser: primary.Superuser,
	})
	if err != nil {
		t.Fatal(err)
	}
	source := primary.ReplConn()
	source.Params = map[string]string{"passfile": primary.WritePgpass(t)}
	if err := pg.WriteRecovery(dir, 15, pg.Recovery{Standby: true, Settings: map[string]string{"primary_conninfo": source.DSN()}}); err != nil {
		t.Fatal(err)
	}
	s := newServer(t, dir, 0, primary.Superuser)
	ctx := testContext(t)
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.WaitStreaming(ctx); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestPromoteReadsTheSwitchPoint: a promoted standby leaves recovery on a new timeline whose
// history file names the parent timeline and a switch point the standby had replayed; its
// position is then a primary's. Promoting a primary changes nothing.
func TestPromoteReadsTheSwitchPoint(t *testing.T) {
	primary := pgtest.StartPrimary(t, pgtest.Options{})
	primary.Exec(t, "CREATE TABLE t (id int); INSERT INTO t VALUES (1)")
	s := startStandby(t, primary)
	ctx := testContext(t)

	before, err := s.WALPosition(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !before.InRecovery || before.Timeline != 1 || before.Replayed == 0 || before.Received < before.Replayed {
		t.Fatalf("a streaming standby's position: %+v", before)
	}
	primary.Stop(t)
	if _, _, err := pg.SwitchPoint(s.DataDir, 2); !errors.Is(err, pg.ErrNoTimelineHistory) {
		t.Fatalf("SwitchPoint before the promotion: %v, want ErrNoTimelineHistory", err)
	}
	if err := s.Promote(ctx); err != nil {
		t.Fatal(err)
	}
	after, err := s.WALPosition(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after.InRecovery || after.Timeline != 2 {
		t.Fatalf("after the promotion: %+v, want a primary on timeline 2", after)
	}
	parent, at, err := pg.SwitchPoint(s.DataDir, 2)
	if err != nil {
		t.Fatal(err)
	}
	if parent != 1 || at < before.Replayed || at > after.Replayed {
		t.Errorf("switch point: timeline %d at %s, want timeline 1 between %s and %s", parent, at, before.Replayed, after.Replayed)
	}
	if err := s.Promote(ctx); err != nil {
		t.Errorf("promoting a primary: %v", err)
	}
	if err := s.Reload(ctx); err != nil {
		t.Errorf("Reload: %v", err)
	}
}

func TestParseLSN(t *testing.T) {
	for in, want := range map[string]pg.LSN{"0/0": 0, "16/B374D848": 0x16B374D848, " 0/3000060 ": 0x3000060} {
		got, err := pg.ParseLSN(in)
		if err != nil || got != want {
			t.Errorf("ParseLSN(%q) = %s, %v; want %s", in, got, err, want)
		}
		if back, _ := pg.ParseLSN(got.String()); back != got {
			t.Errorf("LSN %s does not read back", got)
		}
	}
	for _, bad := range []string{"", "0", "x/1", "1/", "100000000/0"} {
		if _, err := pg.ParseLSN(bad); err == nil {
			t.Errorf("ParseLSN(%q) succeeded", bad)
		}
	}
}
