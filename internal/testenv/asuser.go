package testenv

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// ReexecEnv is set to "1" in the environment of a test binary that [RunAsPostgres] re-executed
// as the PostgreSQL OS user.
const ReexecEnv = "PGIMAGED_TEST_REEXEC"

// fileFlags are the test binary's flags that name a file it writes. A re-executed binary writes
// them into its staging directory; they are copied to where the go command expects them.
var fileFlags = map[string]bool{
	"test.testlogfile":  true,
	"test.coverprofile": true,
	"test.cpuprofile":   true,
	"test.memprofile":   true,
	"test.blockprofile": true,
	"test.mutexprofile": true,
	"test.trace":        true,
}

// RunAsPostgres runs a package's tests as the PostgreSQL OS user, for packages whose tests run
// PostgreSQL programs (initdb, pg_ctl, pg_basebackup) in the test process itself, for example a
// plugin served in-process by sdk/plugintest. Call it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(testenv.RunAsPostgres(m)) }
//
// When the tests do not run as root it simply returns m.Run(). As root it copies the test binary
// into a fresh world-readable directory and runs the copy as the account [PostgresUser] picks,
// with the same arguments, HOME set to that account's home, [ReexecEnv]=1 and GOCOVERDIR
// dropped, and returns its exit code. The working directory is kept when that account can reach
// it (so testdata/ resolves as usual), else the copy's directory is used. Files the go command
// asks the binary to write (-test.testlogfile, -test.coverprofile, the other profiles and
// -test.gocoverdir) are written by the copy into its directory and copied back afterwards, so
// test caching and coverage keep working. SIGINT, SIGTERM and SIGQUIT are passed on to the copy.
//
// When the account does not exist, the tests run as root; tests that need it call
// [RequirePostgresUser], which then reports the account missing.
func RunAsPostgres(m *testing.M) int {
	if os.Geteuid() != 0 || os.Getenv(ReexecEnv) == "1" {
		return m.Run()
	}
	name := os.Getenv("PGIMAGED_TEST_USER")
	if name == "" {
		name = "postgres"
	}
	u, err := lookupPGUser(name)
	if err != nil {
		fmt.Fprintf(os.Stderr, "testenv: tests stay root: %v\n", err)
		return m.Run()
	}
	code, err := reexec(u)
	if err != nil {
		fmt.Fprintf(os.Stderr, "testenv: while running the tests as OS user %s: %v\n", u.Name, err)
		return 1
	}
	return code
}

// RequirePostgresUser reports the test's PostgreSQL account missing (see [Missing]) when the
// test process itself runs as root, which PostgreSQL refuses: the package's TestMain should call
// [RunAsPostgres].
func RequirePostgresUser(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		Missing(t, "the tests run as root and could not switch to an unprivileged OS user for PostgreSQL "+
			"(create the postgres user or set PGIMAGED_TEST_USER, and call testenv.RunAsPostgres from TestMain)")
	}
}

func lookupPGUser(name string) (PGUser, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return PGUser{}, fmt.Errorf("OS user %s does not exist (PostgreSQL refuses to run as root): %w", name, err)
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return PGUser{}, fmt.Errorf("OS user %s has uid %q: %w", name, u.Uid, err)
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return PGUser{}, fmt.Errorf("OS user %s has gid %q: %w", name, u.Gid, err)
	}
	return PGUser{Name: name, UID: uint32(uid), GID: uint32(gid), Home: u.HomeDir, Root: true}, nil
}

// copyBack is a file or directory the copy writes that must end up where the go command wants it.
type copyBack struct {
	staged, target string
	dir            bool
}

func reexec(u PGUser) (int, error) {
	self, err := os.Executable()
	if err != nil {
		return 0, fmt.Errorf("while locating the test binary: %w", err)
	}
	stage, err := os.MkdirTemp("", "pgimaged-asuser-")
	if err != nil {
		return 0, fmt.Errorf("while creating a staging directory: %w", err)
	}
	defer os.RemoveAll(stage)
	if err := os.Chmod(stage, 0o755); err != nil {
		return 0, fmt.Errorf("while opening staging directory %q: %w", stage, err)
	}
	bin := filepath.Join(stage, filepath.Base(self))
	if err := copyFile(self, bin, 0o755); err != nil {
		return 0, fmt.Errorf("while copying the test binary to %q: %w", bin, err)
	}
	out := filepath.Join(stage, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		return 0, fmt.Errorf("while creating %q: %w", out, err)
	}
	if err := os.Chown(out, int(u.UID), int(u.GID)); err != nil {
		return 0, fmt.Errorf("while giving %q to %s: %w", out, u.Name, err)
	}

	cwd, err := os.Getwd()
	if err != nil {
		return 0, fmt.Errorf("while reading the working directory: %w", err)
	}
	args, backs, err := stageArgs(os.Args[1:], cwd, out)
	if err != nil {
		return 0, err
	}
	dir := cwd
	if !reachable(u, cwd) {
		fmt.Fprintf(os.Stderr, "testenv: OS user %s cannot reach %s; running the tests in %s\n", u.Name, cwd, stage)
		dir = stage
	}

	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = childEnv(os.Environ(), u)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: &syscall.Credential{Uid: u.UID, Gid: u.GID, Groups: supplementaryGroups(u)},
		Pdeathsig:  syscall.SIGKILL,
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGQUIT)
	defer signal.Stop(sigs)
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("while starting %s as %s: %w", bin, u.Name, err)
	}
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-sigs:
				_ = cmd.Process.Signal(s)
			case <-done:
				return
			}
		}
	}()
	werr := cmd.Wait()
	close(done)

	for _, b := range backs {
		if err := b.copy(); err != nil {
			fmt.Fprintf(os.Stderr, "testenv: %v\n", err)
		}
	}
	var ee *exec.ExitError
	switch {
	case werr == nil:
		return 0, nil
	case errors.As(werr, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			fmt.Fprintf(os.Stderr, "testenv: the tests running as %s were killed by %v\n", u.Name, ws.Signal())
			return 1, nil
		}
		return ee.ExitCode(), nil
	default:
		return 0, fmt.Errorf("while waiting for the tests: %w", werr)
	}
}

// stageArgs rewrites the flags that name output files so that the copy writes them under out.
func stageArgs(in []string, cwd, out string) ([]string, []copyBack, error) {
	outputDir := cwd
	for _, a := range in {
		if v, ok := strings.CutPrefix(a, "-test.outputdir="); ok {
			outputDir = v
		}
	}
	var (
		args  []string
		backs []copyBack
	)
	for i := 0; i < len(in); i++ {
		a := in[i]
		name, value, hasValue := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-"), "=")
		if !strings.HasPrefix(a, "-") || (!fileFlags[name] && name != "test.gocoverdir" && name != "test.outputdir") {
			args = append(args, a)
			continue
		}
		if !hasValue {
			if i+1 >= len(in) {
				args = append(args, a)
				continue
			}
			i++
			value = in[i]
		}
		switch {
		case name == "test.outputdir":
			args = append(args, "-test.outputdir="+out)
		case name == "test.gocoverdir":
			staged := filepath.Join(out, "gocoverdir")
			if err := os.Mkdir(staged, 0o777); err != nil {
				return nil, nil, fmt.Errorf("while creating %q: %w", staged, err)
			}
			if err := os.Chmod(staged, 0o777); err != nil {
				return nil, nil, fmt.Errorf("while opening %q: %w", staged, err)
			}
			args = append(args, "-test.gocoverdir="+staged)
			backs = append(backs, copyBack{staged: staged, target: value, dir: true})
		default:
			target := value
			if !filepath.IsAbs(target) {
				base := outputDir
				if name == "test.testlogfile" {
					base = cwd
				}
				target = filepath.Join(base, target)
			}
			staged := filepath.Join(out, strings.TrimPrefix(name, "test."))
			args = append(args, "-"+name+"="+staged)
			backs = append(backs, copyBack{staged: staged, target: target})
		}
	}
	return args, backs, nil
}

func (b copyBack) copy() error {
	if !b.dir {
		if _, err := os.Stat(b.staged); errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err := copyFile(b.staged, b.target, 0o644); err != nil {
			return fmt.Errorf("while copying %q to %q: %w", b.staged, b.target, err)
		}
		return nil
	}
	entries, err := os.ReadDir(b.staged)
	if err != nil {
		return fmt.Errorf("while reading %q: %w", b.staged, err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		src, dst := filepath.Join(b.staged, e.Name()), filepath.Join(b.target, e.Name())
		if err := copyFile(src, dst, 0o644); err != nil {
			return fmt.Errorf("while copying %q to %q: %w", src, dst, err)
		}
	}
	return nil
}

func childEnv(base []string, u PGUser) []string {
	env := make([]string, 0, len(base)+4)
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "GOCOVERDIR", "HOME", "USER", "LOGNAME", ReexecEnv:
			continue
		}
		env = append(env, kv)
	}
	env = append(env, ReexecEnv+"=1", "USER="+u.Name, "LOGNAME="+u.Name)
	if u.Home != "" {
		env = append(env, "HOME="+u.Home)
	}
	return env
}

// supplementaryGroups lists the groups u belongs to besides its primary group.
func supplementaryGroups(u PGUser) []uint32 {
	var out []uint32
	uu, err := user.LookupId(strconv.Itoa(int(u.UID)))
	if err != nil {
		return nil
	}
	ids, err := uu.GroupIds()
	if err != nil {
		return nil
	}
	for _, id := range ids {
		if g, err := strconv.Atoi(id); err == nil && uint32(g) != u.GID {
			out = append(out, uint32(g))
		}
	}
	return out
}

// reachable reports whether u can search every directory from / down to dir.
func reachable(u PGUser, dir string) bool {
	groups := map[uint32]bool{u.GID: true}
	for _, g := range supplementaryGroups(u) {
		groups[g] = true
	}
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		var st syscall.Stat_t
		if err := syscall.Stat(d, &st); err != nil {
			return false
		}
		var ok bool
		switch {
		case st.Uid == u.UID:
			ok = st.Mode&0o100 != 0
		case groups[st.Gid]:
			ok = st.Mode&0o010 != 0
		default:
			ok = st.Mode&0o001 != 0
		}
		if !ok {
			return false
		}
		if d == filepath.Dir(d) {
			return true
		}
	}
}

func copyFile(src, dst string, perm os.FileMode) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	if err := os.WriteFile(dst, b, perm); err != nil {
		return err
	}
	return os.Chmod(dst, perm)
}
