package cli

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pgimaged/pgimaged/core/dcs"
)

// Each way a reload ends has its exit code and HTTP status, and says why on stderr.
func TestReloadOutcomeCodes(t *testing.T) {
	at := time.Now()
	tests := []struct {
		name       string
		out        dcs.ReloadOutcome
		exit, http int
		stderr     string
	}{
		{"applied", dcs.ReloadOutcome{At: at, Changed: []string{"tags.a"}}, exitOK, http.StatusAccepted, ""},
		{"nothing changed", dcs.ReloadOutcome{At: at}, exitOK, http.StatusAccepted, ""},
		{"pg_hba rejected", dcs.ReloadOutcome{At: at, Changed: []string{"postgresql.pg_hba"}, Errors: []string{"PostgreSQL rejects pg_hba.conf:5: invalid"}},
			exitFailed, http.StatusInternalServerError, "pg_hba.conf:5"},
		{"invalid", dcs.ReloadOutcome{At: at, Invalid: true, Errors: []string{"node1.hcl:3:1: Error: bad"}}, exitConfig, http.StatusBadRequest, "node1.hcl:3:1"},
		{"refused", dcs.ReloadOutcome{At: at, Changed: []string{"data_dir"}, Refused: []string{"node1.hcl:3:12: data_dir cannot change"}},
			exitRefused, http.StatusConflict, "data_dir cannot change"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			e := &env{stdout: &out, stderr: &errb}
			if got := reportReload(e, false, "node1", tt.out); got != tt.exit {
				t.Errorf("exit %d, want %d", got, tt.exit)
			}
			if got := reloadStatus(tt.out); got != tt.http {
				t.Errorf("HTTP status %d, want %d", got, tt.http)
			}
			if tt.stderr == "" && errb.Len() > 0 || !strings.Contains(errb.String(), tt.stderr) {
				t.Errorf("stderr %q, want it to say %q", errb.String(), tt.stderr)
			}
		})
	}
}
