package config

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/pgimaged/pgimaged/core/pg"
	"github.com/pgimaged/pgimaged/sdk"
)

// Credentials are a role name, its password and the libpq TLS settings that connections made
// with them use (Patroni's sslmode, sslrootcert, sslcert, sslkey, sslcrl, sslpassword);
// formatting them masks the password and the key's passphrase.
type Credentials struct {
	Username string
	Password string
	TLS      pg.TLS
}

// Role is the role name and password, as plugins and role management take them.
func (c Credentials) Role() sdk.Credentials {
	return sdk.Credentials{Username: c.Username, Password: c.Password}
}

// Secrets are the password and the key's passphrase, those that are set.
func (c Credentials) Secrets() []string {
	var out []string
	for _, s := range []string{c.Password, c.TLS.Password} {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// String describes the credentials with the secrets masked.
func (c Credentials) String() string {
	s := c.Role().String()
	if !c.TLS.IsZero() {
		s += " " + c.TLS.String()
	}
	return s
}

// GoString is like String for the %#v verb.
func (c Credentials) GoString() string {
	return fmt.Sprintf("config.Credentials{Username:%q, Password:%q, TLS:%#v}", c.Username, maskSecret(c.Password), c.TLS)
}

// credentialsSchema is a block of postgresql.authentication.
type credentialsSchema struct {
	Username    string  `hcl:"username"`
	Password    string  `hcl:"password,optional"`
	SSLMode     *string `hcl:"sslmode,optional"`
	SSLRootCert *string `hcl:"sslrootcert,optional"`
	SSLCert     *string `hcl:"sslcert,optional"`
	SSLKey      *string `hcl:"sslkey,optional"`
	SSLCRL      *string `hcl:"sslcrl,optional"`
	SSLPassword *string `hcl:"sslpassword,optional"`
}

// credentials decodes the block at prefix ("postgresql.authentication.replication"): the TLS
// files must exist and be readable by the PostgreSQL OS user, a key as libpq demands.
func (d *decoder) credentials(s *credentialsSchema, prefix string) Credentials {
	if s == nil {
		return Credentials{}
	}
	c := Credentials{Username: d.nonEmpty(&s.Username, prefix+".username"), Password: s.Password}
	t := &c.TLS
	if mode, ok := d.str(s.SSLMode, prefix+".sslmode"); ok && slices.Contains(pg.SSLModes, mode) {
		t.Mode = mode
	} else if ok {
		d.fail(prefix+".sslmode", "Invalid sslmode", "sslmode %s is not one of libpq's modes: %s.", d.quote(d.at(prefix+".sslmode"), mode), strings.Join(pg.SSLModes, ", "))
	}
	if v, ok := d.str(s.SSLRootCert, prefix+".sslrootcert"); ok && v == "system" {
		t.RootCert = v // libpq's word for the system's CA store
	} else {
		t.RootCert = d.tlsFile(s.SSLRootCert, prefix+".sslrootcert", false)
	}
	t.Cert = d.tlsFile(s.SSLCert, prefix+".sslcert", false)
	t.Key = d.tlsFile(s.SSLKey, prefix+".sslkey", true)
	t.CRL = d.tlsFile(s.SSLCRL, prefix+".sslcrl", false)
	if s.SSLPassword != nil && d.ok(prefix+".sslpassword") {
		t.Password = *s.SSLPassword
	}
	for _, pair := range [][2]string{{"sslcert", "sslkey"}, {"sslkey", "sslcert"}} {
		if d.written(prefix+"."+pair[0]) && !d.written(prefix+"."+pair[1]) {
			d.errorAt(d.attrs[prefix+"."+pair[0]], "Incomplete client certificate",
				"%s is set without %s: a client certificate and its private key go together.", pair[0], pair[1])
		}
	}
	if d.written(prefix+".sslpassword") && !d.written(prefix+".sslkey") {
		d.errorAt(d.attrs[prefix+".sslpassword"], "Passphrase without a key", "sslpassword decrypts sslkey: set sslkey (and sslcert) too.")
	}
	if t.Mode == "disable" && d.written(prefix+".sslrootcert", prefix+".sslcert", prefix+".sslkey", prefix+".sslcrl") {
		d.fail(prefix+".sslmode", "TLS files without TLS", "sslmode \"disable\" never uses the TLS files set beside it: remove them or choose another mode.")
	}
	return c
}

// tlsFile decodes a TLS file of an authentication block: an absolute path (see path) to a
// regular file the PostgreSQL OS user can read; a key file, in addition, as private as libpq
// wants it.
func (d *decoder) tlsFile(s *string, key string, privateKey bool) string {
	p := d.readable(s, key)
	if p == "" {
		return ""
	}
	if uid, gids, name := d.postgresUser(); uid >= 0 {
		if err := pg.ReadableBy(p, uid, gids); err != nil {
			d.fail(key, "Unreadable file", "%s: the PostgreSQL OS user %s cannot read %s: %s.", base(key), name, d.quote(d.at(key), p), err)
			return ""
		}
	}
	if privateKey {
		if err := pg.CheckKeyFile(p); err != nil {
			d.fail(key, "Private key readable by others", "%s: %s.", base(key), err)
			return ""
		}
	}
	return p
}

// postgresUser is the OS user PostgreSQL and pgimaged run as ([pg.Account]) with its groups.
// uid -1: the account cannot be told, and reads are not checked.
func (d *decoder) postgresUser() (uid int, gids []int, name string) {
	u, err := pg.Account(d.cfg.DataDir)
	if err != nil {
		return -1, nil, ""
	}
	uid, _ = strconv.Atoi(u.Uid)
	if ids, err := u.GroupIds(); err == nil {
		for _, g := range ids {
			if n, err := strconv.Atoi(g); err == nil {
				gids = append(gids, n)
			}
		}
	} else if uid == os.Geteuid() {
		gids, _ = os.Getgroups()
		gids = append(gids, os.Getegid())
	}
	return uid, gids, u.Username
}
