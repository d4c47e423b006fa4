package sdk

import (
	"testing"
	"time"
)

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		unit int64
		want int64
		bad  bool
	}{
		{in: "100M", unit: 1, want: 100 << 20},
		{in: "100MB", unit: 1, want: 100 << 20},
		{in: "32kB", unit: 1, want: 32 << 10},
		{in: "32k", unit: 1, want: 32 << 10},
		{in: "1 GB", unit: 1, want: 1 << 30},
		{in: "512", unit: 1024, want: 512 << 10},
		{in: "7B", unit: 1024, want: 7},
		{in: "lots", bad: true},
		{in: "10 parsecs", bad: true},
		{in: "-5M", bad: true},
		{in: "99999999999999999999T", bad: true},
		{in: "9999999999T", bad: true},
	} {
		got, err := parseSize(tc.in, tc.unit)
		if tc.bad != (err != nil) || !tc.bad && got != tc.want {
			t.Errorf("ParseSize(%q, %d) = %d, %v; want %d (bad %v)", tc.in, tc.unit, got, err, tc.want, tc.bad)
		}
	}
}

func TestParseDuration(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		bad  bool
	}{
		{in: "30", want: 30 * time.Second},
		{in: "30s", want: 30 * time.Second},
		{in: "5min", want: 5 * time.Minute},
		{in: "250ms", want: 250 * time.Millisecond},
		{in: "1h30m", want: 90 * time.Minute},
		{in: "2d", want: 48 * time.Hour},
		{in: "soon", bad: true},
		{in: "-1s", bad: true},
	} {
		got, err := parseDuration(tc.in, time.Second)
		if tc.bad != (err != nil) || !tc.bad && got != tc.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v (bad %v)", tc.in, got, err, tc.want, tc.bad)
		}
	}
}
