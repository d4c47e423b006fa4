package cli

import (
	"context"
	"fmt"
	"sort"
	"strings"
)

// runCompletion is `pgimaged completion bash|zsh`: a completion script built from the commands
// table and the flags each command registers.
func runCompletion(_ context.Context, e *env, args []string) int {
	if len(args) == 1 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
		writeHelp(e.stdout, nil, "completion", "bash|zsh")
		return exitOK
	}
	if len(args) != 1 || (args[0] != "bash" && args[0] != "zsh") {
		fmt.Fprintf(e.stderr, "Usage: pgimaged completion bash|zsh\n")
		return e.failf(exitUsage, "completion takes one shell: bash or zsh")
	}
	flags := commandFlags()
	var names []string
	for _, c := range commands {
		names = append(names, c.name)
	}
	names = append(names, "help")
	var subs []string
	for s := range pluginsSubcommands {
		subs = append(subs, s)
	}
	sort.Strings(subs)

	var cases strings.Builder
	keys := sortedKeys(flags)
	for _, k := range keys {
		fmt.Fprintf(&cases, "        %q) flags=%q ;;\n", k, strings.Join(flags[k], " "))
	}
	if args[0] == "zsh" {
		// zsh runs the bash function through bashcompinit.
		fmt.Fprintf(e.stdout, "#compdef pgimaged\n"+
			"(( $+functions[compdef] )) || { autoload -Uz compinit && compinit -u; }\n"+
			"autoload -U +X bashcompinit && bashcompinit\n")
	}
	fmt.Fprintf(e.stdout, bashCompletion, strings.Join(names, " "), strings.Join(subs, " "), cases.String())
	return exitOK
}

// bashCompletion takes the commands, the plugins subcommands and the case arms mapping
// "command" or "plugins sub" to its flags.
const bashCompletion = `# pgimaged completion; load with: source <(pgimaged completion bash)
_pgimaged() {
    local cur prev cmd flags
    COMPREPLY=()
    cur="${COMP_WORDS[COMP_CWORD]}"
    prev=""
    if [ "$COMP_CWORD" -gt 0 ]; then prev="${COMP_WORDS[COMP_CWORD-1]}"; fi
    if [ "$COMP_CWORD" -le 1 ]; then
        COMPREPLY=( $(compgen -W "%[1]s --help --version" -- "$cur") )
        return 0
    fi
    cmd="${COMP_WORDS[1]}"
    case "$prev" in
        -config|--config|-o|-lock|--lock|-source-file)
            COMPREPLY=( $(compgen -f -- "$cur") )
            return 0 ;;
        -plugin-dir|--plugin-dir|-bin-dir|--bin-dir|-temp-dir|--temp-dir|-base-dir|--base-dir|-datadir|--datadir)
            COMPREPLY=( $(compgen -d -- "$cur") )
            return 0 ;;
    esac
    if [ "$cmd" = "help" ]; then
        if [ "$COMP_CWORD" -eq 2 ]; then
            COMPREPLY=( $(compgen -W "%[1]s" -- "$cur") )
        elif [ "${COMP_WORDS[2]}" = "plugins" ] && [ "$COMP_CWORD" -eq 3 ]; then
            COMPREPLY=( $(compgen -W "%[2]s" -- "$cur") )
        fi
        return 0
    fi
    if [ "$cmd" = "plugins" ] && [ "$COMP_CWORD" -eq 2 ] && [[ "$cur" != -* ]]; then
        COMPREPLY=( $(compgen -W "%[2]s" -- "$cur") )
        return 0
    fi
    if [ "$cmd" = "completion" ]; then
        COMPREPLY=( $(compgen -W "bash zsh" -- "$cur") )
        return 0
    fi
    if [ "$cmd" = "import" ] && [ "$COMP_CWORD" -eq 2 ]; then
        COMPREPLY=( $(compgen -W "patroni" -- "$cur") )
        return 0
    fi
    if [ "$cmd" = "plugins" ] && [ "$COMP_CWORD" -gt 2 ]; then
        case "${COMP_WORDS[2]}" in
            show|install|verify|check) cmd="plugins ${COMP_WORDS[2]}" ;;
        esac
    fi
    flags=""
    case "$cmd" in
%[3]s    esac
    if [[ "$cur" == --* ]]; then
        COMPREPLY=( $(compgen -W "$(printf -- '-%%s ' $flags)" -- "$cur") )
    elif [[ "$cur" == -* ]]; then
        COMPREPLY=( $(compgen -W "$flags" -- "$cur") )
    else
        COMPREPLY=( $(compgen -f -- "$cur") )
    fi
    return 0
}
complete -F _pgimaged pgimaged
`
