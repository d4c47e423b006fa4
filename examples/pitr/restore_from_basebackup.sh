#!/bin/sh
# restore_from_basebackup - a custom bootstrap method for pgimaged (and Patroni): it fills the
# new data directory from a pg_basebackup backup, plain or tar format. pgimaged then writes the
# method's recovery_conf (restore_command, recovery target), starts PostgreSQL, waits until the
# recovery has reached its target and promoted, and creates the roles.
#
#   restore_from_basebackup.sh --backup=/backups/base-2026-11-21 --scope=batman --datadir=/var/lib/...
set -eu

BACKUP=""
DATADIR=""
for arg in "$@"; do
    case "$arg" in
        --backup=*)  BACKUP=${arg#--backup=} ;;
        --datadir=*) DATADIR=${arg#--datadir=} ;;
        --scope=*)   ;;
        *) echo "restore_from_basebackup: ignoring unknown argument $arg" >&2 ;;
    esac
done
[ -n "$BACKUP" ]  || { echo "restore_from_basebackup: --backup=DIR is required" >&2; exit 2; }
[ -n "$DATADIR" ] || { echo "restore_from_basebackup: --datadir=DIR is required" >&2; exit 2; }
[ -d "$BACKUP" ]  || { echo "restore_from_basebackup: no backup at $BACKUP" >&2; exit 1; }

if [ -f "$BACKUP/base.tar" ] || [ -f "$BACKUP/base.tar.gz" ]; then
    echo "restoring tar-format backup $BACKUP into $DATADIR"
    if [ -f "$BACKUP/base.tar.gz" ]; then tar -xzf "$BACKUP/base.tar.gz" -C "$DATADIR"; else tar -xf "$BACKUP/base.tar" -C "$DATADIR"; fi
    if [ -f "$BACKUP/pg_wal.tar" ]; then tar -xf "$BACKUP/pg_wal.tar" -C "$DATADIR/pg_wal"; fi
else
    echo "restoring plain-format backup $BACKUP into $DATADIR"
    cp -a "$BACKUP/." "$DATADIR/"
fi
# A backup never carries a running server's pid file, but a copied data directory might.
rm -f "$DATADIR/postmaster.pid" "$DATADIR/postmaster.opts"
chmod 0700 "$DATADIR"
echo "restore complete"
