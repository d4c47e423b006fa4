package plugintest_test

import (
	"reflect"
	"testing"

	"github.com/pgimaged/pgimaged/sdk"
	"github.com/pgimaged/pgimaged/sdk/plugintest"
)

func TestOptions(t *testing.T) {
	got := plugintest.Options("stanza=main", "delta", "target=2026-01-02 03:04:05+00", "recovery-option=a=b", "label=")
	want := sdk.Options{
		{Name: "stanza", Value: "main"},
		{Name: "delta", Flag: true},
		{Name: "target", Value: "2026-01-02 03:04:05+00"},
		{Name: "recovery-option", Value: "a=b"},
		{Name: "label", Value: ""},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Options gave %+v, want %+v", got, want)
	}
	if got := plugintest.Options(); got != nil {
		t.Errorf("Options() gave %+v, want none", got)
	}
}
