package sdk_test

import (
	"testing"

	"github.com/pgimaged/pgimaged/sdk"
)

func TestParseBool(t *testing.T) {
	for _, s := range []string{"true", "TRUE", "t", "tr", "yes", "y", "Ye", "on", "ON", "1", " on "} {
		if b, err := sdk.ParseBool(s); err != nil || !b {
			t.Errorf("ParseBool(%q) = %v, %v; want true", s, b, err)
		}
	}
	for _, s := range []string{"false", "f", "FA", "no", "n", "off", "of", "OFF", "0", "\tfalse\n"} {
		if b, err := sdk.ParseBool(s); err != nil || b {
			t.Errorf("ParseBool(%q) = %v, %v; want false", s, b, err)
		}
	}
	for _, s := range []string{"", "o", "maybe", "2", "01", "truee", "nope", "onn", "yess", "-1"} {
		if _, err := sdk.ParseBool(s); err == nil {
			t.Errorf("ParseBool(%q) accepted", s)
		}
	}
}
