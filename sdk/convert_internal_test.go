package sdk

import (
	"strings"
	"testing"

	"github.com/pgimaged/pgimaged/sdk/pluginpb"
)

// The wire's enums count as the SDK's, so that the host and the plugin convert by a cast.
func TestWireEnumsCountAsTheSDKs(t *testing.T) {
	cases := []struct {
		prefix string
		wire   map[int32]string
		name   func(int32) string
	}{
		{"LEVEL_", pluginpb.Level_name, func(v int32) string { return Level(v).String() }},
		{"PATH_", pluginpb.Path_name, func(v int32) string { return Path(v).String() }},
		{"UNIT_", pluginpb.Unit_name, func(v int32) string { return Unit(v).String() }},
		{"OPTION_TYPE_", pluginpb.OptionType_name, func(v int32) string { return Type(v).String() }},
	}
	for _, tc := range cases {
		for v, wire := range tc.wire {
			if got, want := tc.name(v), strings.ToLower(strings.TrimPrefix(wire, tc.prefix)); got != want {
				t.Errorf("%s is %d on the wire, where the SDK has %s", wire, v, got)
			}
		}
	}
}
