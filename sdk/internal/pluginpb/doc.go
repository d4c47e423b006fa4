// Package pluginpb holds the Go code generated from sdk/proto/pgimaged/plugin/v2/plugin.proto
// (`make proto` regenerates it). Only the sdk package uses it.
package pluginpb
