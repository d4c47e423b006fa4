#!/bin/sh
# A keep_data replica method that runs pg_basebackup -R, as many hand-written scripts do: the
# copy carries primary_conninfo (naming the PGPASSFILE it was given) and standby.signal.
#   copy_with_R.sh --bin_dir=DIR --datadir=D --connstring=C
for a in "$@"; do
	case "$a" in
	--bin_dir=*) bindir=${a#--bin_dir=} ;;
	--datadir=*) datadir=${a#--datadir=} ;;
	--connstring=*) connstring=${a#--connstring=} ;;
	esac
done
exec "$bindir/pg_basebackup" -R --pgdata="$datadir" -X stream --checkpoint=fast --dbname="$connstring"
