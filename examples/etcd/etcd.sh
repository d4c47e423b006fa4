#!/usr/bin/env bash
# A single etcd on 127.0.0.1:2379 for trying the etcd example on one machine.
#
#   ./etcd.sh start    start it in the background (data and log under $PGIMAGED_ETCD_DIR)
#   ./etcd.sh status   is it healthy; the keys of the etcd-demo cluster
#   ./etcd.sh stop     stop it, keeping its data
#   ./etcd.sh clean    stop it and remove its data and the example's data directories
#
# This is a throwaway, unauthenticated single-member etcd listening on loopback only: fine for
# trying pgimaged, not for production.
set -euo pipefail

work=${PGIMAGED_ETCD_DIR:-/tmp/pgimaged-etcd}
port=${PGIMAGED_ETCD_PORT:-2379}
peer_port=${PGIMAGED_ETCD_PEER_PORT:-2380}
client_url="http://127.0.0.1:$port"
peer_url="http://127.0.0.1:$peer_port"
pidfile="$work/etcd/etcd.pid"

healthy() {
    if command -v etcdctl >/dev/null 2>&1; then
        ETCDCTL_API=3 etcdctl --endpoints="127.0.0.1:$port" --dial-timeout=1s endpoint health >/dev/null 2>&1
    else
        curl -fsS --max-time 1 "$client_url/health" 2>/dev/null | grep -q '"true"'
    fi
}

running_pid() {
    [ -f "$pidfile" ] || return 1
    local pid
    pid=$(cat "$pidfile")
    kill -0 "$pid" 2>/dev/null || return 1
    echo "$pid"
}

start() {
    command -v etcd >/dev/null 2>&1 || { echo "etcd.sh: etcd is not installed (Debian: apt-get install etcd-server etcd-client)" >&2; exit 1; }
    if pid=$(running_pid); then
        echo "etcd.sh: etcd already runs (pid $pid) at $client_url"
        return 0
    fi
    if healthy; then
        echo "etcd.sh: another etcd already answers at $client_url; use it, or stop it first" >&2
        exit 1
    fi
    mkdir -p "$work/etcd"
    # The members run as the PostgreSQL OS user and create their data directories below $work.
    chmod 0755 "$work"
    if [ "$(id -u)" = 0 ] && id postgres >/dev/null 2>&1; then
        chown postgres: "$work"
    fi
    setsid etcd --name=pgimaged-example --data-dir="$work/etcd/data" \
        --listen-client-urls="$client_url" --advertise-client-urls="$client_url" \
        --listen-peer-urls="$peer_url" --initial-advertise-peer-urls="$peer_url" \
        --initial-cluster="pgimaged-example=$peer_url" \
        > "$work/etcd/etcd.log" 2>&1 < /dev/null &
    echo $! > "$pidfile"
    for _ in $(seq 1 100); do
        if healthy; then
            echo "etcd.sh: etcd runs at $client_url (pid $(cat "$pidfile"), log $work/etcd/etcd.log)"
            return 0
        fi
        if ! running_pid >/dev/null; then
            echo "etcd.sh: etcd exited; its log:" >&2
            tail -n 20 "$work/etcd/etcd.log" >&2
            exit 1
        fi
        sleep 0.2
    done
    echo "etcd.sh: etcd is not healthy after 20 seconds; see $work/etcd/etcd.log" >&2
    exit 1
}

stop() {
    local pid
    if ! pid=$(running_pid); then
        echo "etcd.sh: etcd is not running"
        rm -f "$pidfile"
        return 0
    fi
    kill -TERM "$pid"
    for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    rm -f "$pidfile"
    echo "etcd.sh: etcd stopped"
}

status() {
    if healthy; then
        echo "etcd.sh: etcd at $client_url is healthy"
    else
        echo "etcd.sh: nothing healthy answers at $client_url"
        return 1
    fi
    if command -v etcdctl >/dev/null 2>&1; then
        echo "keys of the etcd-demo cluster:"
        ETCDCTL_API=3 etcdctl --endpoints="127.0.0.1:$port" get --prefix /service/etcd-demo/ --keys-only | sed '/^$/d; s/^/  /'
    fi
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    clean)
        stop
        for d in "$work"/node*/data; do
            if [ -f "$d/postmaster.pid" ]; then
                echo "etcd.sh: PostgreSQL still runs in $d; stop its pgimaged first" >&2
                exit 1
            fi
        done
        rm -rf "$work"
        echo "etcd.sh: removed $work"
        ;;
    *)
        echo "usage: $0 start|status|stop|clean" >&2
        exit 2
        ;;
esac
