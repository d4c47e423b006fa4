#!/bin/sh
# Stands in for a user's replica or bootstrap script: records its arguments (each ended by NUL,
# so arguments with spaces or newlines survive) and its environment into $RECORD_DIR, prints a
# line, and exits with $EXIT_CODE (default 0).
if [ $# -gt 0 ]; then
	printf '%s\0' "$@" >"$RECORD_DIR/argv"
else
	: >"$RECORD_DIR/argv"
fi
printf '%s' "$0" >"$RECORD_DIR/argv0"
env -0 >"$RECORD_DIR/env"
echo "restoring into $PGIMAGED_DATADIR"
exit "${EXIT_CODE:-0}"
