#!/usr/bin/env bash
# pgimaged single-host demo: three members of one cluster on this machine, sharing the file DCS.
# node1 bootstraps (initdb), node2 clones from node1 with pg_basebackup and is tagged clonefrom,
# node3 clones from node2 and, tagged replicatefrom = "node2", streams from it (a cascading
# replica). `make demo-stop` stops everything.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
work=${PGIMAGED_DEMO_DIR:-/tmp/pgimaged-demo}
bin="$repo/bin/pgimaged"
plugins="$repo/bin/plugins"
base_port=${PGIMAGED_DEMO_PORT:-54321}

pg_bin=${PGBINDIR:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)}
[ -x "$pg_bin/initdb" ] || { echo "demo: PostgreSQL server binaries not found (install postgresql, or set PGBINDIR)" >&2; exit 1; }
[ -x "$bin" ] || { echo "demo: $bin is missing; run make build" >&2; exit 1; }

# PostgreSQL refuses to run as root: as root, the members run as the postgres OS user.
as_pg=()
if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --create-home --home-dir /var/lib/postgresql postgres
    as_pg=(runuser -u postgres --)
fi

if [ -d "$work" ]; then
    "$here/demo-stop.sh" >/dev/null 2>&1 || true
    rm -rf "$work"
fi
mkdir -p "$work/secrets" "$work/dcs"
chmod 0755 "$work"
head -c 18 /dev/urandom | base64 | tr -d '/+=' > "$work/secrets/superuser.pw"
head -c 18 /dev/urandom | base64 | tr -d '/+=' > "$work/secrets/replication.pw"
chmod 0600 "$work/secrets/"*.pw

for i in 1 2 3; do
    port=$((base_port + i - 1))
    tags=""
    [ "$i" = 2 ] && tags='tags = { clonefrom = true }'
    [ "$i" = 3 ] && tags='tags = { replicatefrom = "node2" }'
    sed -e "s|@NAME@|node$i|g" -e "s|@WORK@|$work|g" -e "s|@PORT@|$port|g" -e "s|@PGBIN@|$pg_bin|g" \
        -e "s|@PLUGINS@|$plugins|g" -e "s|@TAGS@|$tags|g" "$here/node.hcl.in" > "$work/node$i.hcl"
done
[ "$(id -u)" = 0 ] && chown -R postgres: "$work"

start() {
    local i=$1
    echo "demo: starting node$i (port $((base_port + i - 1)))"
    # setsid: the member keeps running after this script returns, in a session of its own.
    # The pid file holds pgimaged's own pid (sh execs it), not runuser's: demo-stop signals the
    # member itself.
    rm -f "$work/node$i.pid"
    "${as_pg[@]}" setsid sh -c 'echo $$ > "$1"; exec "$2" run -config "$3"' sh \
        "$work/node$i.pid" "$bin" "$work/node$i.hcl" > "$work/node$i.log" 2>&1 < /dev/null &
    local deadline=$((SECONDS + 30))
    until [ -s "$work/node$i.pid" ]; do
        [ $SECONDS -lt $deadline ] || { echo "demo: node$i did not start" >&2; exit 1; }
        sleep 0.1
    done
}

wait_running() {
    local i=$1 deadline=$((SECONDS + 300))
    while [ $SECONDS -lt $deadline ]; do
        if "${as_pg[@]}" "$bin" status -config "$work/node1.hcl" -json 2>/dev/null | grep -A4 "\"name\": \"node$i\"" | grep -q '"state": "running"'; then
            return 0
        fi
        if ! kill -0 "$(cat "$work/node$i.pid")" 2>/dev/null; then
            echo "demo: node$i exited; its log:" >&2; tail -n 30 "$work/node$i.log" >&2; exit 1
        fi
        sleep 0.5
    done
    echo "demo: node$i is not running after 5 minutes; its log:" >&2; tail -n 30 "$work/node$i.log" >&2; exit 1
}

start 1; wait_running 1
start 2; wait_running 2
start 3; wait_running 3

echo
"${as_pg[@]}" "$bin" status -config "$work/node1.hcl"
echo
echo "node2 streams to node3 (cascading replication, from node2's pg_stat_replication):"
PGPASSWORD=$(cat "$work/secrets/superuser.pw") psql -h 127.0.0.1 -p $((base_port + 1)) -U postgres -d postgres -Atc \
    "SELECT '  ' || application_name || ' ' || state FROM pg_stat_replication" || true
echo
echo "Logs:    $work/node{1,2,3}.log"
echo "Status:  $bin status -config $work/node1.hcl"
echo "Plan:    $bin plan -config $work/node3.hcl"
echo "Stop:    make demo-stop"
