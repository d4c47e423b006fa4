#!/usr/bin/env bash
# Stops the demo's members (SIGTERM to each pgimaged: it stops its PostgreSQL and gives up its
# DCS keys), waits until they exited, and makes sure no PostgreSQL of the demo is left running.
set -uo pipefail
work=${PGIMAGED_DEMO_DIR:-/tmp/pgimaged-demo}
[ -d "$work" ] || { echo "demo-stop: nothing to stop ($work does not exist)"; exit 0; }
pg_bin=${PGBINDIR:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)}
as_pg=()
[ "$(id -u)" = 0 ] && as_pg=(runuser -u postgres --)

# is_pgimaged PID: the process runs pgimaged (a pid file may be stale and its pid reused).
is_pgimaged() {
    [ -n "$1" ] && [ "$(cat "/proc/$1/comm" 2>/dev/null)" = pgimaged ]
}

# The members' pids: what demo.sh recorded, and what each data directory's lock file names
# (a member started by hand holds it too).
declare -A members=()
for i in 1 2 3; do
    for pid in "$(cat "$work/node$i.pid" 2>/dev/null)" \
        "$(sed -n 's/^pid=//p' "$work/node$i/.data.pgimaged-lock" 2>/dev/null)"; do
        is_pgimaged "$pid" && members[$pid]=node$i
    done
done

for pid in "${!members[@]}"; do
    echo "demo-stop: stopping ${members[$pid]} (pgimaged pid $pid)"
    kill -TERM "$pid" 2>/dev/null
done
for pid in "${!members[@]}"; do
    # A member stops its PostgreSQL (pg_ctl's own timeout is 60s) before it exits.
    for _ in $(seq 1 900); do is_pgimaged "$pid" || break; sleep 0.1; done
    if is_pgimaged "$pid"; then
        echo "demo-stop: ${members[$pid]} (pid $pid) did not stop in 90s; killing it"
        kill -KILL "$pid" 2>/dev/null
    fi
done
rm -f "$work"/node*.pid

left=0
for d in "$work"/node*/data; do
    [ -f "$d/postmaster.pid" ] || continue
    pid=$(head -n1 "$d/postmaster.pid")
    kill -0 "$pid" 2>/dev/null || continue
    echo "demo-stop: PostgreSQL still runs in $d (pid $pid); stopping it"
    "${as_pg[@]}" "$pg_bin/pg_ctl" stop -D "$d" -m fast >/dev/null 2>&1 || left=1
done
if [ "$left" != 0 ]; then
    echo "demo-stop: a PostgreSQL of the demo could not be stopped" >&2
    exit 1
fi
echo "demo-stop: stopped; data is kept in $work (make demo starts afresh)"
