package pg

import (
	"crypto/md5"
	"encoding/hex"
	"strings"
	"testing"
)

// The verifiers must be computed here, so the password itself never travels to the server.
func TestPasswordVerifier(t *testing.T) {
	md5sum := md5.Sum([]byte("s3cretreplicator"))
	cases := []struct {
		name, encryption, password string
		wantPrefix                 string
		plain                      bool
	}{
		{"scram", "scram-sha-256", "s3cret", "SCRAM-SHA-256$4096:", false},
		{"scram, ASCII control character", "scram-sha-256", "s3\x01cret", "SCRAM-SHA-256$4096:", false},
		{"scram, non-ASCII goes to the server", "scram-sha-256", "pässwörd", "pässwörd", true},
		{"md5", "md5", "s3cret", "md5" + hex.EncodeToString(md5sum[:]), false},
		{"md5, non-ASCII", "MD5", "pässwörd", "md5", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := passwordVerifier(Role{Username: "replicator", Password: tc.password}, tc.encryption)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(got, tc.wantPrefix) {
				t.Errorf("verifier %q, want prefix %q", got, tc.wantPrefix)
			}
			if !tc.plain && strings.Contains(got, tc.password) {
				t.Errorf("verifier %q holds the password", got)
			}
		})
	}
	if _, err := passwordVerifier(Role{Username: "u", Password: "a\x00b"}, "scram-sha-256"); err == nil {
		t.Error("a password with a NUL byte was accepted")
	}
}

func TestQuoteLiteral(t *testing.T) {
	cases := []struct{ in, want string }{
		{"abc", "'abc'"},
		{"it's", "'it''s'"},
		{`a\b`, `E'a\\b'`},
		{`it's a\b`, `E'it''s a\\b'`},
	}
	for _, tc := range cases {
		if got := quoteLiteral(tc.in); got != tc.want {
			t.Errorf("quoteLiteral(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}
