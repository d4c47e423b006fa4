package sdk

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"github.com/pgimaged/pgimaged/sdk/pluginpb"
)

// Mutual TLS between pgimaged and a plugin: pgimaged puts its own certificate in
// PLUGIN_CLIENT_CERT, as go-plugin's automatic mTLS does, and in addition hands the plugin a fresh
// P-256 key and certificate in PGIMAGED_PLUGIN_TLS. A plugin built with this package serves with
// that certificate and trusts only pgimaged's.

// serverTLS is the plugin side: serve with the certificate pgimaged handed out and accept only
// pgimaged's. It clears both variables so that children the plugin runs never see the key.
// nil, nil: pgimaged did not hand out a certificate (go-plugin's own mTLS or a test).
func serverTLS() (*tls.Config, error) {
	bundle := os.Getenv(pluginpb.TLSEnv)
	hostPEM := os.Getenv("PLUGIN_CLIENT_CERT")
	if bundle == "" {
		return nil, nil
	}
	_ = os.Unsetenv(pluginpb.TLSEnv)
	if hostPEM == "" {
		return nil, errors.New(pluginpb.TLSEnv + " is set but PLUGIN_CLIENT_CERT is not")
	}
	cert, err := tls.X509KeyPair([]byte(bundle), []byte(bundle))
	if err != nil {
		return nil, fmt.Errorf("while reading the certificate pgimaged handed out: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(hostPEM)) {
		return nil, errors.New("PLUGIN_CLIENT_CERT holds no certificate")
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
		MinVersion:   tls.VersionTLS12,
	}, nil
}
