package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// floorCluster is the floor a cluster manager is measured against: the bare programs in
// sequence, with no agent and no DCS, as the postgres OS user on empty directories — initdb
// (with its sync to disk), pg_ctl start -w, psql creating the roles, n-1 pg_basebackup -X stream
// -c fast -R in parallel, every standby started, until the primary's pg_stat_replication shows
// n-1 standbys streaming. The servers are stopped and the directories removed afterwards, outside
// the measured time.
//
// steps, if not nil, gets each step's duration in this run, by the step's name.
func floorCluster(ctx context.Context, m *machine, n int, steps *floorSteps) (time.Duration, error) {
	var clean cleanups
	defer clean.run()
	work, err := m.workDir("pgimaged-bench-floor-")
	if err != nil {
		return 0, err
	}
	clean.add(func() { _ = os.RemoveAll(work) })
	superPass, replPass := password(), password()
	passfile := filepath.Join(work, "pgpass")
	if err := m.writeFile(passfile, fmt.Sprintf("127.0.0.1:*:*:replicator:%s\n", replPass)); err != nil {
		return 0, err
	}
	env := []string{"PGPASSFILE=" + passfile}
	ports := make([]int, n)
	dataDirs := make([]string, n)
	for i := range n {
		if ports[i], err = freePort(); err != nil {
			return 0, err
		}
		dir := filepath.Join(work, fmt.Sprintf("node%d", i+1))
		if err := m.mkdir(dir); err != nil {
			return 0, err
		}
		dataDirs[i] = filepath.Join(dir, "data")
		clean.add(func() { m.stopServer(dataDirs[i]) })
	}
	logOf := func(i int) string { return filepath.Join(work, fmt.Sprintf("node%d.log", i+1)) }

	start := time.Now()
	last := start
	step := func(name string) {
		now := time.Now()
		steps.add(name, now.Sub(last))
		last = now
	}
	if _, err := m.run(ctx, nil, "", m.pg("initdb"), "-D", dataDirs[0], "-U", "postgres", "-E", "UTF8", "--locale=C",
		"--auth-local=trust", "--auth-host=scram-sha-256"); err != nil {
		return 0, err
	}
	step("initdb")
	if _, err := m.run(ctx, env, "", m.pg("pg_ctl"), "start", "-D", dataDirs[0], "-l", logOf(0), "-w", "-t", "120",
		"-o", serverOptions(ports[0], work)); err != nil {
		return 0, err
	}
	step("pg_ctl start -w")
	if err := createRoles(ctx, m, work, ports[0], superPass, replPass); err != nil {
		return 0, err
	}
	step("psql roles")
	source := fmt.Sprintf("host=127.0.0.1 port=%d user=replicator", ports[0])
	if err := parallel(n-1, func(i int) error {
		_, err := m.run(ctx, env, "", m.pg("pg_basebackup"), "-X", "stream", "-c", "fast", "-R", "-D", dataDirs[i+1], "-d", source)
		return err
	}); err != nil {
		return 0, err
	}
	step(fmt.Sprintf("%d× pg_basebackup", n-1))
	// Started without -w: the wait for streaming below is the wait for them.
	if err := parallel(n-1, func(i int) error {
		_, err := m.run(ctx, env, "", m.pg("pg_ctl"), "start", "-D", dataDirs[i+1], "-l", logOf(i+1), "-o", serverOptions(ports[i+1], work))
		return err
	}); err != nil {
		return 0, err
	}
	step(fmt.Sprintf("%d× pg_ctl start", n-1))
	err = waitUp(ctx, start, work, func() (bool, error) {
		return streamingStandbys(ctx, m, nil, "-h", work, "-p", fmt.Sprint(ports[0])) == n-1, nil
	})
	took := time.Since(start)
	if err == nil {
		step("until streaming")
	}
	return took, err
}

// floorSteps gathers the floor's steps over the runs.
type floorSteps struct {
	names []string
	took  map[string][]time.Duration
}

func (s *floorSteps) add(name string, d time.Duration) {
	if s == nil {
		return
	}
	if s.took == nil {
		s.took = map[string][]time.Duration{}
	}
	if _, ok := s.took[name]; !ok {
		s.names = append(s.names, name)
	}
	s.took[name] = append(s.took[name], d)
}

func (s *floorSteps) print(w io.Writer) {
	rows := [][]string{{"step", "took", "min–max", "runs"}}
	for _, name := range s.names {
		rows = append(rows, []string{name, millis(median(s.took[name])), spread(s.took[name]), fmt.Sprint(len(s.took[name]))})
	}
	table(w, rows)
}

// parallel runs f(0) … f(n-1) at once and returns the first error.
func parallel(n int, f func(i int) error) error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = f(i) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
