package libpq_test

import (
	"testing"

	"github.com/pgimaged/pgimaged/sdk/libpq"
)

func TestParseServerVersion(t *testing.T) {
	cases := []struct {
		in      string
		want    int
		wantErr bool
	}{
		{"postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)\n", 150018, false},
		{"postgres (PostgreSQL) 15.8 (Debian 15.8-1.pgdg120+1)\n", 150008, false},
		{"postgres (PostgreSQL) 12.20\n", 120020, false},
		{"postgres (PostgreSQL) 9.6.24\n", 90624, false},
		{"postgres (PostgreSQL) 10.5", 100005, false},
		{"postgres (PostgreSQL) 16beta2", 160000, false},
		{"postgres (PostgreSQL) 17devel\n", 170000, false},
		{"postgres (PostgreSQL) 17.0", 170000, false},
		{"not postgres", 0, true},
		{"pgbackrest 2.45", 0, true},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			got, err := libpq.ParseServerVersion(tc.in)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("ParseServerVersion = %d, %v; want %d, error %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}
