package main_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/pgimaged/pgimaged/core/config"
	"github.com/pgimaged/pgimaged/core/engine"
	"github.com/pgimaged/pgimaged/core/plugin"
)

// TestExamplesValidate checks every configuration under examples/: it decodes without a
// diagnostic and each plugin accepts its options. Paths on the example hosts (/etc/wal-e.d/env)
// do not exist here, so diagnostics about them are the only ones tolerated.
func TestExamplesValidate(t *testing.T) {
	t.Setenv("PGIMAGED_SUPERUSER_PASSWORD", "example-superuser-pw")
	t.Setenv("PGIMAGED_REPLICATION_PASSWORD", "example-replication-pw")
	files, err := filepath.Glob("../../examples/*/*.hcl")
	if err != nil || len(files) < 5 {
		t.Fatalf("example configurations: %v %v", files, err)
	}
	hostOnly := []string{"/etc/wal-e.d/env"}
	for _, f := range files {
		t.Run(strings.TrimPrefix(f, "../../examples/"), func(t *testing.T) {
			cfg, diags := config.Load(f)
			if diags.HasErrors() {
				var b strings.Builder
				_ = config.WriteDiagnostics(&b, cfg.Files(), diags, false)
				t.Fatalf("%s does not decode:\n%s", f, b.String())
			}
			cfg.PluginDir = pluginDir(t)
			node := &engine.Node{Config: cfg, Catalog: &plugin.Catalog{Dir: cfg.PluginDir}, Logger: hclog.NewNullLogger()}
			for _, d := range node.Validate(context.Background()) {
				tolerated := false
				for _, h := range hostOnly {
					if strings.Contains(d.Detail, h) {
						tolerated = true
					}
				}
				if !tolerated {
					t.Errorf("%s: %s: %s", f, d.Summary, d.Detail)
				}
			}
		})
	}
}
