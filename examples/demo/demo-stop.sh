#!/usr/bin/env bash
# Stops the demo's members (SIGTERM: each stops its PostgreSQL and gives up its DCS keys) and
# makes sure no PostgreSQL of the demo is left running.
set -uo pipefail
work=${PGIMAGED_DEMO_DIR:-/tmp/pgimaged-demo}
[ -d "$work" ] || { echo "demo-stop: nothing to stop ($work does not exist)"; exit 0; }
pg_bin=${PGBINDIR:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)}
as_pg=()
[ "$(id -u)" = 0 ] && as_pg=(runuser -u postgres --)

for pidfile in "$work"/node*.pid; do
    [ -f "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
        echo "demo-stop: stopping $(basename "$pidfile" .pid) (pid $pid)"
        kill -TERM "$pid"
    fi
done
for pidfile in "$work"/node*.pid; do
    [ -f "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    for _ in $(seq 1 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && { echo "demo-stop: pid $pid did not stop; killing it"; kill -KILL "$pid"; }
    rm -f "$pidfile"
done
for d in "$work"/node*/data; do
    [ -f "$d/postmaster.pid" ] || continue
    "${as_pg[@]}" "$pg_bin/pg_ctl" stop -D "$d" -m fast >/dev/null 2>&1 || true
done
echo "demo-stop: stopped; data is kept in $work (make demo starts afresh)"
