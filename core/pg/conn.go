package pg

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgimaged/pgimaged/sdk/libpq"
)

// Conn describes a connection to a PostgreSQL server without its password: pgimaged hands
// passwords to libpq through a pgpass file ([WritePgpass]), never inside a connection string.
type Conn struct {
	Host     string // host name, IP address or unix socket directory; empty: libpq's default
	Port     int    // 0: libpq's default
	User     string
	Database string
	// Params are any other libpq keywords: application_name, sslmode, connect_timeout, ...
	// A "password" or "sslpassword" here is never written out.
	Params map[string]string
	// Ports are one port per host when Host names several ("a,b" with 5432, 5433), as libpq
	// takes them; they replace Port. One port alone is used for every host.
	Ports []int
	// SSLPassword is the passphrase of the client key (sslkey): a secret, like a password never
	// in the DSN. pgimaged's own connections use it ([Conn.Config]), primary_conninfo carries it
	// ([Conn.Conninfo]), and methods read it from a service file ([Conn.ServiceFile]).
	SSLPassword string
}

// DSN returns c as a libpq keyword/value string (host=... port=... user=... dbname=...
// then Params by name), with values quoted where libpq needs it. It never holds a password.
func (c Conn) DSN() string {
	var parts []string
	add := func(k, v string) { parts = append(parts, k+"="+libpq.Quote(v)) }
	if c.Host != "" {
		add("host", c.Host)
	}
	if len(c.Ports) > 0 {
		ports := make([]string, len(c.Ports))
		for i, p := range c.Ports {
			ports[i] = strconv.Itoa(p)
		}
		add("port", strings.Join(ports, ","))
	} else if c.Port != 0 {
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
		case "password", "sslpassword", "host", "port", "user", "dbname":
			continue
		}
		add(k, c.Params[k])
	}
	return strings.Join(parts, " ")
}

// String is the DSN.
func (c Conn) String() string { return c.DSN() }

// GoString is like String for the %#v verb: never the passphrase.
func (c Conn) GoString() string {
	if c.SSLPassword != "" {
		return "pg.Conn{" + c.DSN() + " sslpassword=" + mask + "}"
	}
	return "pg.Conn{" + c.DSN() + "}"
}

// ErrConnString is returned (wrapped) for a connection string that cannot be parsed. The
// message never repeats the string, which may hold a password.
var ErrConnString = libpq.ErrConnString

// ParseConnURL reads a connection string in either of libpq's forms, a URL
// (postgres://user:secret@host:5432/db?application_name=x) or keywords
// (host=h port=5432 user=u password=secret dbname=db), with pgx's parser. Only what the string
// itself says is kept: libpq's defaults (PGHOST, PGUSER, the OS user, a password found in
// ~/.pgpass, ...) are left to whoever connects. A password in the string is returned separately,
// never kept in the Conn. One host only. The TLS files (sslrootcert, sslcert, sslkey, and
// sslcrl, which pgx does not know), which pgx keeps only in its own form, are read back from
// the string itself (a URL's query or the keywords), as absolute paths. The keys that need
// libpq's own handling (passfile, service, target_session_attrs, ...) are refused, since
// pgimaged could not pass them on faithfully, and so is sslpassword, a secret that belongs in
// the authentication settings.
func ParseConnURL(s string) (c Conn, password string, err error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Conn{}, "", nil
	}
	keys, err := connKeys(s)
	if err != nil {
		return Conn{}, "", err
	}
	cfg, err := pgconn.ParseConfigWithOptions(s, pgconn.ParseConfigOptions{ConnStringAllowedKeys: keys})
	if err != nil {
		return Conn{}, "", connErr(err)
	}
	var query url.Values // a URL's parameters, as pgx reads them
	if strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://") {
		if u, err := url.Parse(s); err == nil {
			query = u.Query()
		}
	}
	for _, fb := range cfg.Fallbacks {
		if fb.Host != cfg.Host || fb.Port != cfg.Port {
			return Conn{}, "", fmt.Errorf("while parsing a connection string: %w: several hosts are not supported", ErrConnString)
		}
	}
	for _, k := range keys {
		switch k {
		case "host":
			c.Host = cfg.Host
		case "port":
			c.Port = int(cfg.Port)
		case "user":
			c.User = cfg.User
		case "database":
			c.Database = cfg.Database
		case "password":
			password = cfg.Password
		default:
			v, ok := cfg.RuntimeParams[k]
			if !ok {
				v, ok = exposedSetting(cfg, k)
			}
			if _, file := tlsFileEnv[k]; file { // pgx keeps them in its own form, sslcrl as a run-time parameter
				if query != nil {
					v, ok = query.Get(k), true
				} else {
					v, ok = keywordValues(s)[k]
				}
				if ok && !filepath.IsAbs(v) {
					return Conn{}, "", fmt.Errorf("while parsing a connection string: %w: %s must be an absolute path: "+
						"pgimaged and pg_basebackup do not run in the same directory", ErrConnString, k)
				}
			}
			if !ok {
				return Conn{}, "", refused(k)
			}
			if c.Params == nil {
				c.Params = map[string]string{}
			}
			if k == "ssl" { // the URL alias ssl=true
				k = "sslmode"
			}
			c.Params[k] = v
		}
	}
	return c, password, nil
}

// tlsFileEnv names, for each TLS file key, the libpq environment variable that sets it for
// pgx (pgimaged's own connections) and libpq (pg_basebackup, which inherits the environment
// through the plugin) alike.
var tlsFileEnv = map[string]string{"sslrootcert": "PGSSLROOTCERT", "sslcert": "PGSSLCERT", "sslkey": "PGSSLKEY", "sslcrl": "PGSSLCRL"}

// refused is the error for a connection string key that pgimaged cannot pass on.
func refused(key string) error {
	hint := ""
	if key == "sslpassword" {
		hint = ": give the passphrase of the client key as sslpassword in postgresql.authentication.replication"
	}
	return fmt.Errorf("while parsing a connection string: %w: pgimaged cannot pass on %q%s", ErrConnString, key, hint)
}

// keywordValues are the settings of a keyword/value connection string, as far as it can be read.
func keywordValues(s string) map[string]string {
	out, _, _ := libpq.Parse(s)
	return out
}

// exposedSetting recovers the value of a connection setting that pgx keeps only in its own form.
func exposedSetting(cfg *pgconn.Config, key string) (string, bool) {
	switch key {
	case "sslmode", "ssl":
		if _, unix := unixHost(cfg.Host); unix {
			return "", false
		}
		return sslMode(cfg), true
	case "connect_timeout":
		return strconv.Itoa(int(cfg.ConnectTimeout.Seconds())), true
	case "channel_binding":
		return cfg.ChannelBinding, true
	case "sslnegotiation":
		return cfg.SSLNegotiation, true
	case "min_protocol_version":
		return cfg.MinProtocolVersion, true
	case "max_protocol_version":
		return cfg.MaxProtocolVersion, true
	case "krbsrvname":
		return cfg.KerberosSrvName, true
	case "krbspn":
		return cfg.KerberosSpn, true
	}
	return "", false
}

func unixHost(host string) (string, bool) {
	network, _ := pgconn.NetworkAddress(host, 5432)
	return network, network == "unix"
}

// sslMode names the sslmode that gives cfg's TLS attempts (pgx turns the mode into a list of
// attempts: with TLS, without, or both in an order).
func sslMode(cfg *pgconn.Config) string {
	second := cfg.TLSConfig
	if len(cfg.Fallbacks) > 0 {
		second = cfg.Fallbacks[0].TLSConfig
	}
	switch first := cfg.TLSConfig; {
	case first == nil && second == nil:
		return "disable"
	case first == nil:
		return "allow"
	case second == nil:
		return "prefer"
	default:
		return verifyMode(first)
	}
}

func verifyMode(t *tls.Config) string {
	switch {
	case !t.InsecureSkipVerify:
		return "verify-full"
	case t.VerifyPeerCertificate != nil:
		return "verify-ca"
	}
	return "require"
}

// connKeys returns the keys a connection string sets itself, in pgx's spelling ("database" for
// dbname), sorted: what libpq takes from the string rather than from its defaults. It reads
// the string's own syntax, a URL (user and password, hosts, ports, database, query) or
// keyword/value pairs; pgx, given exactly these keys as ConnStringAllowedKeys, checks the rest.
func connKeys(s string) ([]string, error) {
	settings, password, err := libpq.Parse(s)
	if err != nil {
		return nil, err
	}
	keys := slices.Collect(maps.Keys(settings))
	if password != "" {
		keys = append(keys, "password")
	}
	for i, k := range keys {
		if k == "dbname" {
			keys[i] = "database"
		}
	}
	slices.Sort(keys)
	return keys, nil
}

// connErr wraps a pgx parse error with pgx's reason but not its text, which quotes the
// connection string (with passwords masked only where pgx recognises them) and, for a bad URL,
// the URL's parser's error that quotes it whole.
func connErr(err error) error {
	var pe *pgconn.ParseConfigError
	if !errors.As(err, &pe) {
		return fmt.Errorf("while parsing a connection string: %w", ErrConnString)
	}
	msg := pe.Error()
	if inner := pe.Unwrap(); inner != nil {
		msg = strings.TrimSuffix(msg, " ("+inner.Error()+")")
	}
	if i := strings.LastIndex(msg, "`: "); i >= 0 {
		msg = msg[i+3:]
	}
	return fmt.Errorf("while parsing a connection string: %w: %s", ErrConnString, msg)
}

// Config parses c for pgx's own connections, with the client key's passphrase.
// target_session_attrs=read-write is checked as libpq checks it on PostgreSQL 14 and later,
// from the settings the server reports, so that it holds for replication connections too
// (pgx's own check runs SQL, which a WAL sender refuses).
func (c Conn) Config() (*pgconn.Config, error) {
	cfg, err := pgconn.ParseConfigWithOptions(c.DSN(), c.ParseOptions())
	if err == nil {
		dropLibpqOnly(cfg.RuntimeParams)
		if c.Params["target_session_attrs"] == "read-write" {
			cfg.ValidateConnect = acceptsWrites
		}
	}
	return cfg, err
}

// acceptsWrites is target_session_attrs=read-write as libpq reads it from PostgreSQL 14 on:
// the server reports in_hot_standby and default_transaction_read_only, both off. An older
// server, which reports no in_hot_standby, is asked with SQL, as pgx does.
func acceptsWrites(ctx context.Context, conn *pgconn.PgConn) error {
	hot := conn.ParameterStatus("in_hot_standby")
	if hot == "" {
		return pgconn.ValidateConnectTargetSessionAttrsReadWrite(ctx, conn)
	}
	if hot == "on" || conn.ParameterStatus("default_transaction_read_only") == "on" {
		return errors.New("the server does not accept writes (target_session_attrs=read-write)")
	}
	return nil
}

// ParseOptions are pgx's parse options for c: they hand pgx the passphrase of the client key
// without putting it into a string pgx might quote in an error.
func (c Conn) ParseOptions() pgconn.ParseConfigOptions {
	pw := c.SSLPassword
	return pgconn.ParseConfigOptions{GetSSLPassword: func(context.Context) string { return pw }}
}

// dropLibpqOnly removes from pgx's run-time parameters the libpq keys pgx does not know (sslcrl),
// which the server would refuse as unknown settings.
func dropLibpqOnly(params map[string]string) {
	delete(params, "sslcrl")
}
