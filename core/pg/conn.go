package pg

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Conn describes a connection to a PostgreSQL server without its password: pgimaged hands
// passwords to libpq through a pgpass file ([WritePgpass]), never inside a connection string.
type Conn struct {
	Host     string // host name, IP address or unix socket directory; empty: libpq's default
	Port     int    // 0: libpq's default
	User     string
	Database string
	// Params are any other libpq keywords: application_name, sslmode, passfile,
	// target_session_attrs, ... A "password" here is never written out.
	Params map[string]string
}

// DSN returns c as a libpq keyword/value string (host=... port=... user=... dbname=...
// then Params by name), with values quoted where libpq needs it. It never holds a password.
func (c Conn) DSN() string {
	var parts []string
	add := func(k, v string) { parts = append(parts, k+"="+quoteDSNValue(v)) }
	if c.Host != "" {
		add("host", c.Host)
	}
	if c.Port != 0 {
		add("port", strconv.Itoa(c.Port))
	}
	if c.User != "" {
		add("user", c.User)
	}
	if c.Database != "" {
		add("dbname", c.Database)
	}
	for _, k := range slices.Sorted(maps.Keys(c.Params)) {
		switch k {
		case "password", "host", "port", "user", "dbname":
			continue
		}
		add(k, c.Params[k])
	}
	return strings.Join(parts, " ")
}

// String is the DSN.
func (c Conn) String() string { return c.DSN() }

// URL returns c as a postgres:// URL, without a password.
func (c Conn) URL() string {
	u := url.URL{Scheme: "postgres", Path: "/" + c.Database}
	if c.User != "" {
		u.User = url.User(c.User)
	}
	q := url.Values{}
	host := c.Host
	if strings.HasPrefix(host, "/") {
		q.Set("host", host)
		host = ""
	}
	if c.Port != 0 {
		host = net.JoinHostPort(host, strconv.Itoa(c.Port))
	} else if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	u.Host = host
	for k, v := range c.Params {
		if k != "password" {
			q.Set(k, v)
		}
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// quoteDSNValue quotes a libpq keyword/value value: single quotes when it is empty or holds
// white space, a quote or a backslash, with quotes and backslashes escaped by a backslash.
func quoteDSNValue(v string) string {
	if v != "" && !strings.ContainsAny(v, " \t\n\r\f\v'\\") {
		return v
	}
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}

// ErrConnString is returned (wrapped) for a connection string that cannot be parsed. The
// message never repeats the string, which may hold a password.
var ErrConnString = errors.New("invalid connection string")

// ParseConnURL reads a connection string in either of libpq's forms, a URL
// (postgres://user:secret@host:5432/db?application_name=x) or keywords
// (host=h port=5432 user=u password=secret dbname=db). A password found in it is returned
// separately, never kept in the Conn.
func ParseConnURL(s string) (c Conn, password string, err error) {
	t := strings.TrimSpace(s)
	if strings.HasPrefix(t, "postgres://") || strings.HasPrefix(t, "postgresql://") {
		return parseURL(t)
	}
	return parseKeywords(t)
}

func connErr(format string, args ...any) error {
	return fmt.Errorf("while parsing a connection string: %w: %s", ErrConnString, fmt.Sprintf(format, args...))
}

func parseURL(s string) (Conn, string, error) {
	u, err := url.Parse(s)
	if err != nil {
		// url errors quote the input; keep the password out of the message.
		return Conn{}, "", connErr("not a valid URL")
	}
	var c Conn
	var password string
	if u.User != nil {
		c.User = u.User.Username()
		password, _ = u.User.Password()
	}
	if strings.Contains(u.Host, ",") {
		return Conn{}, "", connErr("several hosts in one URL are not supported")
	}
	if u.Host != "" {
		host, port := u.Host, ""
		if h, p, err := net.SplitHostPort(u.Host); err == nil {
			host, port = h, p
		} else {
			host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
		}
		c.Host = host
		if port != "" {
			if err := c.setPort(port); err != nil {
				return Conn{}, "", err
			}
		}
	}
	c.Database = strings.TrimPrefix(u.Path, "/")
	for k, vs := range u.Query() {
		if len(vs) == 0 {
			continue
		}
		if err := c.set(k, vs[len(vs)-1], &password); err != nil {
			return Conn{}, "", err
		}
	}
	return c, password, nil
}

func parseKeywords(s string) (Conn, string, error) {
	var c Conn
	var password string
	for {
		s = strings.TrimLeft(s, " \t\n\r\f\v")
		if s == "" {
			return c, password, nil
		}
		eq := strings.IndexByte(s, '=')
		if eq <= 0 {
			return Conn{}, "", connErr("expected keyword=value")
		}
		key := strings.TrimRight(s[:eq], " \t\n\r\f\v")
		if strings.ContainsAny(key, " \t\n\r\f\v") {
			return Conn{}, "", connErr("expected keyword=value")
		}
		s = strings.TrimLeft(s[eq+1:], " \t\n\r\f\v")
		var val strings.Builder
		if strings.HasPrefix(s, "'") {
			i, closed := 1, false
			for ; i < len(s); i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
					val.WriteByte(s[i])
				} else if s[i] == '\'' {
					closed = true
					break
				} else {
					val.WriteByte(s[i])
				}
			}
			if !closed {
				return Conn{}, "", connErr("unterminated quoted value for %q", key)
			}
			s = s[i+1:]
		} else {
			i := 0
			for ; i < len(s) && !strings.ContainsRune(" \t\n\r\f\v", rune(s[i])); i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				val.WriteByte(s[i])
			}
			s = s[i:]
		}
		if err := c.set(key, val.String(), &password); err != nil {
			return Conn{}, "", err
		}
	}
}

func (c *Conn) set(key, val string, password *string) error {
	switch key {
	case "host":
		c.Host = val
	case "port":
		return c.setPort(val)
	case "user":
		c.User = val
	case "dbname":
		c.Database = val
	case "password":
		*password = val
	default:
		if c.Params == nil {
			c.Params = map[string]string{}
		}
		c.Params[key] = val
	}
	return nil
}

func (c *Conn) setPort(p string) error {
	if p == "" {
		c.Port = 0
		return nil
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 {
		return connErr("port %q is not a number from 1 to 65535", p)
	}
	c.Port = n
	return nil
}
