package sdk_test

import (
	"strings"
	"testing"
	"time"

	"github.com/pgimaged/pgimaged/sdk"
)

var schema = sdk.Schema{Options: []sdk.OptionSpec{
	{Name: "checkpoint", Type: sdk.TypeEnum, EnumValues: []string{"fast", "spread"}, Default: "spread"},
	{Name: "max-rate", Type: sdk.TypeSize, SizeUnit: 1024, Min: sdk.Bound(32 << 10), Max: sdk.Bound(1 << 30)},
	{Name: "verbose", Type: sdk.TypeBool},
	{Name: "no_master", Type: sdk.TypeBool, Aliases: []string{"no_leader"}},
	{Name: "retries", Type: sdk.TypeInt, Default: "2"},
	{Name: "wait", Type: sdk.TypeDuration},
	{Name: "hosts", Type: sdk.TypeList},
	{Name: "labels", Type: sdk.TypeMap},
	{Name: "secret", Type: sdk.TypeString, Sensitive: true},
	{Name: "count", Type: sdk.TypeInt, Sensitive: true},
	{Name: "pgdata", Refused: "pgimaged passes it"},
}}

func TestDecodeTypedValues(t *testing.T) {
	v, diags := schema.Decode(sdk.Options{
		{Name: "max-rate", Value: "100M"},
		{Name: "verbose", Flag: true},
		{Name: "no_leader", Value: "on"},
		{Name: "wait", Value: "5min"},
		{Name: "hosts", List: []string{"a", "b", "c"}},
		{Name: "labels", Map: map[string]string{"k": "v"}},
	})
	if len(diags) != 1 || diags[0].Severity != sdk.SeverityWarning || diags[0].Option != "no_leader" {
		t.Errorf("want one warning about the alias no_leader, got %+v", diags)
	}
	if got := v.Size("max-rate"); got != 100<<20 {
		t.Errorf("max-rate = %d", got)
	}
	if !v.Bool("verbose") || !v.Bool("no_master") || !v.Has("no_master") {
		t.Errorf("verbose %v, no_master %v", v.Bool("verbose"), v.Bool("no_master"))
	}
	if v.String("checkpoint") != "spread" || v.Has("checkpoint") || v.Int("retries") != 2 {
		t.Errorf("defaults: checkpoint %q, retries %d", v.String("checkpoint"), v.Int("retries"))
	}
	if v.Duration("wait") != 5*time.Minute || strings.Join(v.List("hosts"), "|") != "a|b|c" || v.Map("labels")["k"] != "v" {
		t.Errorf("wait %v, hosts %q, labels %v", v.Duration("wait"), v.List("hosts"), v.Map("labels"))
	}
}

func TestDecodeRefusesWhatTheSchemaRefuses(t *testing.T) {
	_, diags := schema.Decode(sdk.Options{
		{Name: "checkpoint", Value: "fastest"},
		{Name: "max_rate", Value: "100M"},
		{Name: "max-rate", Value: "16k"},
		{Name: "verbose", Value: "maybe"},
		{Name: "retries", Flag: true},
		{Name: "pgdata", Value: "/x"},
		{Name: "secret", List: []string{"x"}},
		{Name: "count", Value: "hunter2"},
		{Name: "hosts", Value: "a,b"},
		{Name: "hosts", Map: map[string]string{"a": "b"}},
		{Name: "labels", Value: "k=v"},
		{Name: "labels", List: []string{"k=v"}},
		{Name: "hosts", Value: ""},
	})
	want := []string{"checkpoint", "max_rate", "max-rate", "verbose", "retries", "pgdata", "secret", "count", "hosts", "hosts", "labels", "labels", "hosts"}
	if len(diags) != len(want) {
		t.Fatalf("got %d diagnostics, want %d: %+v", len(diags), len(want), diags)
	}
	for i, d := range diags {
		if d.Severity != sdk.SeverityError || d.Option != want[i] {
			t.Errorf("diagnostic %d: %+v, want an error about %s", i, d, want[i])
		}
		if strings.Contains(d.Detail, "hunter2") {
			t.Errorf("a sensitive value is shown: %s", d.Detail)
		}
	}
}

func TestCanonicalRenamesAliases(t *testing.T) {
	got := schema.Canonical(sdk.Options{{Name: "no_leader", Value: "on"}, {Name: "other", Value: "x"}})
	if got[0].Name != "no_master" || got[1].Name != "other" {
		t.Errorf("got %+v", got)
	}
}

func TestValuesPanicOnNamesOutsideTheSchema(t *testing.T) {
	v, _ := schema.Decode(nil)
	for _, read := range []func(){
		func() { v.String("no-such-option") },
		func() { v.Bool("max-rate") },       // a size read as a bool
		func() { sdk.Values{}.String("x") }, // Values not from Decode
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			read()
		}()
	}
}

func TestValuesInto(t *testing.T) {
	v, _ := schema.Decode(sdk.Options{{Name: "max-rate", Value: "2M"}, {Name: "verbose", Flag: true}, {Name: "wait", Value: "30s"}})
	var o struct {
		Checkpoint string        `option:"checkpoint"`
		MaxRate    int64         `option:"max-rate"`
		Verbose    bool          `option:"verbose"`
		Retries    int           `option:"retries"`
		Wait       time.Duration `option:"wait"`
		Hosts      []string      `option:"hosts"`
		Untagged   string
	}
	if err := v.Into(&o); err != nil {
		t.Fatal(err)
	}
	if o.Checkpoint != "spread" || o.MaxRate != 2<<20 || !o.Verbose || o.Retries != 2 || o.Wait != 30*time.Second || o.Hosts != nil {
		t.Errorf("got %+v", o)
	}
	var wrong struct {
		Verbose string `option:"verbose"`
	}
	if err := v.Into(&wrong); err == nil {
		t.Error("a bool option went into a string field")
	}
	var unknown struct {
		X string `option:"no-such-option"`
	}
	if err := v.Into(&unknown); err == nil {
		t.Error("an option outside the schema was accepted")
	}
}

func TestListAndMapDefaultsAndEmptyValues(t *testing.T) {
	s := sdk.Schema{Options: []sdk.OptionSpec{
		{Name: "hosts", Type: sdk.TypeList, Default: "a, b"},
		{Name: "labels", Type: sdk.TypeMap},
	}}
	if errs := s.Check(); len(errs) != 0 {
		t.Fatalf("schema: %v", errs)
	}
	v, diags := s.Decode(nil)
	if len(diags) != 0 || strings.Join(v.List("hosts"), "|") != "a|b" || v.Map("labels") != nil {
		t.Errorf("defaults: hosts %q, labels %v, %+v", v.List("hosts"), v.Map("labels"), diags)
	}
	v, diags = s.Decode(sdk.Options{{Name: "hosts", List: []string{}}, {Name: "labels", Map: map[string]string{}}})
	if len(diags) != 0 || len(v.List("hosts")) != 0 || len(v.Map("labels")) != 0 {
		t.Errorf("empty: hosts %q, labels %v, %+v", v.List("hosts"), v.Map("labels"), diags)
	}
	bad := sdk.Schema{Options: []sdk.OptionSpec{{Name: "labels", Type: sdk.TypeMap, Default: "k=v"}}}
	if len(bad.Check()) != 1 {
		t.Error("a map option with a default passes the schema check")
	}
}

func TestListAndMapArgs(t *testing.T) {
	opts := sdk.Options{
		{Name: "verbose", Flag: true},
		{Name: "tablespace-mapping", List: []string{"/a=/b", "/c=/d"}},
		{Name: "env", Map: map[string]string{"B": "2", "A": "1"}},
		{Name: "empty", List: []string{}},
		{Name: "label", Value: "x y"},
	}
	want := []string{"--verbose", "--tablespace-mapping=/a=/b", "--tablespace-mapping=/c=/d", "--env=A=1", "--env=B=2", "--label=x y"}
	if got := opts.Args(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("Args\n got %q\nwant %q", got, want)
	}
	if got := opts[1].String(); got != "--tablespace-mapping=/a=/b --tablespace-mapping=/c=/d" {
		t.Errorf("String = %q", got)
	}
}

// TestProblemsAreWhatDecodeReports: Decode and pgimaged's configuration check share one check:
// a misspelt option gets a suggestion, a required option given with a wrong value is invalid
// rather than missing, and a hidden value is never shown.
func TestProblemsAreWhatDecodeReports(t *testing.T) {
	s := sdk.Schema{Options: []sdk.OptionSpec{
		{Name: "max-rate", Type: sdk.TypeSize},
		{Name: "retries", Type: sdk.TypeInt, Required: true},
	}}
	opts := sdk.Options{{Name: "max_rate", Value: "1M"}, {Name: "retries", Value: "hunter2"}}
	problems := s.Problems(opts, []bool{false, true})
	if len(problems) != 2 || problems[0].Kind != sdk.ProblemUnknown || problems[0].Suggestion != "max-rate" ||
		problems[1].Kind != sdk.ProblemInvalid || problems[1].Index != 1 || strings.Contains(problems[1].Err.Error(), "hunter2") {
		t.Fatalf("Problems = %+v", problems)
	}
	_, diags := s.Decode(opts)
	if len(diags) != 2 || !strings.Contains(diags[0].Detail, `Did you mean "max-rate"?`) || diags[1].Summary != "Invalid option value" {
		t.Errorf("Decode = %+v", diags)
	}
	if p := s.Problems(nil, nil); len(p) != 1 || p[0].Kind != sdk.ProblemMissing || p[0].Index != -1 || p[0].Kind.String() != "Missing required option" {
		t.Errorf("Problems(nil) = %+v", p)
	}
}
