#!/bin/sh
# A replica method that ignores SIGTERM and starts two children that ignore it too, one of them
# in a session of its own (setsid), then never finishes. Every process runs this file, so its
# path is in every command line.
trap '' TERM
case "$1" in
child)
	while :; do sleep 1; done
	;;
esac
"$0" child &
setsid "$0" child &
echo "stubborn: started $! and its sibling; ignoring SIGTERM"
while :; do sleep 1; done
