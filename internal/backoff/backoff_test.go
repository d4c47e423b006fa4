package backoff_test

import (
	"slices"
	"testing"
	"time"

	"github.com/pgimaged/pgimaged/internal/backoff"
)

func TestBackoffDoublesToItsMaximum(t *testing.T) {
	b := backoff.New(100*time.Millisecond, time.Second)
	var got []time.Duration
	for range 6 {
		got = append(got, b.Next())
	}
	want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, time.Second, time.Second}
	if !slices.Equal(got, want) {
		t.Errorf("waits %v, want %v", got, want)
	}
	b.Reset()
	if d := b.Next(); d != 100*time.Millisecond {
		t.Errorf("after Reset: %s, want the first wait again", d)
	}
	for n, w := range want {
		if d := backoff.Nth(100*time.Millisecond, time.Second, n); d != w {
			t.Errorf("Nth(%d) = %s, want %s as Next gives", n, d, w)
		}
	}
	if d := backoff.Nth(time.Second, 30*time.Second, 1000); d != 30*time.Second {
		t.Errorf("Nth after many failures = %s, want the maximum", d)
	}
}
