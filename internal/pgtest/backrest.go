package pgtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgimaged/pgimaged/internal/testenv"
)

// BackRest is a real pgBackRest repository holding a full backup of a real primary whose WAL
// is archived into it.
type BackRest struct {
	Primary *Primary
	Config  string // pgbackrest.conf
	Stanza  string
	Bin     string
	User    testenv.PGUser
}

// NewBackRest starts a primary that archives into a fresh repository (stanza "batman"), creates
// the stanza and takes a full backup. A second stanza, "empty", is created without a backup.
func NewBackRest(t *testing.T) *BackRest {
	t.Helper()
	testenv.RequirePostgresUser(t)
	bin := testenv.LookPath(t, "pgbackrest", "/usr/bin")
	u := testenv.PostgresUser(t)
	base := u.TempDir(t)
	r := &BackRest{Config: filepath.Join(base, "pgbackrest.conf"), Stanza: "batman", Bin: bin, User: u}
	r.Primary = Initdb(t, Options{
		// pgBackRest reaches the primary over its socket as the superuser.
		HBA: []string{"local all all trust"},
		Parameters: map[string]string{
			"archive_mode":    "on",
			"archive_command": fmt.Sprintf("%s --config=%s --stanza=%s archive-push %%p", bin, r.Config, r.Stanza),
		},
	})
	for _, d := range []string{"repo", "log", "lock", "spool"} {
		if err := os.Mkdir(filepath.Join(base, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	u.Chown(t, base)
	stanza := func(name string) string {
		return fmt.Sprintf("[%s]\npg1-path=%s\npg1-port=%d\npg1-socket-path=%s\npg1-user=%s\n\n",
			name, r.Primary.DataDir, r.Primary.Port, r.Primary.SocketDir, r.Primary.Superuser)
	}
	conf := fmt.Sprintf("[global]\nrepo1-path=%s/repo\nrepo1-retention-full=99\nlog-path=%s/log\nlock-path=%s/lock\n"+
		"spool-path=%s/spool\nlog-level-file=off\nstart-fast=y\narchive-timeout=120\n\n",
		base, base, base, base) + stanza(r.Stanza) + stanza("empty")
	if err := os.WriteFile(r.Config, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	u.Chown(t, r.Config)
	r.Primary.Start(t)
	r.Primary.EnsureRoles(t)
	r.Run(t, "--stanza="+r.Stanza, "stanza-create")
	r.Run(t, "--stanza=empty", "stanza-create")
	r.Run(t, "--stanza="+r.Stanza, "--type=full", "backup")
	return r
}

// Run runs pgBackRest with the repository's configuration as the PostgreSQL OS user.
func (r *BackRest) Run(t *testing.T, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := r.User.AsUser(exec.CommandContext(ctx, r.Bin, append([]string{"--config=" + r.Config}, args...)...))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pgbackrest %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// SwitchAndArchive ends the current WAL segment and waits until the primary has archived it.
func (r *BackRest) SwitchAndArchive(t *testing.T) { r.Primary.SwitchAndArchive(t) }
