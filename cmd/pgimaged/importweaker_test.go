package main_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// import patroni refuses to write a configuration weaker than Patroni's: each dropped setting
// that made the cluster more durable or guarded is a warning, a summary line counts them, and
// the exit code is 4 with nothing written; --accept-weaker writes it with the same warnings.
// What is merely left out (log settings, tags pgimaged has no use for) stays a note.
func TestImportPatroniWeaker(t *testing.T) {
	work := workDir(t)
	yml := writeFile(t, work, "p.yml", `scope: s
name: n
log:
  file_num: 4
bootstrap:
  dcs:
    synchronous_mode: true
    slots:
      archiver:
        type: physical
    postgresql:
      use_slots: true
postgresql:
  data_dir: d
  callbacks:
    on_role_change: /usr/local/bin/cb.sh
tags:
  nofailover: true
watchdog:
  mode: required
`, 0o600)
	out := filepath.Join(work, "out.hcl")
	r := run(t, nil, "import", "patroni", yml, "--base-dir", work, "-o", out)
	if r.code != 4 {
		t.Errorf("import of a configuration that loses durability settings: exit %d, want 4:\n%s", r.code, r)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("the weaker configuration was written without --accept-weaker (%v)", err)
	}
	warned := func(r result, setting string) bool {
		for _, l := range strings.Split(r.stderr, "\n") {
			if strings.Contains(l, setting) {
				return strings.HasPrefix(l, "pgimaged: warning:")
			}
		}
		return false
	}
	for _, s := range []string{"bootstrap.dcs.slots", "postgresql.callbacks", "watchdog"} {
		if !warned(r, s) {
			t.Errorf("%s is not a warning:\n%s", s, r.stderr)
		}
	}
	for _, s := range []string{"log.file_num", "tags.nofailover"} {
		if warned(r, s) || !strings.Contains(r.stderr, "note: "+s) {
			t.Errorf("%s is not a mere note:\n%s", s, r.stderr)
		}
	}
	for _, s := range []string{"bootstrap.dcs.synchronous_mode", "bootstrap.dcs.postgresql.use_slots"} {
		if warned(r, s) || strings.Contains(r.stderr, s) {
			t.Errorf("%s is converted, yet reported:\n%s", s, r.stderr)
		}
	}
	if !strings.Contains(r.stderr, "3 settings") || !strings.Contains(r.stderr, "--accept-weaker") {
		t.Errorf("no summary line counting the settings and naming --accept-weaker:\n%s", r.stderr)
	}

	r = run(t, nil, "import", "patroni", yml, "--base-dir", work, "-o", out, "--accept-weaker")
	if r.code != 0 || !warned(r, "bootstrap.dcs.slots") {
		t.Errorf("import --accept-weaker: want exit 0 with the warnings:\n%s", r)
	}
	if hcl, err := os.ReadFile(out); err != nil || !strings.Contains(string(hcl), "archiver") {
		t.Errorf("the output with --accept-weaker does not keep the dropped setting as a comment (%v):\n%s", err, hcl)
	}
}
