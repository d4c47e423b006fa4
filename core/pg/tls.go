package pg

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/pgimaged/pgimaged/sdk/libpq"
)

// TLS are libpq's TLS settings for a connection, as Patroni's authentication blocks take them.
// Password (sslpassword) decrypts Key; it is a secret, never part of a connection string that
// leaves pgimaged (see [Conn.SSLPassword]).
type TLS struct {
	Mode     string // sslmode: disable, allow, prefer, require, verify-ca, verify-full
	RootCert string // sslrootcert: the CA certificates that sign the server's, or "system"
	Cert     string // sslcert: the client certificate
	Key      string // sslkey: its private key
	CRL      string // sslcrl: revoked certificates
	Password string // sslpassword: the passphrase of Key
}

// SSLModes are the values libpq takes for sslmode.
var SSLModes = []string{"disable", "allow", "prefer", "require", "verify-ca", "verify-full"}

// String describes the settings with the passphrase masked.
func (t TLS) String() string {
	type plain TLS
	if t.Password != "" {
		t.Password = mask
	}
	return fmt.Sprintf("%+v", plain(t))
}

// GoString is like String for the %#v verb.
func (t TLS) GoString() string { return "pg.TLS" + t.String() }

const mask = "********"

// IsZero reports whether no setting is given.
func (t TLS) IsZero() bool { return t == TLS{} }

// params are the settings as libpq keywords, without the passphrase.
func (t TLS) params() map[string]string {
	p := map[string]string{}
	for k, v := range map[string]string{"sslmode": t.Mode, "sslrootcert": t.RootCert, "sslcert": t.Cert, "sslkey": t.Key, "sslcrl": t.CRL} {
		if v != "" {
			p[k] = v
		}
	}
	return p
}

// WithTLS is c with the TLS settings t: those of t that are given replace c's when override is
// set (the credentials' settings win over a member's conn_url, as in Patroni), else fill only
// what c leaves out (an operator's explicit connection string wins).
func (c Conn) WithTLS(t TLS, override bool) Conn {
	params := maps.Clone(c.Params)
	if params == nil {
		params = map[string]string{}
	}
	for k, v := range t.params() {
		if _, set := params[k]; override || !set {
			params[k] = v
		}
	}
	if len(params) > 0 {
		c.Params = params
	}
	if t.Password != "" && (override || c.SSLPassword == "") {
		c.SSLPassword = t.Password
	}
	return c
}

// Conninfo is the DSN with the passphrase of the client key (sslpassword) as well: for
// primary_conninfo, which PostgreSQL's WAL receiver reads from the data directory's
// configuration (a file only its owner can read), and nothing else.
func (c Conn) Conninfo() string {
	d := c.DSN()
	if c.SSLPassword != "" {
		d += " sslpassword=" + libpq.Quote(c.SSLPassword)
	}
	return d
}

// PassEntries are the pgpass lines that give password to c's logins: one per host of a
// multi-host connection ("a,b" with ports "5432,5433"), any host or port when c leaves it out.
func (c Conn) PassEntries(password string) []PassEntry {
	hosts := strings.Split(c.Host, ",")
	var out []PassEntry
	for i, h := range hosts {
		port := "*"
		switch {
		case len(c.Ports) > i:
			port = strconv.Itoa(c.Ports[i])
		case len(c.Ports) == 1:
			port = strconv.Itoa(c.Ports[0])
		case c.Port != 0:
			port = strconv.Itoa(c.Port)
		}
		if h = strings.TrimSpace(h); h == "" {
			h = "*"
		}
		out = append(out, PassEntry{Host: h, Port: port, Database: "*", User: c.User, Password: password})
	}
	return out
}

// ServiceFile is the text of a libpq connection service file with one service, name, that
// holds the passphrase of the client key: libpq programs (pg_basebackup, run by a method)
// read it when PGSERVICEFILE names the file and PGSERVICE the service, so the passphrase never
// goes on a command line. Empty when c has no passphrase.
func (c Conn) ServiceFile(name string) (string, error) {
	if c.SSLPassword == "" {
		return "", nil
	}
	if strings.ContainsAny(c.SSLPassword, "\r\n") {
		return "", errors.New("the sslpassword holds a line break, which a service file cannot carry")
	}
	return "[" + name + "]\nsslpassword=" + c.SSLPassword + "\n", nil
}

// CheckKeyFile applies libpq's rule for a client key file that uid (the PostgreSQL OS user)
// reads: a regular file, mode 0600 or less, or 0640 or less when root owns it.
func CheckKeyFile(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%q is not a regular file", path)
	}
	perm := fi.Mode().Perm()
	owner := -1
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		owner = int(st.Uid)
	}
	if owner == 0 && perm&0o037 != 0 || owner != 0 && perm&0o077 != 0 {
		return fmt.Errorf("%q has mode %04o: libpq refuses a private key that others can read; make it 0600 (or 0640 owned by root)", path, perm)
	}
	return nil
}

// ReadableBy reports why the OS user uid (in groups gids) cannot read the file at path: its
// mode, or that of a directory on the way, does not let it. nil: it can.
func ReadableBy(path string, uid int, gids []int) error {
	allowed := func(fi fs.FileInfo, bit fs.FileMode) bool {
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok || uid == 0 {
			return true
		}
		perm := fi.Mode().Perm()
		switch {
		case int(st.Uid) == uid:
			return perm&(bit<<6) != 0
		case slices.Contains(gids, int(st.Gid)):
			return perm&(bit<<3) != 0
		}
		return perm&bit != 0
	}
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !allowed(fi, 0o4) {
		return fmt.Errorf("mode %04o does not let uid %d read it", fi.Mode().Perm(), uid)
	}
	for d := parentDir(path); d != ""; d = parentDir(d) {
		if di, err := os.Stat(d); err == nil && !allowed(di, 0o1) {
			return fmt.Errorf("directory %q (mode %04o) does not let uid %d reach it", d, di.Mode().Perm(), uid)
		}
	}
	return nil
}

func parentDir(p string) string {
	i := strings.LastIndexByte(strings.TrimRight(p, "/"), '/')
	if i <= 0 {
		if i == 0 && p != "/" {
			return "/"
		}
		return ""
	}
	return p[:i]
}

// WriteServiceFile writes [Conn.ServiceFile] at path, mode 0600, replacing what was there.
func WriteServiceFile(path, service string, c Conn) error {
	text, err := c.ServiceFile(service)
	if err == nil {
		err = writeFileAtomic(path, []byte(text), 0o600)
	}
	if err != nil {
		return fmt.Errorf("while writing the service file %q: %w", path, err)
	}
	return nil
}
