package plugin_test

import (
	"context"
	"testing"

	"github.com/pgimaged/pgimaged/core/plugin"
)

// BenchmarkLaunch measures what every method call pays before it starts working: exec of the
// plugin, the versioned handshake with mutual TLS, and Describe (the kill is not timed).
func BenchmarkLaunch(b *testing.B) {
	cat := &plugin.Catalog{Dir: testPluginDir(b)}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		inst, err := cat.Launch(context.Background(), "testplugin")
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		inst.Kill()
		b.StartTimer()
	}
}
