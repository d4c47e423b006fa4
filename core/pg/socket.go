package pg

import (
	"path/filepath"
	"strconv"
	"strings"
)

// SplitSocketDirectories reads a unix_socket_directories value as PostgreSQL does: directories
// separated by commas, white space around each dropped, an entry in double quotes (a doubled
// quote inside stands for one) taken as it is, commas and spaces included. An empty value is
// no directory: the server makes no unix socket.
func SplitSocketDirectories(v string) []string {
	var dirs []string
	s := v
	for {
		s = strings.TrimLeft(s, " \t\r\n\f\v")
		if s == "" {
			return dirs
		}
		var dir string
		if s[0] == '"' {
			var b strings.Builder
			i := 1
			for ; i < len(s); i++ {
				if s[i] == '"' {
					if i+1 < len(s) && s[i+1] == '"' {
						b.WriteByte('"')
						i++
						continue
					}
					break
				}
				b.WriteByte(s[i])
			}
			dir = b.String()
			s = s[min(i+1, len(s)):]
			if j := strings.IndexByte(s, ','); j >= 0 {
				s = s[j+1:]
			} else {
				s = ""
			}
		} else {
			j := strings.IndexByte(s, ',')
			if j < 0 {
				dir, s = s, ""
			} else {
				dir, s = s[:j], s[j+1:]
			}
			dir = strings.TrimRight(dir, " \t\r\n\f\v")
		}
		if dir != "" {
			dirs = append(dirs, dir)
		}
	}
}

// LocalHost is where pgimaged reaches the server of dataDir on its own machine, given the
// server's unix socket directories (as in unix_socket_directories), listen_addresses and port:
// the first socket directory it can use, a relative one taken relative to the data directory
// (PostgreSQL's working directory); with none (an empty unix_socket_directories, only abstract
// sockets, paths with a comma or too long for a socket address), TCP to the first listen address,
// a wildcard one meaning loopback ([Loopback]).
func LocalHost(dataDir string, socketDirs []string, listenAddresses string, port int) string {
	if port == 0 {
		port = 5432
	}
	base, err := filepath.Abs(dataDir)
	if err == nil {
		if real, err := filepath.EvalSymlinks(base); err == nil {
			base = real
		}
	}
	first := ""
	for _, d := range socketDirs {
		// An abstract socket (@name) is no path to dial; libpq and pgx read a comma in a host
		// as a list of hosts.
		if d == "" || strings.HasPrefix(d, "@") || strings.Contains(d, ",") {
			continue
		}
		if !filepath.IsAbs(d) {
			d = filepath.Join(base, d)
		}
		d = filepath.Clean(d)
		if first == "" {
			first = d
		}
		if len(d)+len("/.s.PGSQL.")+len(strconv.Itoa(port)) <= maxSocketPath {
			return d
		}
	}
	addr, _, _ := strings.Cut(listenAddresses, ",")
	switch addr = strings.TrimSpace(addr); addr {
	case "":
		if first != "" {
			return first // only a socket path too long to dial; the dial error will say so
		}
		return "127.0.0.1"
	}
	return Loopback(addr)
}

// Loopback is where this machine reaches a server that listens on host: a wildcard address
// means loopback of its family ("*", "0.0.0.0" and an empty host mean 127.0.0.1, "::" means
// ::1); any other host is itself.
func Loopback(host string) string {
	switch host {
	case "", "*", "0.0.0.0":
		return "127.0.0.1"
	case "::":
		return "::1"
	}
	return host
}
