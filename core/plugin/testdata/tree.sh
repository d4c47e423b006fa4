#!/bin/sh
# A method that ignores SIGTERM and starts children that ignore it too: one in the background,
# one in a session of its own left behind by a subshell that exits at once (a double fork).
# Each writes its pid to $TREE_PIDS. The test finds them by PGIMAGED_TEST_MARKER in their
# environment.
trap '' TERM
sh -c 'trap "" TERM; echo $$ >>"$TREE_PIDS"; while :; do sleep 1; done' tree-child &
(setsid sh -c 'trap "" TERM; echo $$ >>"$TREE_PIDS"; while :; do sleep 1; done' tree-session &)
echo $$ >>"$TREE_PIDS"
if [ "${TREE_LEAVE:-}" = 1 ]; then
	# wait until both children have written their pid, then leave them behind
	while [ "$(wc -l <"$TREE_PIDS")" -lt 3 ]; do sleep 0.05; done
	exit 0
fi
while :; do sleep 1; done
