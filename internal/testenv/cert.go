package testenv

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgimaged/pgimaged/core/plugin/host"
)

// WriteCertificate writes a new self-signed certificate for localhost, which is its own CA, to
// dir/name.crt and its private key to dir/name.key (0600), and returns the two paths.
func WriteCertificate(t testing.TB, dir, name string) (cert, key string) {
	t.Helper()
	_, pem, err := host.NewCertificate()
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(string(pem), "-----BEGIN EC PRIVATE KEY")
	if i < 0 {
		t.Fatalf("no key in %s", pem)
	}
	cert, key = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if err := os.WriteFile(cert, pem[:i], 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, pem[i:], 0o600); err != nil {
		t.Fatal(err)
	}
	return cert, key
}
