package engine_test

import (
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/pgimaged/pgimaged/core/config"
	"github.com/pgimaged/pgimaged/core/engine"
)

func TestPlanChain(t *testing.T) {
	cfg := &config.Config{Methods: map[string]*config.Method{
		"archive":  {Label: "archive", Plugin: "wale", NoMaster: true, Attempts: 3, RetryWait: time.Minute},
		"custom":   {Label: "custom", Command: "/bin/true"},
		"backrest": {Label: "backrest", Plugin: "pgbackrest"},
	}}
	cfg.PostgreSQL.CreateReplicaMethods = []string{"missing", "basebackup", "archive", "custom"}
	has := func(name string) bool { return name == "basebackup" || name == "wale" || name == "pgbackrest" }
	summary := func(steps []engine.ChainStep) []string {
		var out []string
		for _, s := range steps {
			line := s.Label + "/" + s.Plugin + "/" + strconv.Itoa(s.Attempts) + "/" + s.Wait.String()
			if s.Skipped != "" {
				line += " skipped: " + s.Skipped
			}
			out = append(out, line)
		}
		return out
	}
	cases := []struct {
		name    string
		in      engine.ChainInput
		want    []string
		runs    bool
		methods []string
	}{
		{
			name: "with a source every installed method runs, in the configured order",
			in:   engine.ChainInput{Config: cfg, HasPlugin: has, HasSource: true},
			want: []string{
				"missing//1/5s skipped: no plugin: the method has no command and no plugin of that name is installed",
				"basebackup/basebackup/2/5s", "archive/wale/3/1m0s", "custom/script/1/5s",
			},
			runs: true,
		},
		{
			name: "without a source only no_master methods run",
			in:   engine.ChainInput{Config: cfg, HasPlugin: has},
			want: []string{
				"missing//1/5s skipped: no plugin: the method has no command and no plugin of that name is installed",
				"basebackup/basebackup/2/5s skipped: no running source to clone from and the method does not set no_master",
				"archive/wale/3/1m0s",
				"custom/script/1/5s skipped: no running source to clone from and the method does not set no_master",
			},
			runs: true,
		},
		{
			name: "a reinit's methods replace the configured chain",
			in:   engine.ChainInput{Config: cfg, HasPlugin: has, Methods: []string{"custom"}},
			want: []string{"custom/script/1/5s skipped: no running source to clone from and the method does not set no_master"},
		},
		{
			name: "a standby cluster's leader without a host: a plugin that restores without a source runs too",
			in: engine.ChainInput{Config: cfg, HasPlugin: has, Methods: []string{"basebackup", "backrest", "custom"},
				WorksWithoutSource: func(name string) bool { return name == "pgbackrest" }},
			want: []string{
				"basebackup/basebackup/2/5s skipped: no running source to clone from and the method does not set no_master",
				"backrest/pgbackrest/1/5s",
				"custom/script/1/5s skipped: no running source to clone from and the method does not set no_master",
			},
			runs: true,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := summary(engine.PlanChain(tc.in))
			if !slices.Equal(got, tc.want) {
				t.Errorf("steps\n%q\nwant\n%q", got, tc.want)
			}
			if engine.Runnable(engine.PlanChain(tc.in)) != tc.runs {
				t.Errorf("runnable: %v, want %v", !tc.runs, tc.runs)
			}
			if !slices.Equal(cfg.PostgreSQL.CreateReplicaMethods, []string{"missing", "basebackup", "archive", "custom"}) {
				t.Errorf("the configuration changed: %v", cfg.PostgreSQL.CreateReplicaMethods)
			}
		})
	}
}
