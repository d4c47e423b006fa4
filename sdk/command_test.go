package sdk_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/pgimaged/pgimaged/sdk"
)

func TestSplitCommand(t *testing.T) {
	cases := []struct {
		name    string
		in      string
		want    []string
		wantErr string
	}{
		{"plain words", "/usr/local/bin/restore_cluster --fast", []string{"/usr/local/bin/restore_cluster", "--fast"}, ""},
		{"extra white space", "  a \t b\n c  ", []string{"a", "b", "c"}, ""},
		{"single quotes keep everything", `cmd 'a b' '$HOME \n'`, []string{"cmd", "a b", `$HOME \n`}, ""},
		{"double quotes with escapes", `cmd "a \"b\" \\ \$x \q"`, []string{"cmd", `a "b" \ $x \q`}, ""},
		{"backslash outside quotes", `cmd a\ b \'c`, []string{"cmd", "a b", "'c"}, ""},
		{"empty quoted word", `cmd "" ''`, []string{"cmd", "", ""}, ""},
		{"adjacent quoting", `cmd --x='1 2'"3"`, []string{"cmd", "--x=1 23"}, ""},
		{"no expansion", "cmd $(rm -rf /) `x` *", []string{"cmd", "$(rm", "-rf", "/)", "`x`", "*"}, ""},
		{"empty", "", nil, ""},
		{"unterminated single", "cmd 'abc", nil, "unterminated ' quote"},
		{"unterminated double", `cmd "abc`, nil, `unterminated " quote`},
		{"lone backslash", `cmd \`, nil, "lone backslash"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := sdk.SplitCommand(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// FuzzSplitCommand checks that splitting never panics and that words without special
// characters survive a round trip through single quotes.
func FuzzSplitCommand(f *testing.F) {
	for _, s := range []string{"a b", `a "b c" 'd'`, `x\ y`, `"\"`, "'", "", "\t\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		words, err := sdk.SplitCommand(s)
		if err != nil {
			return
		}
		var quoted []string
		for _, w := range words {
			quoted = append(quoted, "'"+strings.ReplaceAll(w, "'", `'\''`)+"'")
		}
		again, err := sdk.SplitCommand(strings.Join(quoted, " "))
		if err != nil {
			t.Fatalf("re-splitting quoted words %q: %v", quoted, err)
		}
		if len(again) != len(words) {
			t.Fatalf("round trip changed the words: %q -> %q", words, again)
		}
		for i := range words {
			if again[i] != words[i] {
				t.Fatalf("round trip changed word %d: %q -> %q", i, words[i], again[i])
			}
		}
	})
}

func TestOptionsRender(t *testing.T) {
	opts := sdk.Options{{Name: "verbose", Flag: true}, {Name: "max-rate", Value: "100M"}, {Name: "label", Value: "a b"}}
	want := []string{"--verbose", "--max-rate=100M", "--label=a b"}
	if got := opts.Args(); !reflect.DeepEqual(got, want) {
		t.Fatalf("Args() = %q, want %q", got, want)
	}
	if v, ok := opts.Get("max-rate"); !ok || v != "100M" {
		t.Errorf("Get(max-rate) = %q, %v", v, ok)
	}
	if got := opts.Without("verbose", "label").Args(); !reflect.DeepEqual(got, []string{"--max-rate=100M"}) {
		t.Errorf("Without = %q", got)
	}
	for _, bad := range []string{"", "-x", "a=b", "a b", "a\x00"} {
		if sdk.CheckName(bad) == nil {
			t.Errorf("CheckName(%q) accepted a bad name", bad)
		}
	}
}

func TestCredentialsMaskPassword(t *testing.T) {
	c := sdk.Credentials{Username: "replicator", Password: "s3cret-pw"}
	for _, s := range []string{c.String(), c.GoString()} {
		if strings.Contains(s, "s3cret-pw") {
			t.Errorf("password shown: %s", s)
		}
	}
}

func TestFailedKeepsWhatAnErrorSays(t *testing.T) {
	plain := errors.New("tool exited 1")
	cases := []struct {
		name string
		in   error
		is   []error
	}{
		{"plain error becomes a method failure", plain, []error{sdk.ErrMethodFailed, plain}},
		{"no source stays no source", fmt.Errorf("x: %w", sdk.ErrNoSource), []error{sdk.ErrNoSource}},
		{"cancellation stays cancellation", fmt.Errorf("x: %w", context.Canceled), []error{context.Canceled}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := sdk.Failed(tc.in)
			for _, want := range tc.is {
				if !errors.Is(got, want) {
					t.Errorf("Failed(%v) is not %v", tc.in, want)
				}
			}
			if got.Error() != tc.in.Error() {
				t.Errorf("message changed: %q", got.Error())
			}
		})
	}
	if errors.Is(sdk.Failed(fmt.Errorf("x: %w", sdk.ErrNoSource)), sdk.ErrMethodFailed) {
		t.Error("a missing source was turned into a method failure")
	}
	if sdk.Failed(nil) != nil {
		t.Error("Failed(nil) is not nil")
	}
}
