// Package pluginpb holds the Go code generated from sdk/proto/pgimaged/plugin/v2/plugin.proto
// (`make proto` regenerates it). Only packages sdk and sdk/host use it.
package pluginpb
