package pg

import (
	"os"
	"path/filepath"
	"testing"
)

func TestRecoveryMode(t *testing.T) {
	cases := []struct {
		name  string
		files map[string]string
		want  bool
	}{
		{"no recovery", nil, false},
		{"recovery.signal", map[string]string{"recovery.signal": ""}, true},
		{"standby.signal wins", map[string]string{"recovery.signal": "", "standby.signal": ""}, false},
		{"recovery.conf without standby", map[string]string{"recovery.conf": "restore_command = 'cp /a/%f %p'\n"}, true},
		{"recovery.conf standby", map[string]string{"recovery.conf": "standby_mode = 'on'\nprimary_conninfo = 'host=x'\n"}, false},
		{"recovery.conf standby commented out", map[string]string{"recovery.conf": "#standby_mode = 'on'\n"}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, body := range tc.files {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if _, got := RecoveryMode(dir); got != tc.want {
				t.Errorf("ending recovery = %v, want %v", got, tc.want)
			}
		})
	}
}
