#!/bin/sh
# A replica method that makes a good copy with pg_basebackup, records that it did in --flag,
# then prints bytes that are not UTF-8 (as a tool printing a Latin-1 file name does) and
# succeeds.
#   copy_then_garbage.sh --bin_dir=DIR --flag=FILE --datadir=D --connstring=C
for a in "$@"; do
	case "$a" in
	--bin_dir=*) bindir=${a#--bin_dir=} ;;
	--flag=*) flag=${a#--flag=} ;;
	--datadir=*) datadir=${a#--datadir=} ;;
	--connstring=*) connstring=${a#--connstring=} ;;
	esac
done
"$bindir/pg_basebackup" --pgdata="$datadir" -X stream --checkpoint=fast --dbname="$connstring" || exit 2
echo "$datadir" >"$flag"
printf 'copied into r\351pertoire \377\376 sauvegard\351\n'
printf 'stderr: \300\301 done\n' >&2
exit 0
