package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// helpEntry is what `pgimaged help CMD` and `pgimaged CMD -h` print besides the flags.
type helpEntry struct {
	about   string // what the command does
	example string // one or more command lines
	exits   string // exit codes beyond 0 (success) and 2 (usage)
}

// help holds the help text of every command and plugins subcommand, keyed as typed
// ("status", "plugins show"). It is the one place this text lives; README.md's command table
// is checked against it.
var help = map[string]helpEntry{
	"run": {
		about:   "The node agent: adopts an existing data directory, or races for the cluster's initialize key and bootstraps, or clones a replica; then keeps the member published in the DCS until SIGTERM, which stops PostgreSQL and gives up its keys.",
		example: "pgimaged run -config /etc/pgimaged/node1.hcl",
		exits:   "1 failed (the log names the cause), 3 configuration errors, 4 refused (a data directory pgimaged will not overwrite, or held by another pgimaged)",
	},
	"bootstrap": {
		about:   "Creates a new cluster once, without a DCS: initdb or the configured bootstrap method, recovery settings, start, roles and post_bootstrap. Prints the system identifier. With --image-only it stops after the data directory is made, for use as another tool's bootstrap method.",
		example: "pgimaged bootstrap -config /etc/pgimaged/node1.hcl",
		exits:   "1 failed, 3 configuration errors, 4 refused (the data directory is not empty and not pgimaged's)",
	},
	"clone": {
		about:   "Clones a replica once, without a DCS, trying the replica methods in order; then standby settings, start, a system identifier check and a wait for streaming. With --image-only it stops after the data directory is made, for use as Patroni's create_replica_method.",
		example: "pgimaged clone -config /etc/pgimaged/node2.hcl --connstring 'host=db1 port=5432 user=replicator'",
		exits:   "1 every method failed (the root cause of each is printed), 3 configuration errors, 4 refused (the data directory is not empty and not pgimaged's)",
	},
	"reinit": {
		about:   "Re-clones this replica, like patronictl reinit: with its agent running it asks the agent through the DCS; without, it does the work itself holding the data directory's lock. PostgreSQL is stopped, the data directory emptied and cloned with the configured chain or the methods given with --method. Never on the leader or a primary. With --member NAME it re-clones another member from any host that reaches the DCS, through that member's agent; when that agent does not run, the request waits in the DCS until it starts (status shows it pending).",
		example: "pgimaged reinit -config /etc/pgimaged/node1.hcl --member node2 --force",
		exits:   "1 failed, 3 configuration errors, 4 refused (the leader, a primary, another cluster's directory, a member the DCS does not know), 5 the member's agent does not run: the request waits in the DCS; 2 also without a terminal and without --force",
	},
	"switchover": {
		about:   "Hands the primary role to a replica while the primary runs, like patronictl switchover: the leader's agent shuts PostgreSQL down cleanly, the candidate replays WAL up to that shutdown checkpoint, promotes and takes the leader key by compare-and-swap; the old primary follows it as a standby without a rewind. Without --candidate, the most advanced streaming replica. Refused when the candidate does not stream, lags by more than maximum_lag_on_failover, is tagged nofailover or is mid-clone. Recorded in the cluster history. --scheduled TIME (ISO 8601 with its time zone) records it for later, like patronictl switchover --scheduled: the leader leads on until then (within loop_wait), checks the candidate as above at that time (none named: the most advanced healthy replica then) and hands over, or aborts it with the reason; not while paused; a switchover or failover asked meanwhile replaces it; status shows it; --cancel cancels it (DELETE /switchover).",
		example: "pgimaged switchover -config /etc/pgimaged/node1.hcl --candidate node2 --yes\n  pgimaged switchover -config /etc/pgimaged/node1.hcl --scheduled 2026-12-08T02:00:00+00:00 --yes",
		exits:   "1 the change did not happen (the reason is printed; the old primary runs again), 3 configuration errors, 4 refused (the reason and the members' positions are printed; also while another change is pending); 2 also without a terminal and without --yes",
	},
	"failover": {
		about:   "Makes a member the primary while no member holds the leader key (the primary is lost): the candidate must be the most advanced of the running members (timeline, then WAL position), else it is refused with every member's position in bytes; --force proceeds and records how much may be lost. The candidate's agent promotes it (or, promoted by hand already, only takes the key) and takes the leader key by compare-and-swap; a member on an older timeline never takes it again. Recorded in the cluster history.",
		example: "pgimaged failover -config /etc/pgimaged/node2.hcl --candidate node2 --yes",
		exits:   "1 the change did not happen, 3 configuration errors, 4 refused (a leader holds the key, the candidate is unknown, behind, tagged nofailover, or another change is pending); 2 also without --candidate, or without a terminal and without --yes",
	},
	"reload": {
		about:   "Has a member's agent re-read its configuration file, like patronictl reload; SIGHUP to the agent and POST /reload on its API do the same. parameters, pg_hba, tags, methods, loop_wait, log_level, log_file and the api credentials take effect: the agent writes PostgreSQL's settings file and pg_hba.conf again and reloads PostgreSQL; parameters that need a restart are listed as pending restart (status and GET /patroni show pending_restart). A changed replication or superuser password is set on the primary (ALTER ROLE with a SCRAM verifier, never logged) and written into every standby's pgpass file and primary_conninfo. Settings that cannot change while the agent runs (data_dir, scope, name, the dcs block, ttl, postgresql.listen and bin_dir, the api's address and TLS files, log_format, plugins, role names) refuse the reload whole with the reason; so does a configuration that does not validate, with its diagnostics. The agent then keeps the configuration it had. With --member NAME from any host that reaches the DCS, through that member's API (this configuration's api credentials); without an API, the configuration's own member is sent SIGHUP and the outcome read from its member key.",
		example: "pgimaged reload -config /etc/pgimaged/node1.hcl --member node2",
		exits:   "1 applied, but PostgreSQL rejected part of it (a pg_hba line or a setting: it keeps what it had for those), or the agent could not be reached; 3 the configuration does not validate (its diagnostics are printed); 4 refused (a setting that cannot change while the agent runs; the reason is printed)",
	},
	"standby": {
		about:   "standby promote turns a standby cluster into a cluster of its own: its standby leader stops following the remote, ends recovery and leads as the primary (the leader key stays with it), the other members follow it on the new timeline without a new copy. The DCS records the promotion (pgimaged/standby_cluster) and the timeline switch in the cluster history; from then on a member whose configuration still holds a standby_cluster block ignores it and says so in its log and in status. Refused while a member is creating a replica (promote once it streams). Prints how long the promotion took, from the request to the new primary publishing itself. standby follow is the reverse, for the site that was left: with a standby_cluster block in this configuration naming the promoted cluster, the cluster's primary is stopped, rewound toward the remote with the rejoin methods (pg_rewind) — or, when that fails and rejoin = \"reimage\", re-cloned with the block's create_replica_methods — and leads as the standby leader; its replicas keep following it (one whose WAL went past the remote's fork rejoins it). Before anything is stopped the remote's system identifier, major version and slot are checked. The DCS records the block; every member uses it, also one whose configuration has none.",
		example: "pgimaged standby promote -config /etc/pgimaged/node1.hcl --yes\npgimaged standby follow -config /etc/pgimaged/node1.hcl --yes",
		exits:   "1 the promotion or follow did not happen in time (with the leader's reason) or the DCS could not be reached, 3 configuration errors, 4 refused (no standby leader runs — or for follow no primary, or no standby_cluster block —, the cluster is paused, a member is mid-clone, or a change of primary or of the standby cluster is pending); 2 also without a subcommand, or without a terminal and without --yes",
	},
	"restart": {
		about:   "Restarts PostgreSQL through the members' agents, like patronictl restart: the agent stops it (fast) and starts it again in the same role, publishing the state restarting meanwhile; the leader keeps its key. Without --member every member of the cluster, replicas first and the leader last, each waited on until it runs again. --pending restarts only members whose PostgreSQL reports pending_restart (a changed setting that needs a restart); --role only members in that role. Refused for a member mid-clone, bootstrapping or reinitializing, whose agent does not run or whose PostgreSQL does not run, and during a switchover or failover. In maintenance mode (pause) the restart is carried out, as Patroni does on an explicit request.",
		example: "pgimaged restart -config /etc/pgimaged/node1.hcl --pending --yes",
		exits:   "1 a restart failed (the cause is printed; the members after it are not restarted) or the DCS could not be reached, 3 configuration errors, 4 refused (an unknown member, its agent or PostgreSQL not running, mid-clone, a change of primary under way); 2 also without a terminal and without --yes",
	},
	"pause": {
		about:   "Puts the cluster in maintenance mode, like patronictl pause, kept in the DCS: every agent keeps watching and publishing, but starts, stops, clones, re-points, fences and promotes nothing; an agent stopped meanwhile leaves its PostgreSQL running. status and GET /patroni say paused.",
		example: "pgimaged pause -config /etc/pgimaged/node1.hcl",
		exits:   "1 the DCS could not be reached, 3 configuration errors",
	},
	"resume": {
		about:   "Ends maintenance mode, like patronictl resume: the agents decide and act again.",
		example: "pgimaged resume -config /etc/pgimaged/node1.hcl",
		exits:   "1 the DCS could not be reached, 3 configuration errors",
	},
	"history": {
		about:   "Lists a member's bootstrap and clone attempts (the newest 50), kept in the DCS across restarts, then the cluster's timeline switches (each change of primary: timeline, switch LSN, reason, old and new leader); -timelines lists only those, as patronictl history does.",
		example: "pgimaged history -config /etc/pgimaged/node1.hcl -member node2\n  pgimaged history -config /etc/pgimaged/node1.hcl -timelines -json",
		exits:   "1 the DCS could not be read, 3 configuration errors",
	},
	"plan": {
		about: "Shows what this node would do now and why: the path (adopt, bootstrap, clone), the source, every method with its exact command line (secrets masked) and the methods skipped with the reason. " +
			"With --connstring C it shows instead what the one-shot pgimaged clone --connstring C would do: the replica methods from that source, the DCS not read.",
		example: "pgimaged plan -config /etc/pgimaged/node2.hcl\n  pgimaged plan -config /etc/pgimaged/node2.hcl --connstring 'host=db1 user=replicator'",
		exits:   "1 the DCS could not be read, 3 configuration errors",
	},
	"status": {
		about:   "Shows the cluster's members: role, state, timeline, lag, upstream, a clone in flight and each member's last error, root cause first.",
		example: "pgimaged status -config /etc/pgimaged/node1.hcl -json",
		exits:   "1 the DCS could not be read, 3 configuration errors",
	},
	"validate": {
		about:   "Checks a configuration: pgimaged's own settings, each method's options against its plugin's schema (unknown options with a suggestion, types, enums, required, refused) and each plugin's own checks. Every problem is reported at file:line:col, all at once.",
		example: "pgimaged validate -config /etc/pgimaged/node1.hcl",
		exits:   "3 the configuration has errors (a YAML file is named as such, with the import command)",
	},
	"plugins": {
		about: "Lists the installed plugins: name, version, capabilities, what their sha256 is checked against, sha256, path and description. " +
			"CHECKED is what pgimaged compares a plugin binary's sha256 with before it starts it: pin (the sha256 of a plugin block in the configuration), " +
			"lock (its entry in the lock file that plugins install writes; enforced with -config), pin+lock (both), none (nothing: any file with that name runs). " +
			"Subcommands: show, install, verify, check (pgimaged help plugins show, ...).",
		example: "pgimaged plugins -config /etc/pgimaged/node1.hcl",
		exits:   "1 a plugin could not be read, 3 configuration errors, 4 a listed plugin is refused (its sha256 differs from its pin or lock entry, it is not in the lock file, or it does not start): the reason is printed, and the agent would refuse it too",
	},
	"plugins show": {
		about:   "Shows a plugin's options: type, default, bounds, description, deprecated names, and the options it refuses with the reason.",
		example: "pgimaged plugins show basebackup",
		exits:   "1 no such plugin, or it could not be started",
	},
	"plugins install": {
		about: "Checks that FILE is a plugin, installs it in the plugin directory as pgimaged-plugin-<its name> and records its sha256 in the lock file. " +
			"FILE may have any name, or be named pgimaged-plugin-<its name>, optionally with its version: pgimaged-plugin-mymethod-1.2.0 (or -v1.2.0) installs as pgimaged-plugin-mymethod.",
		example: "pgimaged plugins install ./pgimaged-plugin-mymethod-1.2.0 -config /etc/pgimaged/node1.hcl",
		exits:   "1 FILE is not a plugin or could not be installed, 3 configuration errors, 4 refused: FILE is named pgimaged-plugin-<x> but describes itself as another plugin, or its version suffix is not the version it describes (the reason is printed)",
	},
	"plugins verify": {
		about:   "Compares the plugin directory with the lock file: plugins missing, extra or whose sha256 differs.",
		example: "pgimaged plugins verify -config /etc/pgimaged/node1.hcl",
		exits:   "1 any difference, 3 configuration errors",
	},
	"plugins check": {
		about: "Runs conformance checks on a built plugin, in any language; with -source it also clones a running primary into a temporary directory. " +
			"The checks' calls carry the options a method block would give: -option NAME=VALUE (repeatable), or -config FILE -method LABEL for a method block's; " +
			"a plugin with a required option needs them to run at all. A check that ran but could not test what it is about (a call that failed before it could be cancelled) " +
			"says skipped and why, instead of ok.",
		example: "pgimaged plugins check ./pgimaged-plugin-mymethod -option snapshot_dir=/srv/snap -source 'host=db1 user=replicator'",
		exits:   "1 any check failed",
	},
	"version": {
		about:   "Prints pgimaged's version and its plugin protocol (also: pgimaged --version).",
		example: "pgimaged version -json",
	},
	"import": {
		about:   "Converts a Patroni configuration, with the PATRONI_* variables set now, into pgimaged's HCL. Every setting without an equivalent becomes a comment in the output and a note on stderr. --secrets=env writes passwords as env(\"…\") references.",
		example: "pgimaged import patroni /etc/patroni/patroni.yml -o /etc/pgimaged/node1.hcl --secrets=env",
		exits:   "1 the file could not be read or converted, 4 the result would be weaker than the Patroni configuration (durability, fencing or TLS settings not converted, each a warning): nothing written unless --accept-weaker",
	},
	"completion": {
		about:   "Prints a shell completion script for bash or zsh: commands, their flags, plugins subcommands and files for -config.",
		example: "pgimaged completion bash > /etc/bash_completion.d/pgimaged",
	},
}

// helpOutput is a flag set's output: it remembers whether the flag package wrote an error, so
// that its Usage call tells a usage mistake (brief usage on stderr) from -h (help on stdout).
type helpOutput struct {
	w       io.Writer
	mistake bool
}

func (o *helpOutput) Write(p []byte) (int, error) {
	o.mistake = true
	return o.w.Write(p)
}

// usageMistake prints fs's brief usage on stderr, for a mistake found after parsing.
func usageMistake(fs *flag.FlagSet) {
	if o, ok := fs.Output().(*helpOutput); ok {
		o.mistake = true
	}
	fs.Usage()
}

// writeHelp prints a command's help: usage line, what it does, an example, flags, exit codes.
func writeHelp(w io.Writer, fs *flag.FlagSet, name, args string) {
	h, ok := help[name]
	if !ok { // "import patroni" is documented as "import"
		first, _, _ := strings.Cut(name, " ")
		h = help[first]
	}
	fmt.Fprintf(w, "Usage: pgimaged %s %s\n", name, args)
	if h.about != "" {
		fmt.Fprintf(w, "\n%s\n", wrap(h.about, 96))
	}
	if h.example != "" {
		fmt.Fprintf(w, "\nExample:\n  %s\n", h.example)
	}
	if fs != nil {
		fmt.Fprintf(w, "\nFlags:\n")
		out := fs.Output()
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(out)
	}
	fmt.Fprintf(w, "\nExit codes:\n  %s\n", strings.Join(exitLines(h.exits), "\n  "))
}

// codeStart is where a help entry's exits text begins another code: ", " or "; " before a
// number and a space. Commas inside one code's explanation do not split it.
var codeStart = regexp.MustCompile(`[,;] [0-9]+ `)

// exitLines are the help's exit-code lines, one per code in the order of the codes: 0 and 2
// first, then exits split where another code starts; what exits adds to a code already listed
// joins that code's line.
func exitLines(exits string) []string {
	lines := []string{"0 success", "2 usage mistake"}
	var parts []string
	for exits != "" {
		loc := codeStart.FindStringIndex(exits)
		if loc == nil {
			parts = append(parts, exits)
			break
		}
		parts = append(parts, exits[:loc[0]])
		exits = exits[loc[0]+2:]
	}
	code := func(line string) int {
		n, _ := strconv.Atoi(strings.Fields(line)[0])
		return n
	}
	for _, part := range parts {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		i := slices.IndexFunc(lines, func(l string) bool { return code(l) == code(part) })
		if i < 0 {
			lines = append(lines, part)
			continue
		}
		_, more, _ := strings.Cut(part, " ")
		lines[i] += "; " + more
	}
	sort.SliceStable(lines, func(i, j int) bool { return code(lines[i]) < code(lines[j]) })
	return lines
}

func wrap(s string, width int) string {
	var b strings.Builder
	n := 0
	for _, word := range strings.Fields(s) {
		if n > 0 && n+1+len(word) > width {
			b.WriteString("\n")
			n = 0
		} else if n > 0 {
			b.WriteString(" ")
			n++
		}
		b.WriteString(word)
		n += len(word)
	}
	return b.String()
}

// runHelp is `pgimaged help [CMD [SUB]]`: the general help, or a command's, on stdout.
func runHelp(ctx context.Context, e *env, args []string) int {
	if len(args) == 0 {
		usage(e.stdout)
		return exitOK
	}
	args = append([]string{commandName(args[0])}, args[1:]...)
	name := strings.Join(args, " ")
	if _, ok := help[name]; !ok {
		usage(e.stderr)
		return e.failf(exitUsage, "no help for %q: not a command", name)
	}
	// A command's help is what it prints for -h, with its flags.
	return Main(append(append([]string{}, args...), "-h"), e.stdout, e.stderr)
}

// commandFlags returns the flags each command (and plugins subcommand) takes, by asking each
// for its help into a discarded writer and keeping the flag sets it made.
func commandFlags() map[string][]string {
	out := map[string][]string{}
	collect := func(name string, run func(context.Context, *env, []string) int) {
		e := &env{stdout: io.Discard, stderr: io.Discard}
		run(context.Background(), e, []string{"-h"})
		for _, fs := range e.flagSets {
			fs.VisitAll(func(f *flag.Flag) {
				if f.Name != "c" { // patronictl's spelling of -config is accepted, not offered
					out[name] = append(out[name], "-"+f.Name)
				}
			})
		}
		sort.Strings(out[name])
	}
	for _, c := range commands {
		if c.name == "completion" || c.name == "import" {
			continue
		}
		collect(c.name, c.run)
	}
	collect("import", func(ctx context.Context, e *env, _ []string) int {
		return runImport(ctx, e, []string{"patroni", "-h"})
	})
	for sub, run := range pluginsSubcommands {
		collect("plugins "+sub, run)
	}
	return out
}

// HelpNames lists the commands and plugins subcommands that have help, sorted.
func HelpNames() []string { return sortedKeys(help) }
