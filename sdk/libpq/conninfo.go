package libpq

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// ErrConnString is returned (wrapped) for a connection string that cannot be read. The message
// never repeats the string, which may hold a password.
var ErrConnString = errors.New("invalid connection string")

// Parse reads a connection string in either of libpq's forms: keywords (host=h port=5432
// user=u dbname=db; a value in single quotes or up to white space, '\' escaping the next
// character) or a URL (postgres://u@h1:5432,h2/db?sslmode=require). settings holds what the
// string itself says, by libpq's keywords (a URL's hosts and ports become host and port, as
// comma lists when there are several; its path dbname), and never the password, which is
// returned apart. A keyword written twice keeps its last value. Nothing is read from the
// environment or a pgpass file: that is left to whoever connects.
func Parse(s string) (settings map[string]string, password string, err error) {
	s = strings.TrimSpace(s)
	if rest, ok := cutScheme(s); ok {
		settings, err = parseURL(rest)
	} else {
		settings, err = parseKeywords(s)
	}
	if err != nil {
		return nil, "", fmt.Errorf("while reading a connection string: %w: %v", ErrConnString, err)
	}
	password = settings["password"]
	delete(settings, "password")
	return settings, password, nil
}

// Quote writes v as a value of a keyword/value connection string: as it is when libpq reads it
// back so, else in single quotes (an empty value, white space, a quote or a backslash), quotes
// and backslashes escaped by a backslash.
func Quote(v string) string {
	if v != "" && !strings.ContainsAny(v, " \t\n\r\f\v'\\") {
		return v
	}
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}

// WithPassfile returns conn, in either form, with its passfile set to path, unless conn sets
// one already or path is empty. libpq then reads the password from that pgpass file, as
// pgimaged hands it over (PGPASSFILE in a request's Env) to a plugin that connects itself
// rather than through a program that reads PGPASSFILE. Unless conn holds a password, an empty
// one is set too: libpq and pgx take a PGPASSWORD from the plugin's environment over any
// pgpass file, and an empty password means none. A conn that cannot be read is returned as it
// is, for the connection to refuse.
func WithPassfile(conn, path string) string {
	settings, password, err := Parse(conn)
	if path == "" || err != nil {
		return conn
	}
	if _, ok := settings["passfile"]; ok {
		return conn
	}
	out := With(conn, "passfile", path)
	if password == "" {
		out = With(out, "password", "")
	}
	return out
}

// With returns conn, in either of libpq's forms, with keyword set to value: written again at
// the end (a URL's query parameter, or keyword=value), whose last value libpq keeps.
func With(conn, keyword, value string) string {
	conn = strings.TrimSpace(conn)
	if _, ok := cutScheme(conn); ok {
		sep := "?"
		if strings.Contains(conn, "?") {
			sep = "&"
		}
		return conn + sep + keyword + "=" + url.QueryEscape(value)
	}
	return strings.TrimSpace(conn + " " + keyword + "=" + Quote(value))
}

func cutScheme(s string) (string, bool) {
	if rest, ok := strings.CutPrefix(s, "postgresql://"); ok {
		return rest, true
	}
	return strings.CutPrefix(s, "postgres://")
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

// parseKeywords reads a keyword/value connection string as libpq does. The error names where
// it is not such a string, never a value.
func parseKeywords(s string) (map[string]string, error) {
	out := map[string]string{}
	i := 0
	skip := func() {
		for i < len(s) && isSpace(s[i]) {
			i++
		}
	}
	for {
		skip()
		if i >= len(s) {
			return out, nil
		}
		start := i
		for i < len(s) && s[i] != '=' && !isSpace(s[i]) {
			i++
		}
		key := s[start:i]
		skip()
		if i >= len(s) || s[i] != '=' {
			return nil, errors.New("a word without \"=\" and a value")
		}
		i++
		skip()
		var v strings.Builder
		if i < len(s) && s[i] == '\'' {
			for i++; i < len(s) && s[i] != '\''; i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				v.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, fmt.Errorf("unterminated quoted value of %q", key)
			}
			i++
		} else {
			for ; i < len(s) && !isSpace(s[i]); i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				v.WriteByte(s[i])
			}
		}
		out[key] = v.String()
	}
}

// parseURL reads a postgres:// URL without its scheme: [user[:password]@][host][:port][,...]
// [/dbname][?keyword=value&...], percent-encoded.
func parseURL(p string) (map[string]string, error) {
	out := map[string]string{}
	rest, query, _ := strings.Cut(p, "?")
	authority, db, hasDB := strings.Cut(rest, "/")
	if i := strings.LastIndexByte(authority, '@'); i >= 0 {
		user, pw, hasPW := strings.Cut(authority[:i], ":")
		if err := decodeInto(out, "user", user); err != nil {
			return nil, err
		}
		if hasPW {
			if err := decodeInto(out, "password", pw); err != nil {
				return nil, err
			}
		}
		authority = authority[i+1:]
	}
	var hosts, ports []string
	anyHost, anyPort := false, false
	for h := range strings.SplitSeq(authority, ",") {
		host, port := h, ""
		if strings.HasPrefix(h, "[") {
			end := strings.IndexByte(h, ']')
			if end < 0 {
				return nil, errors.New("an IPv6 address without its closing bracket")
			}
			host, port = h[1:end], strings.TrimPrefix(h[end+1:], ":")
		} else if j := strings.LastIndexByte(h, ':'); j >= 0 {
			host, port = h[:j], h[j+1:]
		}
		host, err := url.PathUnescape(host)
		if err != nil {
			return nil, errors.New("a host that cannot be decoded")
		}
		hosts, ports = append(hosts, host), append(ports, port)
		anyHost, anyPort = anyHost || host != "", anyPort || port != ""
	}
	if anyHost {
		out["host"] = strings.Join(hosts, ",")
	}
	if anyPort {
		out["port"] = strings.Join(ports, ",")
	}
	if hasDB && db != "" {
		if err := decodeInto(out, "dbname", db); err != nil {
			return nil, err
		}
	}
	if query != "" {
		q, err := url.ParseQuery(query)
		if err != nil {
			return nil, errors.New("a query that cannot be decoded")
		}
		for k, vs := range q {
			out[k] = vs[len(vs)-1]
		}
	}
	return out, nil
}

func decodeInto(out map[string]string, key, v string) error {
	d, err := url.PathUnescape(v)
	if err != nil {
		return fmt.Errorf("a %s that cannot be decoded", key)
	}
	if d != "" {
		out[key] = d
	}
	return nil
}
