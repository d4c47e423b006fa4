package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/pgimaged/pgimaged/core/config"
)

// Durations are read as plugin options' are (sdk.TypeDuration): Go's form and PostgreSQL's
// units alike; a bare number names no unit and is refused.
func TestDurationsInEitherForm(t *testing.T) {
	src := header + `loop_wait = "5 s"
ttl = "1min"
postgresql { pg_ctl_timeout = "1m30s" }
bootstrap { timeout = "1d" }
method "m" {
  command    = "/bin/true"
  retry_wait = "250ms"
  timeout    = "2h"
}
`
	cfg, diags := config.Parse("d.hcl", []byte(src))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	got := []time.Duration{cfg.LoopWait, cfg.TTL, cfg.PostgreSQL.PGCtlTimeout, cfg.Bootstrap.Timeout,
		cfg.Methods["m"].RetryWait, cfg.Methods["m"].Timeout}
	want := []time.Duration{5 * time.Second, time.Minute, 90 * time.Second, 24 * time.Hour, 250 * time.Millisecond, 2 * time.Hour}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("duration %d = %s, want %s", i, got[i], want[i])
		}
	}
	_, diags = config.Parse("d.hcl", []byte(header+"ttl = 30\n"))
	if !diags.HasErrors() || !strings.Contains(diags[0].Detail, `"30" is not a duration`) {
		t.Errorf("a bare number is taken as a duration: %v", diags)
	}
}
