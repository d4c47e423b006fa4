package config

import (
	"fmt"

	"github.com/hashicorp/hcl/v2"
)

// API is the optional `api { ... }` block: the HTTP API of `pgimaged run`. Listen is "" without
// the block. The TLS files are absolute; CertFile and KeyFile come together; with CAFile clients
// present a certificate it signs. Username and Password guard the requests that change something.
type API struct {
	Listen         string
	ConnectAddress string
	CAFile         string
	CertFile       string
	KeyFile        string
	Username       string
	Password       string
	DefRange       hcl.Range
}

// Enabled reports whether the configuration asks for the HTTP API.
func (a API) Enabled() bool { return a.Listen != "" }

// TLS reports whether the API serves HTTPS.
func (a API) TLS() bool { return a.CertFile != "" }

// Address is how other hosts reach the API: connect_address, else listen.
func (a API) Address() string {
	if a.ConnectAddress != "" {
		return a.ConnectAddress
	}
	return a.Listen
}

// String describes the API settings with the password masked.
func (a API) String() string {
	type plain API
	a.Password = maskSecret(a.Password)
	return fmt.Sprintf("%+v", plain(a))
}

// GoString is like String for the %#v verb.
func (a API) GoString() string { return "config.API" + a.String() }

type apiSchema struct {
	DefRange       hcl.Range `hcl:",def_range"`
	Listen         string    `hcl:"listen"`
	ConnectAddress *string   `hcl:"connect_address,optional"`
	CAFile         *string   `hcl:"ca_file,optional"`
	CertFile       *string   `hcl:"cert_file,optional"`
	KeyFile        *string   `hcl:"key_file,optional"`
	Username       string    `hcl:"username,optional"`
	Password       string    `hcl:"password,optional"`
}

func (d *decoder) api(s *apiSchema) {
	a := &d.cfg.API
	a.DefRange = s.DefRange
	a.Listen = d.address(&s.Listen, "api.listen")
	a.ConnectAddress = d.address(s.ConnectAddress, "api.connect_address")
	a.CAFile, a.CertFile, a.KeyFile = d.tlsFiles("api.", s.CAFile, s.CertFile, s.KeyFile,
		"Incomplete server certificate", "the API's certificate")
	if _, cert := d.attrs["api.cert_file"]; s.CAFile != nil && !cert {
		d.fail("api.ca_file", "Client certificates without TLS", "ca_file verifies client certificates, which needs TLS: set cert_file and key_file too.")
	}
	a.Username, a.Password = s.Username, s.Password
	if (a.Username == "") != (a.Password == "") {
		rng, ok := d.attrs["api.username"]
		if a.Username == "" {
			rng, ok = d.attrs["api.password"]
		}
		if !ok {
			rng = s.DefRange
		}
		d.errorAt(rng, "Incomplete credentials", "api: username and password go together: the requests that change something need both.")
	}
}
