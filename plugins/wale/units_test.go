package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/pgimaged/pgimaged/sdk"
	"github.com/pgimaged/pgimaged/sdk/plugintest"
)

func readFixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestParseWALEList(t *testing.T) {
	tests := []struct {
		name    string
		out     string
		want    backupInfo
		lsn     string // start position with 16 MB segments
		noBack  bool
		failing bool
	}{
		{
			name: "one backup",
			out:  readFixture(t, "wale-backup-list.txt"),
			want: backupInfo{Name: "base_00000002000000A3000000FE_00001064", Size: 52881948163,
				StartSegment: "00000002000000A3000000FE", StartOffset: 1064},
			lsn: "A3/FE000428",
		},
		{name: "header only: no backup", out: readFixture(t, "wale-backup-list-empty.txt"), noBack: true},
		{name: "nothing at all: no backup", out: "", noBack: true},
		{
			name:    "two rows for LATEST",
			out:     readFixture(t, "wale-backup-list.txt") + strings.SplitN(readFixture(t, "wale-backup-list.txt"), "\n", 2)[1],
			failing: true,
		},
		{name: "a column missing", out: "name\tlast_modified\nbase_1\t2026-01-01\n", failing: true},
		{name: "size is not a number", out: strings.Replace(readFixture(t, "wale-backup-list.txt"), "52881948163", "big", 1), failing: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseWALEList(tc.out)
			switch {
			case tc.noBack:
				if !errors.Is(err, errNoBackup) || !errors.Is(err, sdk.ErrMethodFailed) {
					t.Fatalf("err = %v, want errNoBackup (an sdk.ErrMethodFailed)", err)
				}
				return
			case tc.failing:
				if err == nil {
					t.Fatalf("parsed %+v, want an error", got)
				}
				return
			case err != nil:
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
			lsn, err := got.StartLSN(16 << 20)
			if err != nil || FormatLSN(lsn) != tc.lsn {
				t.Errorf("start LSN %s (%v), want %s", FormatLSN(lsn), err, tc.lsn)
			}
		})
	}
}

func TestParseWALGList(t *testing.T) {
	tests := []struct {
		name   string
		out    string
		want   string // backup name
		size   int64
		lsn    string
		noBack bool
	}{
		{name: "the latest by time, not the last listed", out: readFixture(t, "walg-backup-list.json"),
			want: "base_0000000100000003000000A1", size: 1073741824, lsn: "3/A1000028"},
		{name: "LSN written as X/Y", out: `[{"backup_name":"b","time":"2026-01-01T00:00:00Z","start_lsn":"2/10000028","uncompressed_size":5}]`,
			want: "b", size: 5, lsn: "2/10000028"},
		{name: "times that do not parse: the last listed", out: `[{"backup_name":"a","time":"x","start_lsn":1},{"backup_name":"b","time":"y","start_lsn":2}]`,
			want: "b", lsn: "0/2"},
		{name: "empty array", out: "[]\n", noBack: true},
		{name: "null", out: "null\n", noBack: true},
		{name: "no output", out: "", noBack: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseWALGList(tc.out)
			if tc.noBack {
				if !errors.Is(err, errNoBackup) {
					t.Fatalf("err = %v, want errNoBackup", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			lsn, err := got.StartLSN(0) // WAL-G gives the position; no segment size needed
			if got.Name != tc.want || got.Size != tc.size || err != nil || FormatLSN(lsn) != tc.lsn {
				t.Errorf("got %s size %d start %s (%v), want %s size %d start %s", got.Name, got.Size, FormatLSN(lsn), err, tc.want, tc.size, tc.lsn)
			}
		})
	}
	if _, err := parseWALGList(`[{"backup_name":"b","time":"2026-01-01T00:00:00Z"}]`); err == nil {
		t.Error("a backup without start_lsn was accepted")
	}
}

func TestSegmentLSN(t *testing.T) {
	tests := []struct {
		segment string
		offset  int64
		segSize int64
		want    string
		fails   bool
	}{
		{"000000010000000000000002", 40, 16 << 20, "0/2000028", false},
		{"00000002000000A3000000FE", 1064, 16 << 20, "A3/FE000428", false},
		{"000000010000000100000003", 0, 64 << 20, "1/C000000", false},
		{"000000010000000000000002", 16 << 20, 16 << 20, "", true},
		{"0000000100000000000002", 0, 16 << 20, "", true},
		{"000000010000000000000002", 0, 3 << 20, "", true},
	}
	for _, tc := range tests {
		got, err := segmentLSN(tc.segment, tc.offset, tc.segSize)
		if tc.fails {
			if err == nil {
				t.Errorf("segmentLSN(%s, %d, %d) = %s, want an error", tc.segment, tc.offset, tc.segSize, FormatLSN(got))
			}
			continue
		}
		if err != nil || FormatLSN(got) != tc.want {
			t.Errorf("segmentLSN(%s, %d, %d) = %s, %v; want %s", tc.segment, tc.offset, tc.segSize, FormatLSN(got), err, tc.want)
		}
		back, err := ParseLSN(tc.want)
		if err != nil || back != got {
			t.Errorf("ParseLSN(%s) = %d, %v; want %d", tc.want, back, err, got)
		}
	}
}

// TestCheckThresholds puts the WAL distance on both sides of each limit.
func TestCheckThresholds(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		name     string
		distance int64
		size     int64
		mb, pct  float64
		exceeded string // the option exceeded, "" when the backup is used
	}{
		{name: "below both", distance: 10*mib - 1, size: 100 * mib, mb: 10, pct: 30},
		{name: "at threshold_megabytes", distance: 10 * mib, size: 100 * mib, mb: 10, pct: 30, exceeded: optThresholdMB},
		{name: "above threshold_megabytes", distance: 10*mib + 1, size: 100 * mib, mb: 10, pct: 30, exceeded: optThresholdMB},
		{name: "below the percentage", distance: 30*mib - 1, size: 100 * mib, mb: 10240, pct: 30},
		{name: "at the percentage", distance: 30 * mib, size: 100 * mib, mb: 10240, pct: 30, exceeded: optThresholdPct},
		{name: "above the percentage", distance: 30*mib + 1, size: 100 * mib, mb: 10240, pct: 30, exceeded: optThresholdPct},
		{name: "both exceeded names megabytes first", distance: 50 * mib, size: 100 * mib, mb: 10, pct: 30, exceeded: optThresholdMB},
		{name: "source behind the backup", distance: -4096, size: 100 * mib, mb: 0.001, pct: 1},
		{name: "zero thresholds refuse everything", distance: 0, size: 100 * mib, mb: 0, pct: 0, exceeded: optThresholdMB},
		{name: "unknown size: megabytes alone", distance: 5 * mib, size: 0, mb: 10, pct: 30},
		{name: "fractional megabytes", distance: mib / 2, size: 100 * mib, mb: 0.5, pct: 30, exceeded: optThresholdMB},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := checkThresholds(tc.distance, tc.size, tc.mb, tc.pct)
			if tc.exceeded == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var te *ThresholdError
			if !errors.As(err, &te) || te.Option != tc.exceeded {
				t.Fatalf("err = %v, want a ThresholdError about %s", err, tc.exceeded)
			}
			if !errors.Is(err, sdk.ErrMethodFailed) {
				t.Errorf("%v is not sdk.ErrMethodFailed: pgimaged would not fall back to the next method", err)
			}
			if !strings.Contains(err.Error(), "WAL to replay") || !strings.Contains(err.Error(), tc.exceeded) {
				t.Errorf("message %q does not explain itself", err)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	req := func(o sdk.Options) sdk.ValidateRequest {
		return sdk.ValidateRequest{Method: "wal_e", Path: sdk.PathClone, Options: o}
	}
	plugintest.Conformance(t, New(), plugintest.Suite{
		InvalidOptions: []plugintest.InvalidCase{
			{Name: "unknown tool", Request: req(plugintest.Options("tool=barman")), Option: "tool"},
			{Name: "threshold not a number", Request: req(plugintest.Options("threshold_megabytes=lots")), Option: "threshold_megabytes"},
			{Name: "negative threshold", Request: req(plugintest.Options("threshold_megabytes=-1")), Option: "threshold_megabytes"},
			{Name: "negative percentage", Request: req(plugintest.Options("threshold_backup_size_percentage=-5")), Option: "threshold_backup_size_percentage"},
			{Name: "percentage NaN", Request: req(plugintest.Options("threshold_backup_size_percentage=NaN")), Option: "threshold_backup_size_percentage"},
			{Name: "negative retries", Request: req(plugintest.Options("retries=-1")), Option: "retries"},
			{Name: "fractional retries", Request: req(plugintest.Options("retries=1.5")), Option: "retries"},
			{Name: "retries as a flag", Request: req(plugintest.Options("retries")), Option: "retries"},
			{Name: "missing envdir", Request: req(plugintest.Options("envdir=testdata/no-such-envdir")), Option: "envdir"},
			{Name: "envdir is a file", Request: req(plugintest.Options("envdir=testdata/wale-backup-list.txt")), Option: "envdir"},
			{Name: "use_iam neither 0 nor 1", Request: req(plugintest.Options("use_iam=maybe")), Option: "use_iam"},
			{Name: "tool_path and command", Request: sdk.ValidateRequest{Path: sdk.PathClone, Command: "/usr/bin/wal-e", Options: plugintest.Options("tool_path=/usr/local/bin/wal-e")}, Option: "tool_path"},
		},
		ValidOptions: []plugintest.ValidCase{
			{Name: "nothing", Request: req(nil)},
			{Name: "Patroni's example", Request: req(plugintest.Options("envdir=testdata/envdir", "use_iam=1"))},
			{Name: "everything", Request: req(plugintest.Options("tool=wal-g", "tool_path=/usr/local/bin/wal-g", "retries=0",
				"threshold_megabytes=0", "threshold_backup_size_percentage=12.5"))},
			{Name: "unknown options only warn", Request: req(plugintest.Options("connstring=host=x", "scope=batman"))},
			{Name: "command", Request: sdk.ValidateRequest{Path: sdk.PathBootstrap, Command: "/opt/wal-e/bin/wal-e --terse"}},
		},
	})
}

func TestValidateWarnings(t *testing.T) {
	_, diags := parseConfig("", plugintest.Options("tool=wal-g", "use_iam=1", "scope=batman", "datadir=/x"))
	var got []string
	for _, d := range diags {
		if d.Severity != sdk.SeverityWarning {
			t.Errorf("unexpected error: %+v", d)
		}
		got = append(got, d.Option)
	}
	if want := []string{"datadir", "scope", "use_iam"}; !reflect.DeepEqual(got, want) {
		t.Errorf("warnings about %q, want %q", got, want)
	}
}

func TestReadEnvdir(t *testing.T) {
	got, err := ReadEnvdir(filepath.Join("testdata", "envdir"))
	if err != nil {
		t.Fatal(err)
	}
	want := Envdir{
		Set: map[string]string{
			"WALE_S3_PREFIX":        "file:///var/lib/wal-e/batman", // first line, trailing blanks trimmed
			"AWS_ACCESS_KEY_ID":     "AKIAEXAMPLE",
			"AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG",
			"AWS_REGION":            "eu-west-1", // no newline at the end
		},
		Unset: []string{"AWS_SESSION_TOKEN"}, // an empty file unsets; .hidden is skipped
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	if _, err := ReadEnvdir(filepath.Join("testdata", "no-such-envdir")); err == nil {
		t.Error("a missing envdir was read")
	}
}

func TestRestoreCommand(t *testing.T) {
	envdir, err := filepath.Abs(filepath.Join("testdata", "envdir"))
	if err != nil {
		t.Fatal(err)
	}
	_, haveEnvdir := exec.LookPath("envdir")
	tests := []struct {
		name    string
		command string
		opts    sdk.Options
		want    string
	}{
		{name: "wal-e", opts: plugintest.Options("tool_path=/usr/local/bin/wal-e"), want: `/usr/local/bin/wal-e wal-fetch "%f" "%p"`},
		{name: "wal-g", opts: plugintest.Options("tool=wal-g", "tool_path=/usr/local/bin/wal-g"), want: `/usr/local/bin/wal-g wal-fetch "%f" "%p"`},
		{name: "use_iam", opts: plugintest.Options("tool_path=/usr/local/bin/wal-e", "use_iam=1"), want: `/usr/local/bin/wal-e --aws-instance-profile wal-fetch "%f" "%p"`},
		{name: "quoting and percent signs", command: `"/opt/wal e/100%/wal-e" --terse`,
			want: `'/opt/wal e/100%%/wal-e' --terse wal-fetch "%f" "%p"`},
		{name: "envdir", opts: plugintest.Options("tool_path=/usr/local/bin/wal-e", "envdir="+envdir),
			want: `/usr/lib/pgimaged/plugins/pgimaged-plugin-wale envdir ` + envdir + ` /usr/local/bin/wal-e wal-fetch "%f" "%p"`},
	}
	p := &Plugin{Self: "/usr/lib/pgimaged/plugins/pgimaged-plugin-wale"}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "envdir" && haveEnvdir == nil {
				env, _ := exec.LookPath("envdir")
				tc.want = strings.Replace(tc.want, "/usr/lib/pgimaged/plugins/pgimaged-plugin-wale envdir", env, 1)
			}
			cfg, err := loadConfig(tc.command, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			got, err := p.restoreCommand(cfg)
			if err != nil || got != tc.want {
				t.Errorf("restore_command = %s (%v)\n                 want %s", got, err, tc.want)
			}
		})
	}
}

func TestPlan(t *testing.T) {
	envdir := filepath.Join("testdata", "envdir")
	c := plugintest.Connect(t, &Plugin{Self: "/usr/lib/pgimaged/plugins/pgimaged-plugin-wale"})
	ctx := context.Background()
	cluster := sdk.Cluster{Scope: "batman", DataDir: "/var/lib/postgresql/15/node2"}
	tests := []struct {
		name  string
		plan  func() (sdk.Plan, error)
		argv  []string
		notes []string // each must be in some note
	}{
		{
			name: "wal-e clone from a source",
			plan: func() (sdk.Plan, error) {
				return c.PlanClone(ctx, sdk.CloneRequest{Cluster: cluster, ConnString: "host=10.0.0.1 user=replicator",
					Options: plugintest.Options("envdir="+envdir, "use_iam=1", "threshold_megabytes=500")})
			},
			argv: []string{
				"wal-e --aws-instance-profile backup-list --detail LATEST",
				"wal-e --aws-instance-profile backup-fetch /var/lib/postgresql/15/node2 LATEST",
			},
			notes: []string{"less than 500 MB and less than 30% of the backup's size", "tried 3 time(s)", "restore_command = "},
		},
		{
			name: "wal-g bootstrap",
			plan: func() (sdk.Plan, error) {
				return c.PlanBootstrap(ctx, sdk.BootstrapRequest{Cluster: cluster, Options: plugintest.Options("tool=wal-g", "retries=0")})
			},
			argv: []string{
				"wal-g backup-list --detail --json",
				"wal-g backup-fetch /var/lib/postgresql/15/node2 LATEST",
			},
			notes: []string{"no running source", "tried 1 time(s)"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			plan, err := tc.plan()
			if err != nil {
				t.Fatal(err)
			}
			var argv []string
			for _, cmd := range plan.Commands {
				argv = append(argv, strings.Join(cmd.Argv, " "))
			}
			if !reflect.DeepEqual(argv, tc.argv) {
				t.Errorf("commands\n got %q\nwant %q", argv, tc.argv)
			}
			all := strings.Join(plan.Notes, "\n")
			for _, n := range tc.notes {
				if !strings.Contains(all, n) {
					t.Errorf("no note says %q:\n%s", n, all)
				}
			}
		})
	}

	t.Run("envdir values shown, secrets masked", func(t *testing.T) {
		plan, err := c.PlanClone(ctx, sdk.CloneRequest{Cluster: cluster, Options: plugintest.Options("envdir=" + envdir)})
		if err != nil {
			t.Fatal(err)
		}
		env := plan.Commands[0].Env
		want := map[string]string{
			"WALE_S3_PREFIX": "file:///var/lib/wal-e/batman", "AWS_REGION": "eu-west-1",
			"AWS_ACCESS_KEY_ID": sdk.Mask, "AWS_SECRET_ACCESS_KEY": sdk.Mask, "AWS_SESSION_TOKEN": "",
		}
		if !reflect.DeepEqual(env, want) {
			t.Errorf("env %v, want %v", env, want)
		}
	})

	t.Run("invalid options", func(t *testing.T) {
		_, err := c.PlanClone(ctx, sdk.CloneRequest{Cluster: cluster, Options: plugintest.Options("tool=wal-x")})
		if !errors.Is(err, sdk.ErrInvalidOptions) {
			t.Errorf("err = %v, want sdk.ErrInvalidOptions", err)
		}
	})
}

func TestSettingBytes(t *testing.T) {
	tests := []struct {
		setting, unit string
		want          int64
	}{
		{"16777216", "B", 16 << 20},
		{"2048", "8kB", 16 << 20},
		{"64", "MB", 64 << 20},
	}
	for _, tc := range tests {
		got, err := settingBytes(tc.setting, tc.unit)
		if err != nil || got != tc.want {
			t.Errorf("settingBytes(%s, %s) = %d, %v; want %d", tc.setting, tc.unit, got, err, tc.want)
		}
	}
	if _, err := settingBytes("1", "ms"); err == nil {
		t.Error("a time unit was taken for a size")
	}
}
