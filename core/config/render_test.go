package config_test

import (
	"errors"
	"testing"

	"github.com/zclconf/go-cty/cty"

	"github.com/pgimaged/pgimaged/core/config"
)

func TestRenderValue(t *testing.T) {
	tests := []struct {
		name string
		in   cty.Value
		want string
		err  error
	}{
		{"string as is", cty.StringVal("100M"), "100M", nil},
		{"empty string", cty.StringVal(""), "", nil},
		{"integer", cty.NumberIntVal(1), "1", nil},
		{"negative integer", cty.NumberIntVal(-42), "-42", nil},
		{"zero", cty.NumberIntVal(0), "0", nil},
		{"fraction", cty.NumberFloatVal(1.5), "1.5", nil},
		{"decimal fraction", cty.MustParseNumberVal("0.1"), "0.1", nil},
		{"largest int64", cty.MustParseNumberVal("9223372036854775807"), "9223372036854775807", nil},
		{"smallest int64", cty.MustParseNumberVal("-9223372036854775808"), "-9223372036854775808", nil},
		{"large integer written with an exponent", cty.MustParseNumberVal("1e18"), "1000000000000000000", nil},
		{"beyond int64, still plain", cty.MustParseNumberVal("9223372036854775808"), "9223372036854775808", nil},
		{"small fraction", cty.MustParseNumberVal("0.000125"), "0.000125", nil},
		{"tiny", cty.MustParseNumberVal("1e-7"), "1e-07", nil},
		{"huge", cty.MustParseNumberVal("1e300"), "1e+300", nil},
		{"true", cty.True, "true", nil},
		{"false", cty.False, "false", nil},
		{"null", cty.NullVal(cty.String), "", config.ErrNotScalar},
		{"unknown", cty.UnknownVal(cty.String), "", config.ErrNotScalar},
		{"list", cty.ListVal([]cty.Value{cty.StringVal("a")}), "", config.ErrNotScalar},
		{"object", cty.ObjectVal(map[string]cty.Value{"a": cty.True}), "", config.ErrNotScalar},
		{"infinity", cty.PositiveInfinity, "", config.ErrNumberRange},
		{"out of range", cty.MustParseNumberVal("1e400"), "", config.ErrNumberRange},
		{"marked", cty.StringVal("x").Mark("sensitive"), "x", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := config.RenderValue(tt.in)
			if !errors.Is(err, tt.err) {
				t.Fatalf("error %v, want %v", err, tt.err)
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
