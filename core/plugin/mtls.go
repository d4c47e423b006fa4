package plugin

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"sync"

	"github.com/pgimaged/pgimaged/core/plugin/host"
)

// Mutual TLS with plugins (see host.PluginTLSEnv): pgimaged's certificate is made once per
// process; every launch hands the plugin a fresh certificate of its own, the only one trusted
// for that connection. A plugin that answers with go-plugin's automatic mTLS instead sends its
// own certificate in the handshake, which go-plugin then trusts in place of ours.

var (
	hostCertOnce sync.Once
	hostCert     tls.Certificate
	hostCertPEM  []byte
	hostCertErr  error
)

// clientTLS returns the host side of one plugin connection and the environment that hands the
// plugin its certificate.
func clientTLS() (*tls.Config, []string, error) {
	hostCertOnce.Do(func() {
		var bundle []byte
		hostCert, bundle, hostCertErr = host.NewCertificate()
		if hostCertErr == nil {
			hostCertPEM = certOnly(bundle)
		}
	})
	if hostCertErr != nil {
		return nil, nil, fmt.Errorf("while making the certificate for plugin connections: %w", hostCertErr)
	}
	pluginCert, bundle, err := host.NewCertificate()
	if err != nil {
		return nil, nil, fmt.Errorf("while making a certificate for a plugin: %w", err)
	}
	leaf, err := x509.ParseCertificate(pluginCert.Certificate[0])
	if err != nil {
		return nil, nil, err
	}
	roots := x509.NewCertPool()
	roots.AddCert(leaf)
	cfg := &tls.Config{
		Certificates: []tls.Certificate{hostCert},
		RootCAs:      roots,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS12,
		ServerName:   "localhost",
	}
	env := []string{"PLUGIN_CLIENT_CERT=" + string(hostCertPEM), host.PluginTLSEnv + "=" + string(bundle)}
	return cfg, env, nil
}

// certOnly keeps the CERTIFICATE block of a PEM bundle.
func certOnly(bundle []byte) []byte {
	const end = "-----END CERTIFICATE-----\n"
	for i := 0; i+len(end) <= len(bundle); i++ {
		if string(bundle[i:i+len(end)]) == end {
			return bundle[:i+len(end)]
		}
	}
	return bundle
}
