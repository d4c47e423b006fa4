package pg

import (
	"fmt"
	"maps"
	"net"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

const (
	// SettingsFile is the include file [WriteSettings] writes into a data directory.
	SettingsFile = "postgresql.pgimaged.conf"
	// IdentMap is the pg_ident.conf map that lets pgimaged's OS user in as the superuser.
	IdentMap = "pgimaged"

	managedBegin = "# BEGIN pgimaged"
	managedEnd   = "# END pgimaged"
	// maxSocketPath is what fits in sun_path (108 bytes with the terminating NUL).
	maxSocketPath = 107
)

// Settings is the configuration pgimaged gives a data directory before it starts PostgreSQL.
//
// pgimaged connects to its own server over the unix socket with peer authentication: pg_hba.conf
// starts with "local all <Superuser> peer map=pgimaged" and pg_ident.conf maps OSUser (the OS
// account pgimaged runs as) to Superuser. This works when the superuser's name differs from the
// OS user's, before any password is set, and after a restore from a backup whose passwords
// pgimaged does not know; only processes of that OS user (which owns the data directory anyway)
// gain anything. As the first line that matches wins, every other local connection as Superuser
// must come from OSUser too; keep the socket in a directory only that user reaches (the default, [SocketDirFor]) or use TCP.
// Wherever unix_socket_directories puts the socket, [Server] connects where the running server
// says it listens; with an empty unix_socket_directories it connects over TCP, where pg_hba.conf
// decides (with the superuser's password, say).
type Settings struct {
	// Listen is "host:port": "127.0.0.1:5432" sets listen_addresses = '127.0.0.1' and
	// port = 5432, "*:5432" listens everywhere, "[::1]:5432" on IPv6, "10.0.0.1,127.0.0.1:5432"
	// on several addresses. Empty leaves both to Parameters or PostgreSQL's defaults.
	Listen string

	// Parameters are written as name = 'value'. Listen and SocketDir win over the parameters
	// they set (listen_addresses, port, unix_socket_directories).
	Parameters map[string]string

	// HBA is the whole of pg_hba.conf after pgimaged's own block. Nil keeps the lines already
	// there (initdb's, or the ones a backup brought); an empty non-nil slice leaves only
	// pgimaged's block.
	HBA []string

	// SocketDir sets unix_socket_directories. Empty means the parameter of that name when it is
	// set (an empty value: no unix socket at all), else [SocketDirFor] the data directory: beside
	// it, mode 0700 (no need for a writable /var/run/postgresql, and nothing in the data
	// directory that pg_rewind or a file-level copy would trip over).
	SocketDir string

	// Superuser is the role pgimaged connects as. Empty means OSUser, like initdb's default.
	Superuser string

	// OSUser is the OS account pgimaged connects from. Empty means the account this process
	// runs as.
	OSUser string
}

// SplitListen splits a listen address ("127.0.0.1:5432", "*:5432", "[::1]:5432",
// "10.0.0.1,[::1]:5432", "localhost") into PostgreSQL's listen_addresses and port. A missing
// port is 0.
func SplitListen(listen string) (addresses string, port int, err error) {
	s := strings.TrimSpace(listen)
	if s == "" {
		return "", 0, fmt.Errorf("empty listen address")
	}
	hosts := strings.Split(s, ",")
	last := strings.TrimSpace(hosts[len(hosts)-1])
	switch {
	case strings.HasPrefix(last, "[") && !strings.HasSuffix(last, "]"),
		!strings.HasPrefix(last, "[") && strings.Count(last, ":") == 1:
		h, p, err := net.SplitHostPort(last)
		if err != nil {
			return "", 0, fmt.Errorf("listen address %q: %w", listen, err)
		}
		port, err = strconv.Atoi(p)
		if err != nil || port < 1 || port > 65535 {
			return "", 0, fmt.Errorf("listen address %q: port %q is not a number from 1 to 65535", listen, p)
		}
		hosts[len(hosts)-1] = h
	}
	for i, h := range hosts {
		h = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(h), "["), "]")
		if h == "" {
			return "", 0, fmt.Errorf("listen address %q: empty host", listen)
		}
		hosts[i] = h
	}
	return strings.Join(hosts, ","), port, nil
}

// SocketDirFor is the default socket directory of the data directory dir: beside it, named
// after it (/srv/pg/main → /srv/pg/.main.sock), where pgimaged's other marks of the directory
// live too.
func SocketDirFor(dir string) string {
	d := filepath.Clean(dir)
	return filepath.Join(filepath.Dir(d), "."+filepath.Base(d)+".sock")
}

// WriteSettings configures the data directory dir: it writes postgresql.pgimaged.conf, makes
// postgresql.conf include it (once; a missing postgresql.conf is created), and puts pgimaged's
// block at the top of pg_hba.conf and pg_ident.conf (see [Settings]). Running it again with the
// same Settings changes nothing.
func WriteSettings(dir string, s Settings) error {
	wrap := func(err error) error {
		return fmt.Errorf("while writing settings into data directory %q: %w", dir, err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return wrap(err)
	}
	if s.OSUser == "" {
		u, err := user.Current()
		if err != nil {
			return wrap(fmt.Errorf("looking up the OS user: %w", err))
		}
		s.OSUser = u.Username
	}
	if s.Superuser == "" {
		s.Superuser = s.OSUser
	}

	params := make(map[string]string, len(s.Parameters)+3)
	for k, v := range s.Parameters {
		if !validParamName(k) {
			return wrap(fmt.Errorf("%q is not a parameter name", k))
		}
		params[strings.ToLower(k)] = v
	}
	if s.Listen != "" {
		addrs, port, err := SplitListen(s.Listen)
		if err != nil {
			return wrap(err)
		}
		params["listen_addresses"] = addrs
		if port != 0 {
			params["port"] = strconv.Itoa(port)
		}
	}
	_, socketSet := params["unix_socket_directories"]
	switch {
	case s.SocketDir != "":
		params["unix_socket_directories"] = s.SocketDir
	case !socketSet: // an empty value is the user's: no unix socket, pgimaged connects over TCP
		sock := SocketDirFor(abs)
		if len(sock)+len("/.s.PGSQL.65535") > maxSocketPath {
			return wrap(fmt.Errorf("the path of the socket directory beside the data directory, %s, is too long for a unix socket; set unix_socket_directories", sock))
		}
		if err := mkdirLikeDir(sock, abs, 0o700); err != nil {
			return wrap(fmt.Errorf("while creating the socket directory: %w", err))
		}
		params["unix_socket_directories"] = sock
	}

	var conf strings.Builder
	conf.WriteString("# Written by pgimaged before PostgreSQL starts; edits here are overwritten.\n")
	conf.WriteString("# Change the pgimaged configuration, or use ALTER SYSTEM (postgresql.auto.conf wins).\n")
	for _, k := range slices.Sorted(maps.Keys(params)) {
		fmt.Fprintf(&conf, "%s = %s\n", k, QuoteConfValue(params[k]))
	}
	if err := writeFileAtomic(filepath.Join(dir, SettingsFile), []byte(conf.String()), 0o600); err != nil {
		return wrap(err)
	}
	if err := ensureInclude(dir, SettingsFile); err != nil {
		return wrap(err)
	}

	superuser, err := hbaToken(s.Superuser)
	if err != nil {
		return wrap(fmt.Errorf("superuser name: %w", err))
	}
	osUser, err := hbaToken(s.OSUser)
	if err != nil {
		return wrap(fmt.Errorf("OS user name: %w", err))
	}
	hba := []string{
		managedBegin + ": the OS user running pgimaged connects as the superuser over the unix socket",
		"local\tall\t" + superuser + "\tpeer map=" + IdentMap,
		managedEnd,
	}
	if err := writeManaged(filepath.Join(dir, "pg_hba.conf"), hba, s.HBA); err != nil {
		return wrap(err)
	}
	ident := []string{
		managedBegin + ": see pg_hba.conf",
		IdentMap + "\t" + osUser + "\t" + superuser,
		managedEnd,
	}
	if err := writeManaged(filepath.Join(dir, "pg_ident.conf"), ident, nil); err != nil {
		return wrap(err)
	}
	return nil
}

// writeManaged writes path as block followed by rest, or, when rest is nil, by the lines already
// in path outside an earlier pgimaged block.
func writeManaged(path string, block, rest []string) error {
	if rest == nil {
		lines, _, err := readLines(path)
		if err != nil {
			return err
		}
		rest = stripManaged(lines)
	}
	lines := append(slices.Clone(block), rest...)
	return writeFileAtomic(path, []byte(strings.Join(lines, "\n")+"\n"), fileMode(path, 0o600))
}

func stripManaged(lines []string) []string {
	var out []string
	in := false
	for _, l := range lines {
		switch t := strings.TrimSpace(l); {
		case strings.HasPrefix(t, managedBegin):
			in = true
		case in && strings.HasPrefix(t, managedEnd):
			in = false
		case !in:
			out = append(out, l)
		}
	}
	return out
}

// hbaToken quotes a role or OS user name for pg_hba.conf and pg_ident.conf. Quoting keeps
// names such as "all" or "replication" from being read as keywords.
func hbaToken(name string) (string, error) {
	if name == "" || strings.ContainsAny(name, "\"\n\r") {
		return "", fmt.Errorf("%q cannot be written into pg_hba.conf", name)
	}
	return `"` + name + `"`, nil
}
