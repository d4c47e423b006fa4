package host

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"time"

	"github.com/pgimaged/pgimaged/sdk/pluginpb"
)

// Mutual TLS between pgimaged and a plugin.
//
// pgimaged puts its own certificate in PLUGIN_CLIENT_CERT, as go-plugin's automatic mTLS does, and
// in addition hands the plugin a fresh P-256 key and certificate in [PluginTLSEnv]. A plugin
// built with this package serves with that certificate and trusts only pgimaged's; pgimaged
// trusts only the certificate it handed out. This saves the plugin from generating a P-521 key
// at every start, which was most of a launch's cost. A plugin that does not read [PluginTLSEnv]
// (one written in another language) can still answer with go-plugin's automatic mTLS: its own
// certificate in the handshake line replaces the one pgimaged handed out.

// PluginTLSEnv carries the plugin's certificate and key (PEM) from pgimaged to the plugin.
const PluginTLSEnv = pluginpb.TLSEnv

// NewCertificate makes a self-signed P-256 certificate for "localhost", valid for client and
// server authentication, and returns it with its PEM encoding (certificate, then key).
func NewCertificate() (tls.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	sn, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: "localhost", Organization: []string{"pgimaged"}},
		DNSNames:              []string{"localhost"},
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageKeyAgreement | x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		SerialNumber:          sn,
		NotBefore:             time.Now().Add(-time.Minute),
		NotAfter:              time.Now().Add(10 * 365 * 24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	return cert, append(certPEM, keyPEM...), nil
}
