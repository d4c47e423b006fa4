package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// agentCluster is a pgimaged cluster whose members' agents the benchmark starts and stops one
// by one, as an operator or a lost host would: for the switchover and the rejoin.
type agentCluster struct {
	m         *machine
	clean     *cleanups
	work      string
	scope     string
	dcs       string // the dcs block
	settings  string // loop_wait, ttl
	env       []string
	passfile  string // the superuser's password, for the bench's own psql
	superPass string
	members   []*agentMember
}

// agentMember is one member: its configuration and, while it runs, its agent.
type agentMember struct {
	name, config, dataDir, log string
	port                       int
	// extra is put into the member's postgresql block.
	extra string
	proc  *agentProc
}

// agentProc is a running agent.
type agentProc struct {
	pid  int
	done chan struct{}
}

// newAgentCluster prepares n members' configurations in a fresh work directory; nothing runs
// yet. dcs is the dcs block; settings go to the top level of every configuration.
func newAgentCluster(m *machine, clean *cleanups, prefix, scope, dcs, settings string, n int) (*agentCluster, error) {
	work, err := m.workDir(prefix)
	if err != nil {
		return nil, err
	}
	clean.add(func() { _ = os.RemoveAll(work) })
	if dcs == "" {
		dcs = fmt.Sprintf(`dcs "file" { path = %q }`, filepath.Join(work, "dcs"))
	}
	c := &agentCluster{m: m, clean: clean, work: work, scope: scope, dcs: dcs, settings: settings, superPass: password()}
	c.env = []string{"BENCH_SUPERUSER_PASSWORD=" + c.superPass, "BENCH_REPLICATION_PASSWORD=" + password()}
	c.passfile = filepath.Join(work, "pgpass")
	if err := m.writeFile(c.passfile, fmt.Sprintf("127.0.0.1:*:*:postgres:%s\n", c.superPass)); err != nil {
		return nil, err
	}
	for i := 1; i <= n; i++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		name := fmt.Sprintf("node%d", i)
		dir := filepath.Join(work, name)
		if err := m.mkdir(dir); err != nil {
			return nil, err
		}
		mb := &agentMember{name: name, config: filepath.Join(work, name+".hcl"), dataDir: filepath.Join(dir, "data"),
			log: filepath.Join(work, name+".log"), port: port}
		c.members = append(c.members, mb)
		clean.add(func() { m.stopServer(mb.dataDir) })
		clean.add(func() { c.stop(mb, false) })
	}
	return c, nil
}

// writeConfig writes mb's configuration with mb.extra in its postgresql block.
func (c *agentCluster) writeConfig(mb *agentMember) error {
	blocks := memberBlocks(c.m, mb.port, filepath.Dir(mb.dataDir))
	if mb.extra != "" {
		blocks = strings.Replace(blocks, "postgresql {\n", "postgresql {\n"+mb.extra+"\n", 1)
	}
	return c.m.writeFile(mb.config, fmt.Sprintf(`scope      = %q
name       = %q
data_dir   = %q
plugin_dir = %q
%s
%s
%s
method "basebackup" {
  checkpoint = "fast"
}
`, c.scope, mb.name, mb.dataDir, c.m.plugins, c.settings, c.dcs, blocks))
}

// start writes mb's configuration and starts its agent, its output appended to mb.log.
func (c *agentCluster) start(mb *agentMember) error {
	if err := c.writeConfig(mb); err != nil {
		return err
	}
	log, err := os.OpenFile(mb.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	cmd := c.m.command(context.Background(), c.env, c.m.bin, "run", "-config", mb.config)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("while starting %s's agent: %w", mb.name, err)
	}
	p := &agentProc{pid: cmd.Process.Pid, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); log.Close(); close(p.done) }()
	mb.proc = p
	return nil
}

// stop stops mb's agent: SIGTERM, which stops its PostgreSQL (fast), or, with lose, the host
// going down: the agent killed and its PostgreSQL stopped immediately.
func (c *agentCluster) stop(mb *agentMember, lose bool) {
	p := mb.proc
	if p == nil {
		return
	}
	mb.proc = nil
	if lose {
		_ = syscall.Kill(p.pid, syscall.SIGKILL)
		<-p.done
		c.m.stopServer(mb.dataDir)
		return
	}
	_ = syscall.Kill(p.pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(2 * time.Minute):
		_ = syscall.Kill(-p.pid, syscall.SIGKILL)
		<-p.done
	}
}

// exited is an error naming a member whose agent exited on its own, with its log's end.
func (c *agentCluster) exited() error {
	for _, mb := range c.members {
		if mb.proc == nil {
			continue
		}
		select {
		case <-mb.proc.done:
			out, _ := os.ReadFile(mb.log)
			return fmt.Errorf("the agent of %s exited:\n%s", mb.name, tail(string(out), 15))
		default:
		}
	}
	return nil
}

// agentStatus is the cluster as `pgimaged status -json` shows it.
type agentStatus struct {
	Leader  string `json:"leader"`
	Members []struct {
		Name string `json:"name"`
		memberState
	} `json:"members"`
}

// state is mb's published role and state; empty when it is not listed.
func (s agentStatus) state(name string) memberState {
	for _, mb := range s.Members {
		if mb.Name == name {
			return mb.memberState
		}
	}
	return memberState{}
}

// status reads the cluster through via's configuration; an error only when status answers
// with something that is not its JSON.
func (c *agentCluster) status(ctx context.Context, via *agentMember) (agentStatus, bool, error) {
	var st agentStatus
	out, err := c.m.run(ctx, c.env, "", c.m.bin, "status", "-json", "-config", via.config)
	if err != nil {
		return st, false, nil
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		return st, false, fmt.Errorf("pgimaged status -json printed no JSON: %w\n%s", err, out)
	}
	return st, true, nil
}

// psql runs sql on the server at 127.0.0.1:port as the superuser and returns its output.
func (c *agentCluster) psql(ctx context.Context, port int, sql string) (string, error) {
	out, err := c.m.run(ctx, []string{"PGPASSFILE=" + c.passfile, "PGCONNECT_TIMEOUT=5"}, "", c.m.pg("psql"), "-X", "-At", "-v", "ON_ERROR_STOP=1",
		"-h", "127.0.0.1", "-p", strconv.Itoa(port), "-U", "postgres", "-d", "postgres", "-c", sql)
	return strings.TrimSpace(out), err
}

// streaming is the number of standbys streaming from the server at port, -1 if it cannot be
// asked.
func (c *agentCluster) streaming(ctx context.Context, port int) int {
	return streamingStandbys(ctx, c.m, []string{"PGPASSFILE=" + c.passfile}, "-h", "127.0.0.1", "-p", strconv.Itoa(port))
}

// wait polls cond every 100 ms until it holds, for at most limit; a member's agent that
// exits, or the limit, is an error carrying the members' logs.
func (c *agentCluster) wait(ctx context.Context, what string, limit time.Duration, cond func() (bool, error)) error {
	start := time.Now()
	for {
		if err := c.exited(); err != nil {
			return fmt.Errorf("while waiting for %s: %w", what, err)
		}
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Since(start) > limit {
			var b strings.Builder
			for _, mb := range c.members {
				out, _ := os.ReadFile(mb.log)
				fmt.Fprintf(&b, "\n--- %s\n%s", mb.name, tail(string(out), 15))
			}
			return fmt.Errorf("%s: not after %s%s", what, limit, b.String())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// member is the member called name.
func (c *agentCluster) member(name string) *agentMember {
	for _, mb := range c.members {
		if mb.name == name {
			return mb
		}
	}
	return nil
}

// up starts every member at once and waits until one is the primary and every other one a
// replica streaming from it; it returns the primary.
func (c *agentCluster) up(ctx context.Context) (*agentMember, error) {
	for _, mb := range c.members {
		if err := c.start(mb); err != nil {
			return nil, err
		}
	}
	var leader *agentMember
	err := c.wait(ctx, "the cluster up", clusterDeadline, func() (bool, error) {
		st, ok, err := c.status(ctx, c.members[0])
		if err != nil || !ok {
			return false, err
		}
		var states []memberState
		for _, mb := range st.Members {
			states = append(states, mb.memberState)
		}
		if st.Leader == "" || !clusterReady(states, len(c.members), "primary", "running") {
			return false, nil
		}
		leader = c.member(st.Leader)
		return leader != nil && c.streaming(ctx, leader.port) == len(c.members)-1, nil
	})
	return leader, err
}
