package config_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/pgimaged/pgimaged/core/config"
)

// log_file is taken from the configuration file's directory, like every path; log_format is
// read in any case.
func TestLogFormatAndFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "node1.hcl")
	src := `scope = "batman"
name = "node1"
data_dir = "/data"
log_format = "JSON"
log_file = "logs/pgimaged.log"
`
	if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, diags := config.Load(file)
	if diags.HasErrors() {
		t.Fatalf("diagnostics:%s", describe(diags))
	}
	if cfg.LogFormat != "json" {
		t.Errorf("log_format %q, want json", cfg.LogFormat)
	}
	if want := filepath.Join(dir, "logs", "pgimaged.log"); cfg.LogFile != want {
		t.Errorf("log_file %q, want %q", cfg.LogFile, want)
	}
}
