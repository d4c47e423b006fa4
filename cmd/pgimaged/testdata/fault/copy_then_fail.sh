#!/bin/sh
# A replica method that copies a complete data directory with pg_basebackup and then reports
# failure (exit 1): with keep_data = true, what it leaves must go to the next attempt, never be
# adopted and started as a primary.
#   copy_then_fail.sh --bin_dir=DIR --datadir=D --connstring=C (PGPASSFILE carries the password)
for a in "$@"; do
	case "$a" in
	--bin_dir=*) bindir=${a#--bin_dir=} ;;
	--datadir=*) datadir=${a#--datadir=} ;;
	--connstring=*) connstring=${a#--connstring=} ;;
	esac
done
"$bindir/pg_basebackup" --pgdata="$datadir" -X stream --checkpoint=fast --dbname="$connstring" || exit 2
echo "copy_then_fail: $datadir holds a complete copy; failing on purpose" >&2
exit 1
