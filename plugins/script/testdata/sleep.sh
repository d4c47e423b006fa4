#!/bin/sh
# A replica script that never finishes: it records its process id (it leads its process group)
# in $PIDFILE, starts two background children and waits for them.
sleep 600 &
sleep 600 >/dev/null 2>&1 &
echo $$ >"$PIDFILE.tmp" && mv "$PIDFILE.tmp" "$PIDFILE"
wait
